"""SAFY crop growth model (daily), batched and differentiable in PyTorch.

Duchemin, B., Maisongrande, P., Boulet, G., Benhadj, I. (2008), *A simple algorithm
for yield estimates: Evaluation for semi-arid irrigated winter wheat monitored with
green leaf area index*, Environmental Modelling & Software 23(7):876–892; applied to
maize with Sentinel-2-like GLAI by Battude, M. et al. (2016), *Estimating maize
biomass and yield over large areas using high spatial and temporal resolution
Sentinel-2 like remote sensing data*, Remote Sensing of Environment 184:668–681.

Daily equations (day t, after plant emergence on day D0; T air temperature °C,
Rg global radiation MJ m⁻² d⁻¹)::

    SMT_t  = SMT_{t-1} + max(0, T_t − Tmin)                    (°C·day since emergence)
    FT(T)  = 1 − ((T − Topt)/(Tx − Topt))^β,  Tx = Tmin if T < Topt else Tmax, 0 outside
    APAR_t = εc · Rg_t · (1 − exp(−k · GLAI_{t-1}))
    ΔDAM_t = ELUE · APAR_t · FT(T_t)                              (g m⁻²)
    PL_t   = max(0, 1 − PLa · exp(PLb · SMT_t))                   (partition to leaves)
    ΔGLAI+ = ΔDAM_t · PL_t · SLA
    ΔGLAI− = GLAI_{t-1} · (SMT_t − STT) / Rs   if SMT_t > STT     (senescence)

with DAM = Ms0 and GLAI = Ms0·SLA on the emergence day. As in the original code the
season ends (GLAI = 0, DAM frozen) the first day after senescence has started on
which GLAI_{t-1} fell below its emergence value. Yield = HI · DAM (harvest index,
as used for maize by Battude et al. 2016).

Differentiability: the time loop is written over days and vectorised over pixels;
gradients flow to every crop parameter and to the emergence day D0 through a smooth
relaxation of the emergence step: the fraction of the crop emerged by day t is
``sigmoid((t − D0 + 0.5) / w)`` (``emergence_width`` w, days); as w → 0 the discrete
model is recovered exactly for integer D0. The end-of-season switch is a hard mask
(no gradient through the switching date itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from xr_physcube._data import read_table
from xr_physcube.exceptions import DimensionError, OutOfRangeError
from xr_physcube.parameters import (
    ParameterSet,
    ParameterSpec,
    TensorLike,
    TensorParameters,
    as_tensors,
    infer_dtype_device,
    spec_field,
)
from xr_physcube.validation import check_arrays, positive_float

# Default values (grain maize) and their provenance:
# * eps_c = 0.48 (PAR / global radiation) and k = 0.5: the values of the original SAFY
#   code (Duchemin et al. 2008, CESBIO/IRD distribution; the same numbers appear in the
#   public copies of that code, e.g. P. C. Silvestro's InitPar_fileinput.m "values
#   correspond to Duchemin et al. (2008)", and M. Claverie's Sen4CAP SafyModel, which
#   uses 0.47), found with the offline code search.
# * beta = 2: exponent of the temperature response in the same code (Ptfn_TpSn = 2).
# * Tmin/Topt/Tmax = 8/30/45 degC, SLA = 0.024 m2/g, Ms0 = 4.2 g/m2: attributed to the maize
#   studies of Claverie et al. (2012), RSE 124:844-857, and Battude et al. (2016), but
#   UNVERIFIED: transcribed from memory; neither paper's parameter table was reachable
#   offline (the SAFY code copies found hold wheat values: Tmin/Topt/Tmax = 0/20/37 degC,
#   Duchemin et al. 2008, and SLA 0.022-0.024, Ms0 4.5). Check before relying on them.
# * The field-calibrated parameters (D0, ELUE, PLa, PLb, STT, Rs) have no universal value
#   (Battude et al. 2016 calibrate them per field from GLAI time series). The defaults
#   below were CHOSEN HERE (not published) so that the shipped synthetic Toulouse climate
#   (data/safy_maize_climate.csv) gives a typical irrigated-maize season (GLAI peak ~5 in
#   late July, dry biomass ~2.4 kg/m2); calibrate them per field.
D0 = ParameterSpec(
    "d0",
    "plant emergence day, a 0-based index into the daily forcing series (not a day of year)",
    "day",
    0.0,
    366.0,
    125.0,
)
"""Emergence: ``d0 = 0`` is the first day of the forcing series, ``d0 = n`` its (n+1)-th
day, whatever calendar day that is; must be < the series length. With the shipped
climate (:func:`shipped_climate`, day of year 1–365) ``d0 = doy − 1``: the default 125
is day of year 126 (6 May)."""
MS0 = ParameterSpec("ms0", "dry aboveground mass at emergence", "g m-2", 0.1, 50.0, 4.2)
ELUE = ParameterSpec("elue", "effective light-use efficiency", "g MJ-1", 0.1, 8.0, 3.0)
SLA = ParameterSpec("sla", "specific leaf area of green leaves", "m2 g-1", 0.005, 0.06, 0.024)
PLA = ParameterSpec("pla", "partition-to-leaf parameter a", "1", 0.01, 1.0, 0.6)
PLB = ParameterSpec("plb", "partition-to-leaf parameter b", "degC-1 day-1", 1e-5, 0.02, 5e-4)
STT = ParameterSpec("stt", "temperature sum at senescence onset", "degC day", 50.0, 4000.0, 1100.0)
RS = ParameterSpec(
    "rs", "rate of senescence (temperature sum scale)", "degC day", 100.0, 1e5, 8000.0
)
TMIN = ParameterSpec("tmin", "minimum temperature for growth", "degC", -5.0, 20.0, 8.0)
TOPT = ParameterSpec("topt", "optimal temperature for growth", "degC", 10.0, 40.0, 30.0)
TMAX = ParameterSpec("tmax", "maximum temperature for growth", "degC", 20.0, 55.0, 45.0)
BETA = ParameterSpec("beta", "shape exponent of the temperature response", "1", 1.0, 4.0, 2.0)
EPS_C = ParameterSpec("eps_c", "climatic efficiency (PAR / global radiation)", "1", 0.3, 0.6, 0.48)
K_EXT = ParameterSpec("k", "light-interception (extinction) coefficient", "1", 0.1, 1.5, 0.5)
HI = ParameterSpec("hi", "harvest index (grain / aboveground dry mass)", "1", 0.0, 1.0, 0.5)

TEMPERATURE = ParameterSpec("temperature", "daily mean air temperature", "degC", -40.0, 50.0, 15.0)
RADIATION = ParameterSpec("radiation", "daily global radiation", "MJ m-2 day-1", 0.0, 45.0, 15.0)


@dataclass
class SafyParameters(TensorParameters):
    """SAFY crop parameters (any broadcastable batch shape). Defaults: grain maize.

    ``d0`` is the emergence day counted from 0 at the first day of the forcing series
    (not a day of year; see :data:`D0`).
    """

    d0: torch.Tensor | float = spec_field(D0)
    ms0: torch.Tensor | float = spec_field(MS0)
    elue: torch.Tensor | float = spec_field(ELUE)
    sla: torch.Tensor | float = spec_field(SLA)
    pla: torch.Tensor | float = spec_field(PLA)
    plb: torch.Tensor | float = spec_field(PLB)
    stt: torch.Tensor | float = spec_field(STT)
    rs: torch.Tensor | float = spec_field(RS)
    tmin: torch.Tensor | float = spec_field(TMIN)
    topt: torch.Tensor | float = spec_field(TOPT)
    tmax: torch.Tensor | float = spec_field(TMAX)
    beta: torch.Tensor | float = spec_field(BETA)
    eps_c: torch.Tensor | float = spec_field(EPS_C)
    k: torch.Tensor | float = spec_field(K_EXT)
    hi: torch.Tensor | float = spec_field(HI)

    def validate(self, context: str = "") -> SafyParameters:
        specs = self.parameter_set()
        for name, value in self.as_dict().items():
            specs[name].check(value, context or "SafyParameters")
        t = as_tensors({k: getattr(self, k) for k in ("tmin", "topt", "tmax")})
        if not bool(((t["tmin"] < t["topt"]) & (t["topt"] < t["tmax"])).all()):
            raise OutOfRangeError(f"{context or 'SafyParameters'}: need tmin < topt < tmax")
        return self


SAFY_PARAMETERS: ParameterSet = SafyParameters.parameter_set()


class Climate(NamedTuple):
    """Daily forcing: ``doy`` (day of year), ``temperature`` (°C), ``radiation``
    (MJ m⁻² day⁻¹), 1-D float64 arrays of equal length."""

    doy: np.ndarray
    temperature: np.ndarray
    radiation: np.ndarray


def shipped_climate() -> Climate:
    """The synthetic daily climate shipped for maize near Toulouse (one year, DOY 1–365;
    ``data/safy_maize_climate.csv``, recipe in its header), as fresh writable float64
    arrays (safe for ``torch.as_tensor`` / ``torch.from_numpy`` and in-place edits).

    Row ``i`` is day of year ``doy[i] = i + 1``, so SAFY's ``d0`` (a 0-based index into
    the series) is ``doy − 1`` for this climate.
    """
    c = read_table("xr_physcube.models", "safy_maize_climate.csv")
    return Climate(*(np.array(c[k]) for k in ("doy", "t_mean_c", "rg_mj_m2_day")))


class SafyOutput(NamedTuple):
    """Daily SAFY outputs, each of shape (..., n_days).

    glai: green leaf area index (m²/m²); biomass: dry aboveground mass DAM (g/m²);
    yield_: HI · DAM (g/m²); smt: temperature sum since emergence (°C·day).
    """

    glai: torch.Tensor
    biomass: torch.Tensor
    yield_: torch.Tensor
    smt: torch.Tensor


OUTPUT_ATTRS: dict[str, dict[str, str]] = {
    "glai": {"long_name": "green leaf area index", "units": "m2 m-2"},
    "biomass": {"long_name": "dry aboveground biomass (DAM)", "units": "g m-2"},
    "yield_": {"long_name": "yield: harvest index x dry aboveground biomass", "units": "g m-2"},
    "smt": {"long_name": "temperature sum since emergence", "units": "degC day"},
}
"""Long name and units of each :class:`SafyOutput` field (CF attributes of gridded outputs)."""


def temperature_response(
    temp: torch.Tensor, tmin: torch.Tensor, topt: torch.Tensor, tmax: torch.Tensor, beta
) -> torch.Tensor:
    """FT(T) of Duchemin et al. (2008): 1 at Topt, 0 at and beyond Tmin and Tmax."""
    below = temp <= topt
    span = torch.where(below, topt - tmin, tmax - topt)
    x = (temp - topt).abs() / span
    return (1.0 - x.pow(beta)).clamp_min(0.0)


def safy(
    temperature: TensorLike,
    radiation: TensorLike,
    params: SafyParameters | None = None,
    *,
    emergence_width: float = 0.5,
    validate: bool = True,
    **kwargs: TensorLike,
) -> SafyOutput:
    """Run SAFY over a daily series.

    Args:
        temperature: daily mean air temperature, °C, shape (..., n_days).
        radiation: daily global radiation, MJ m⁻² day⁻¹, shape (..., n_days).
        params: :class:`SafyParameters` (batch shape broadcastable with ``...``), or
            its fields as keywords; missing fields take the maize defaults.
            ``d0`` (days) is the emergence day as a 0-based index into the forcing
            series: 0 = the first day given, ``n_days − 1`` = the last; it is NOT a day
            of year (with a series starting on 1 January, d0 = day of year − 1).
            Fractional values shift the smooth emergence step.
        emergence_width: width (days) of the smooth emergence step; > 0.
        validate: raise ``ValueError`` on NaN / out-of-range inputs, bad shapes, or
            ``d0 >= n_days`` (emergence after the series ends: the crop would never
            emerge and GLAI would be 0 throughout).

    Returns:
        :class:`SafyOutput` with tensors of shape (..., n_days); dtype/device follow
        the inputs (:func:`~xr_physcube.parameters.infer_dtype_device` of forcings and
        parameters: the first floating tensor, else the first floating NumPy array).
    """
    if params is None:
        params = SafyParameters(**kwargs)
    elif kwargs:
        raise TypeError("give either a SafyParameters or keyword fields, not both")
    emergence_width = positive_float(emergence_width, "emergence_width (days)")
    values = params.as_dict()
    forcing = {"temperature": temperature, "radiation": radiation}
    check_arrays(forcing, "SAFY", allow_empty=True)
    if validate:
        check_arrays({**forcing, **values}, "SAFY")
        params.validate("SAFY")
        TEMPERATURE.check(temperature, "SAFY")
        RADIATION.check(radiation, "SAFY")
    dtype, device = infer_dtype_device([temperature, radiation, *values.values()])
    temp = torch.as_tensor(temperature, dtype=dtype, device=device)
    rad = torch.as_tensor(radiation, dtype=dtype, device=device)
    if temp.ndim == 0 or rad.ndim == 0 or temp.shape[-1] != rad.shape[-1]:
        raise DimensionError(
            "temperature and radiation need the same last (day) dimension; got shapes "
            f"{tuple(temp.shape)} and {tuple(rad.shape)}"
        )
    p = {k: torch.as_tensor(v, dtype=dtype, device=device) for k, v in values.items()}
    try:
        batch = torch.broadcast_shapes(
            temp.shape[:-1], rad.shape[:-1], *(v.shape for v in p.values())
        )
    except RuntimeError as err:
        raise DimensionError(
            f"SAFY batch shapes do not broadcast: forcings {tuple(temp.shape)} (days last), "
            f"parameters { ({k: tuple(v.shape) for k, v in p.items()}) }"
        ) from err
    n_days = temp.shape[-1]
    if validate:
        _check_emergence_in_series(p["d0"], n_days)
    temp = temp.expand(*batch, n_days)
    rad = rad.expand(*batch, n_days)
    p = {k: v.expand(batch) for k, v in p.items()}
    return _run(temp, rad, p, emergence_width, dtype, device)


def _check_emergence_in_series(d0: torch.Tensor, n_days: int) -> None:
    if d0.numel() and float(d0.detach().max()) >= n_days:
        raise OutOfRangeError(
            f"SAFY: parameter 'd0' (emergence day, a 0-based index into the forcing series, "
            f"not a day of year) must be < the number of days given ({n_days}, i.e. at most "
            f"{n_days - 1}); got up to {float(d0.detach().max()):g}"
        )


def _run(temp, rad, p, width: float, dtype, device) -> SafyOutput:
    n_days = temp.shape[-1]
    lai0 = p["ms0"] * p["sla"]
    # Day-major layout (n_days, ...): the day loop reads contiguous slices.
    temp = temp.movedim(-1, 0).contiguous()
    rad = rad.movedim(-1, 0).contiguous()
    days = torch.arange(n_days, dtype=dtype, device=device).reshape(-1, *([1] * lai0.ndim))
    # Fraction of the crop emerged by the end of each day, (n_days, ...).
    emerged = torch.sigmoid((days - p["d0"] + 0.5) / width)
    ft_all = temperature_response(temp, p["tmin"], p["topt"], p["tmax"], p["beta"])
    # Everything that does not depend on the state is computed once, vectorised over
    # days: potential production ELUE·εc·Rg·FT(T), the temperature-sum increment of the
    # emerged fraction, and the newly emerged fraction per day.
    potential = (p["elue"] * p["eps_c"]) * rad * ft_all
    dsmt_all = emerged * torch.relu(temp - p["tmin"])
    emerged_before = torch.cat([torch.zeros_like(emerged[:1]), emerged[:-1]], dim=0)
    emerging_all = emerged - emerged_before
    neg_k, pla, plb, sla, ms0 = -p["k"], p["pla"], p["plb"], p["sla"], p["ms0"]
    stt, inv_rs = p["stt"], 1.0 / p["rs"]

    zeros = torch.zeros_like(lai0)
    glai, dam, smt = zeros, zeros, zeros
    ended = torch.zeros_like(lai0, dtype=torch.bool)
    out_glai, out_dam, out_smt = [], [], []
    for t in range(n_days):
        # Season over once senescence has started and GLAI fell below its initial value.
        ended = ended | ((smt > stt) & (glai < emerged_before[t] * lai0))
        alive = (~ended).to(dtype)
        smt = smt + alive * dsmt_all[t]
        ddam = potential[t] * (1.0 - torch.exp(neg_k * glai))
        pl = torch.relu(1.0 - pla * torch.exp(plb * smt))
        senescence = ((smt - stt) * inv_rs).clamp(0.0, 1.0)
        emerging = emerging_all[t]
        glai = alive * (glai + ddam * pl * sla - glai * senescence + emerging * lai0)
        dam = dam + alive * (ddam + emerging * ms0)
        out_glai.append(glai)
        out_dam.append(dam)
        out_smt.append(smt)
    # Stacked day-major (contiguous copies), returned as (..., n_days) views.
    glai_s = torch.stack(out_glai).movedim(0, -1)
    dam_s = torch.stack(out_dam).movedim(0, -1)
    smt_s = torch.stack(out_smt).movedim(0, -1)
    return SafyOutput(glai_s, dam_s, p["hi"].unsqueeze(-1) * dam_s, smt_s)


class Safy(nn.Module):
    """SAFY as an ``nn.Module``: ``forward(temperature, radiation, params) -> SafyOutput``.

    Args:
        emergence_width: width (days) of the smooth emergence step (see module doc).
        validate: raise ``ValueError`` on NaN or out-of-range inputs.
    """

    def __init__(self, emergence_width: float = 0.5, validate: bool = True):
        super().__init__()
        self.emergence_width = positive_float(emergence_width, "emergence_width (days)")
        self.validate = validate

    def extra_repr(self) -> str:
        return f"emergence_width={self.emergence_width}, validate={self.validate}"

    def forward(
        self, temperature: TensorLike, radiation: TensorLike, params: SafyParameters | None = None
    ) -> SafyOutput:
        """Run SAFY over daily forcings (see :func:`safy`).

        Args:
            temperature: daily mean air temperature, °C, shape (..., n_days).
            radiation: daily global radiation, MJ m⁻² day⁻¹, shape (..., n_days).
            params: :class:`SafyParameters` (default: the maize defaults); ``d0`` is a
                0-based index into the series, not a day of year.

        Returns:
            :class:`SafyOutput` (glai m²/m², biomass g/m², yield_ g/m², smt °C·day),
            each of shape (..., n_days).
        """
        return safy(
            temperature,
            radiation,
            params or SafyParameters(),
            emergence_width=self.emergence_width,
            validate=self.validate,
        )
