"""Calibrating the Water Cloud Model on measured Sentinel-1 backscatter, and inverting it.

Pure PyTorch / NumPy (no xarray). The model, per polarisation p ∈ {VV, VH}, is the Water
Cloud Model (Attema & Ulaby 1978) with the vegetation descriptor V (LAI, or NDVI)::

    τ²      = exp(−2 B V / cos θ)
    σ0      = A V cos θ (1 − τ²) + τ² σ0_soil                       (linear, m²/m²)

with one of two soil terms (``soil_term``):

* ``"linear"`` — empirical, linear in mv in dB (Attema & Ulaby 1978; Baghdadi et al.
  2016/2017 use this form at C band), with an incidence slope about ``theta_ref``::

      10 log10 σ0_soil = C + D mv + F (θ − θ_ref)

* ``"oh"`` — Oh (2004) (:func:`xr_physcube.models.sar.oh2004`), a function of mv, θ and
  the surface rms height ``hrms``. ``hrms`` is a nuisance: one value per series (field),
  estimated jointly with A and B over the series' time series.

Coefficients are fitted by L-BFGS on the squared error in dB of VV and VH, with every
coefficient bounded by a sigmoid between the bounds of its :class:`ParameterSpec`
(:data:`A`, :data:`B`, :data:`C_DB`, :data:`D_DB`, :data:`F_DB`,
:data:`xr_physcube.models.sar.HRMS`). Vegetation terms (A, B) can be crop-specific
(``group``) while the soil term is shared. The result is one frozen
:class:`WcmCalibration` per group, with its provenance.

:func:`invert_mv` inverts a calibration for soil moisture per sample in closed form
(both soil terms are invertible analytically), with an uncertainty from the
calibration residuals propagated through the model, optionally combined with a
Gaussian prior (the training fields' moisture statistics), and clipped to bounds.

References
----------
.. [1] Attema, E. P. W. & Ulaby, F. T. (1978), Vegetation modeled as a water cloud,
   Radio Science 13(2):357–364.
.. [2] Oh, Y. (2004), Quantitative retrieval of soil moisture content and surface
   roughness from multipolarized radar observations of bare soil surfaces, IEEE TGRS
   42(3):596–601.
.. [3] Baghdadi, N., El Hajj, M., Zribi, M., Bousbih, S. (2017), Calibration of the
   Water Cloud Model at C-band for winter crop fields and grasslands, Remote Sensing
   9(9):969.
.. [4] Rodgers, C. D. (2000), Inverse Methods for Atmospheric Sounding, World
   Scientific (linear Gaussian combination of a measurement and a prior, ch. 2).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import torch

from xr_physcube.models import sar
from xr_physcube.models._s1_inputs import (
    S1InputError,
    as_tensor,
    check_range,
    check_sigma0,
    check_theta,
    same_shape,
)
from xr_physcube.models.dielectric import MV
from xr_physcube.models.sar import HRMS, LAI, NDVI, THETA
from xr_physcube.parameters import ParameterSpec, TensorLike
from xr_physcube.sensors.sentinel1 import WAVENUMBER_CM

SoilTerm = Literal["linear", "oh"]
SOIL_TERMS: tuple[str, ...] = ("linear", "oh")
Descriptor = Literal["lai", "ndvi"]
POLS: tuple[str, ...] = ("vv", "vh")

__all__ = [
    "A", "B", "C_DB", "D_DB", "F_DB", "S1InputError", "SoilTerm", "Descriptor",
    "PolarisationCoefficients", "WcmCalibration", "MoistureEstimate", "calibrate_wcm",
    "forward_db", "estimate_hrms", "invert_mv",
]  # fmt: skip

# --- Bounds of the calibrated coefficients (the sigmoid maps onto these ranges).
A = ParameterSpec("a", "WCM vegetation backscatter coefficient A", "1", 0.0, 1.0, 0.05)
B = ParameterSpec("b", "WCM attenuation coefficient B (per unit descriptor)", "1", 0.0, 3.0, 0.2)
C_DB = ParameterSpec("c_db", "soil sigma0 at mv = 0 and theta_ref", "dB", -40.0, 5.0, -15.0)
D_DB = ParameterSpec("d_db", "soil sigma0 sensitivity to mv", "dB/(m3/m3)", 0.0, 80.0, 20.0)
F_DB = ParameterSpec("f_db", "soil sigma0 incidence slope", "dB/degree", -1.0, 1.0, -0.1)
SOIL_SPECS: tuple[ParameterSpec, ...] = (C_DB, D_DB, F_DB)

_INIT = {
    "vv": {"a": 0.05, "b": 0.2, "c_db": -12.0, "d_db": 20.0, "f_db": -0.1},
    "vh": {"a": 0.02, "b": 0.1, "c_db": -20.0, "d_db": 20.0, "f_db": -0.1},
}
_OH_MV_EXPONENT = 0.7  # Oh (2004): sigma_vh ∝ mv^0.7 and q = vh/vv does not depend on mv


@dataclass(frozen=True)
class PolarisationCoefficients:
    """Calibrated WCM coefficients of one polarisation.

    Attributes
    ----------
    a : float
        Vegetation backscatter coefficient A (dimensionless, :data:`A` bounds 0–1).
    b : float
        Attenuation coefficient B per unit descriptor (:data:`B` bounds 0–3).
    noise_db : float
        Root-mean-square residual of the fit on the training samples, dB (model plus
        measurement error; the 1-σ error used by :func:`invert_mv`).
    c_db, d_db, f_db : float or None
        Linear soil term (``soil_term="linear"`` only; ``None`` for Oh): intercept (dB),
        sensitivity to mv (dB per m³/m³, 0–80) and incidence slope (dB/degree).
    """

    a: float
    b: float
    noise_db: float
    c_db: float | None = None
    d_db: float | None = None
    f_db: float | None = None


@dataclass(frozen=True)
class WcmCalibration:
    """A named, frozen WCM coefficient set with its provenance.

    Attributes
    ----------
    name : str
        Name of the set, e.g. the crop group ("cereals", "maize") or "pooled".
    soil_term : {"linear", "oh"}
        Soil backscatter model (see the module docstring).
    descriptor : {"lai", "ndvi"}
        Vegetation descriptor V of the WCM (LAI in m²/m², or NDVI).
    vv, vh : PolarisationCoefficients
        Coefficients per polarisation.
    theta_ref : float
        Reference incidence angle of the linear soil term, degrees.
    hrms : float or None
        Oh soil term only: typical rms height, cm (geometric mean of the per-series
        nuisance values of the fit); the default roughness of :func:`forward_db` and
        :func:`invert_mv`.
    series_hrms : tuple of (str, float)
        Oh soil term only: the fitted rms height (cm) of every training series.
    mv_mean, mv_std, mv_min, mv_max : float
        Soil moisture statistics of the training samples, m³/m³: the Gaussian prior and
        the clipping bounds of :func:`invert_mv` (min/max: mean over training series of
        each series' minimum/maximum).
    dataset : str
        Where the training data came from.
    fields : tuple of str
        Series (fields) whose samples were used in the fit (for a shared soil term,
        also those of other groups).
    n_samples : int
        Training samples of this group.
    lofo_rmse : tuple of (str, float)
        Leave-one-field-out scores, filled in by the caller (e.g. ``("vv_db", 2.1)``,
        ``("mv", 0.05)``): a fit only knows its training error (``noise_db``).
    note : str
        Free text (e.g. how a missing crop group was handled).
    """

    name: str
    soil_term: SoilTerm
    descriptor: Descriptor
    vv: PolarisationCoefficients
    vh: PolarisationCoefficients
    theta_ref: float = 40.0
    hrms: float | None = None
    series_hrms: tuple[tuple[str, float], ...] = ()
    mv_mean: float = MV.default
    mv_std: float = 0.1
    mv_min: float = MV.lower
    mv_max: float = MV.upper
    dataset: str = ""
    fields: tuple[str, ...] = ()
    n_samples: int = 0
    lofo_rmse: tuple[tuple[str, float], ...] = ()
    note: str = ""

    def pol(self, pol: str) -> PolarisationCoefficients:
        """Coefficients of polarisation ``pol`` ("vv" or "vh", case-insensitive)."""
        key = pol.lower()
        if key not in POLS:
            raise S1InputError(f"polarisation must be 'vv' or 'vh'; got {pol!r}")
        return getattr(self, key)

    def with_lofo(self, **scores: float) -> WcmCalibration:
        """A copy with leave-one-field-out scores added to :attr:`lofo_rmse`."""
        merged = dict(self.lofo_rmse) | {k: float(v) for k, v in scores.items()}
        return dataclasses.replace(self, lofo_rmse=tuple(sorted(merged.items())))

    def with_note(self, note: str, name: str | None = None) -> WcmCalibration:
        """A copy with ``note`` (and optionally a new ``name``)."""
        return dataclasses.replace(self, note=note, name=self.name if name is None else name)


class MoistureEstimate(NamedTuple):
    """Soil moisture estimate (m³/m³) and its 1-σ uncertainty (m³/m³), per sample."""

    mv: torch.Tensor
    std: torch.Tensor


# --- helpers ----------------------------------------------------------------------------


def _check_soil_term(soil_term: str) -> SoilTerm:
    if soil_term not in SOIL_TERMS:
        raise S1InputError(f"soil_term must be one of {list(SOIL_TERMS)}; got {soil_term!r}")
    return soil_term  # type: ignore[return-value]


def _descriptor_spec(descriptor: str) -> ParameterSpec:
    if descriptor not in ("lai", "ndvi"):
        raise S1InputError(f"descriptor must be 'lai' or 'ndvi'; got {descriptor!r}")
    return LAI if descriptor == "lai" else NDVI


def _bounded(u: torch.Tensor, spec: ParameterSpec) -> torch.Tensor:
    return spec.lower + (spec.upper - spec.lower) * torch.sigmoid(u)


def _unbounded(value: float, spec: ParameterSpec) -> float:
    p = (value - spec.lower) / (spec.upper - spec.lower)
    p = min(max(p, 1e-9), 1.0 - 1e-9)
    return math.log(p / (1.0 - p))


def _labels(name: str, labels: Sequence | np.ndarray | None, n: int) -> tuple[list, np.ndarray]:
    """Unique labels (sorted by first appearance) and the index of every sample."""
    if labels is None:
        return ["all"], np.zeros(n, dtype=np.int64)
    arr = np.asarray(labels).reshape(-1)
    if arr.shape[0] != n:
        raise S1InputError(f"{name} needs one label per sample ({n}); got {arr.shape[0]}")
    uniques, first, index = np.unique(arr, return_index=True, return_inverse=True)
    order = np.argsort(first)
    remap = np.empty_like(order)
    remap[order] = np.arange(len(order))
    return [str(uniques[i]) for i in order], remap[index]


def _soil_db_linear(
    c: torch.Tensor, d: torch.Tensor, f: torch.Tensor, mv: torch.Tensor, theta, theta_ref
):
    return c + d * mv + f * (theta - theta_ref)


def _oh_soil(mv: torch.Tensor, hrms: torch.Tensor, theta: torch.Tensor):
    bare = sar.oh2004(mv, WAVENUMBER_CM * hrms, theta * (math.pi / 180.0))
    return bare.vv, bare.vh


def _wcm_db(soil_lin, v, theta, a, b) -> torch.Tensor:
    total, _, _ = sar.water_cloud(soil_lin, v, theta * (math.pi / 180.0), a, b, 1.0)
    return 10.0 * torch.log10(total)


def _prepare(sigma0_vv, sigma0_vh, theta, v, mv, descriptor, allow_nan: bool):
    spec = _descriptor_spec(descriptor)
    t = {
        "sigma0_vv": as_tensor("sigma0_vv", sigma0_vv),
        "sigma0_vh": as_tensor("sigma0_vh", sigma0_vh),
        "theta": as_tensor("theta", theta),
        descriptor: as_tensor(descriptor, v),
    }
    if mv is not None:
        t["mv"] = as_tensor("mv", mv)
    shape = same_shape(**t)
    check_sigma0("sigma0_vv", t["sigma0_vv"], allow_nan=allow_nan)
    check_sigma0("sigma0_vh", t["sigma0_vh"], allow_nan=allow_nan)
    check_theta(t["theta"], THETA)
    check_range(spec, t[descriptor], descriptor, allow_nan=allow_nan)
    if mv is not None:
        check_range(MV, t["mv"], "mv", allow_nan=allow_nan)
    dtype = torch.promote_types(t["sigma0_vv"].dtype, t["sigma0_vh"].dtype)
    return {k: x.to(dtype).expand(shape) for k, x in t.items()}


def _lbfgs(params: list[torch.Tensor], loss_fn, max_iter: int) -> float:
    opt = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=1e-12,
        tolerance_change=1e-18,
        history_size=50,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    previous = math.inf
    loss = math.inf
    for _ in range(8):
        loss = float(opt.step(closure).detach())
        # stop when an outer step gains < 1e-9 of the loss (a plateau at a bound, or done)
        if not math.isfinite(loss) or previous - loss <= 1e-9 * abs(loss) + 1e-24:
            break
        previous = loss
    return loss


# --- calibration ------------------------------------------------------------------------


def calibrate_wcm(
    sigma0_vv: TensorLike,
    sigma0_vh: TensorLike,
    theta: TensorLike,
    v: TensorLike,
    mv: TensorLike,
    *,
    group: Sequence[str] | np.ndarray | None = None,
    series: Sequence | np.ndarray | None = None,
    soil_term: SoilTerm = "linear",
    descriptor: Descriptor = "lai",
    theta_ref: float = 40.0,
    dataset: str = "",
    max_iter: int = 200,
) -> dict[str, WcmCalibration]:
    """Fit WCM coefficients to measured Sentinel-1 σ0 (VV and VH) by L-BFGS.

    Parameters
    ----------
    sigma0_vv, sigma0_vh : array-like, shape (n,)
        Measured backscatter, **linear** (m²/m², > 0). No NaN (filter first).
    theta : array-like, shape (n,) or scalar
        Local incidence angle, degrees (10–70; Sentinel-1 IW 29–46).
    v : array-like, shape (n,)
        Vegetation descriptor: LAI (m²/m², 0–10) or NDVI (0–1), see ``descriptor``.
    mv : array-like, shape (n,)
        Measured volumetric soil moisture, m³/m³ (0.02–0.5).
    group : sequence of str, optional
        Crop group of every sample (e.g. "cereals", "maize"). Each group gets its own
        vegetation coefficients A, B; the soil term (C, D, F, or the Oh roughness) is
        shared by all groups. Default: one group, "all".
    series : sequence, optional
        Series (field) label of every sample. With ``soil_term="oh"`` every series gets
        its own rms height ``hrms`` (nuisance, bounded 0.1–5 cm); always recorded as
        provenance (``fields``). Default: one series.
    soil_term : {"linear", "oh"}
        Soil term (module docstring). Default "linear".
    descriptor : {"lai", "ndvi"}
        Which descriptor ``v`` is (only changes the range check). Default "lai".
    theta_ref : float
        Reference angle of the linear soil term's incidence slope, degrees.
    dataset : str
        Provenance: name of the data set.
    max_iter : int
        L-BFGS iterations per outer step (up to 8 outer steps until the loss is flat).

    Returns
    -------
    dict of str to WcmCalibration
        One calibration per group, keyed by group name. ``noise_db`` is the group's
        training RMS residual per polarisation.

    Raises
    ------
    S1InputError
        (a ``ValueError``) on empty, NaN, non-positive σ0, θ in radians, out-of-range
        or mismatched inputs.

    Notes
    -----
    The loss is the mean squared dB error of VV plus that of VH. The fit is
    deterministic (fixed start values, :data:`_INIT`). In-sample ``noise_db`` is
    optimistic: score a calibration on fields it did not see.
    """
    soil_term = _check_soil_term(soil_term)
    t = _prepare(sigma0_vv, sigma0_vh, theta, v, mv, descriptor, allow_nan=False)
    n = t["theta"].numel()
    flat = {k: x.reshape(-1) for k, x in t.items()}
    obs = {p: 10.0 * torch.log10(flat[f"sigma0_{p}"]) for p in POLS}
    v_flat = flat[descriptor]
    th, mv_t = flat["theta"], flat["mv"]
    group_names, gidx = _labels("group", group, n)
    series_names, sidx = _labels("series", series, n)
    gi = torch.as_tensor(gidx)
    si = torch.as_tensor(sidx)
    dtype = th.dtype

    def param(value: float, spec: ParameterSpec, size: int = 1) -> torch.Tensor:
        return torch.full((size,), _unbounded(value, spec), dtype=dtype, requires_grad=True)

    veg = {
        p: {
            "a": param(_INIT[p]["a"], A, len(group_names)),
            "b": param(_INIT[p]["b"], B, len(group_names)),
        }
        for p in POLS
    }
    if soil_term == "linear":
        soil = {p: {s.name: param(_INIT[p][s.name], s) for s in SOIL_SPECS} for p in POLS}
        leaves = [x for p in POLS for x in (*veg[p].values(), *soil[p].values())]
    else:
        hrms_u = param(HRMS.default, HRMS, len(series_names))
        leaves = [x for p in POLS for x in veg[p].values()] + [hrms_u]

    def predict() -> dict[str, torch.Tensor]:
        if soil_term == "linear":
            soil_lin = {
                p: torch.pow(
                    10.0,
                    _soil_db_linear(
                        *(_bounded(soil[p][s.name], s) for s in SOIL_SPECS),
                        mv_t,
                        th,
                        theta_ref,
                    )
                    / 10.0,
                )
                for p in POLS
            }
        else:
            s_vv, s_vh = _oh_soil(mv_t, _bounded(hrms_u, HRMS)[si], th)
            soil_lin = {"vv": s_vv, "vh": s_vh}
        return {
            p: _wcm_db(
                soil_lin[p], v_flat, th, _bounded(veg[p]["a"], A)[gi], _bounded(veg[p]["b"], B)[gi]
            )
            for p in POLS
        }

    def loss_fn() -> torch.Tensor:
        pred = predict()
        return sum(((pred[p] - obs[p]) ** 2).mean() for p in POLS)

    _lbfgs(leaves, loss_fn, max_iter)

    with torch.no_grad():
        pred = predict()
        resid = {p: (pred[p] - obs[p]) for p in POLS}
        series_hrms: tuple[tuple[str, float], ...] = ()
        hrms_typ = None
        if soil_term == "oh":
            h = _bounded(hrms_u, HRMS)
            series_hrms = tuple((s, float(h[i])) for i, s in enumerate(series_names))
            hrms_typ = float(torch.exp(torch.log(h).mean()))
        out: dict[str, WcmCalibration] = {}
        mv_np = mv_t.detach().cpu().numpy()
        for g, name in enumerate(group_names):
            sel = gi == g
            pols = {}
            for p in POLS:
                extra = {}
                if soil_term == "linear":
                    extra = {s.name: float(_bounded(soil[p][s.name], s)) for s in SOIL_SPECS}
                pols[p] = PolarisationCoefficients(
                    a=float(_bounded(veg[p]["a"], A)[g]),
                    b=float(_bounded(veg[p]["b"], B)[g]),
                    noise_db=float(resid[p][sel].pow(2).mean().sqrt()),
                    **extra,
                )
            gmask = gidx == g
            per_series = [mv_np[gmask & (sidx == s)] for s in np.unique(sidx[gmask])]
            out[name] = WcmCalibration(
                name=name,
                soil_term=soil_term,
                descriptor=descriptor,
                vv=pols["vv"],
                vh=pols["vh"],
                theta_ref=float(theta_ref),
                hrms=hrms_typ,
                series_hrms=series_hrms,
                mv_mean=float(mv_np[gmask].mean()),
                mv_std=float(mv_np[gmask].std()) if gmask.sum() > 1 else 0.1,
                mv_min=float(np.mean([s.min() for s in per_series])),
                mv_max=float(np.mean([s.max() for s in per_series])),
                dataset=dataset,
                fields=tuple(series_names),
                n_samples=int(gmask.sum()),
            )
    return out


# --- forward model and inversion --------------------------------------------------------


def _soil_lin(cal: WcmCalibration, pol: str, mv, theta, hrms) -> torch.Tensor:
    c = cal.pol(pol)
    if cal.soil_term == "linear":
        return torch.pow(
            10.0, _soil_db_linear(c.c_db, c.d_db, c.f_db, mv, theta, cal.theta_ref) / 10
        )
    s_vv, s_vh = _oh_soil(mv, hrms, theta)
    return s_vv if pol == "vv" else s_vh


def _hrms_tensor(cal: WcmCalibration, hrms: TensorLike | None, like: torch.Tensor):
    if cal.soil_term != "oh":
        return None
    value = cal.hrms if hrms is None else hrms
    if value is None:
        raise S1InputError("an Oh calibration needs hrms (cm): give hrms=... or cal.hrms")
    h = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    check_range(HRMS, h, "hrms")
    return h


def forward_db(
    cal: WcmCalibration,
    mv: TensorLike,
    theta: TensorLike,
    v: TensorLike,
    hrms: TensorLike | None = None,
) -> sar.Backscatter:
    """σ0 in dB (VV, VH) of a calibrated WCM.

    Parameters
    ----------
    cal : WcmCalibration
        Coefficients (from :func:`calibrate_wcm`).
    mv : array-like
        Volumetric soil moisture, m³/m³ (0.02–0.5).
    theta : array-like
        Incidence angle, degrees (10–70).
    v : array-like
        Descriptor ``cal.descriptor`` (LAI m²/m², or NDVI).
    hrms : array-like, optional
        Oh soil term only: rms height, cm (0.1–5); default ``cal.hrms``.

    Returns
    -------
    Backscatter
        ``(vv, vh)`` in dB, broadcast shape; differentiable in ``mv``, ``theta``, ``v``.
    """
    spec = _descriptor_spec(cal.descriptor)
    mv_t, th, vt = (as_tensor(n, x) for n, x in (("mv", mv), ("theta", theta), ("v", v)))
    check_range(MV, mv_t, "mv", allow_nan=True)
    check_theta(th, THETA)
    check_range(spec, vt, cal.descriptor, allow_nan=True)
    h = _hrms_tensor(cal, hrms, th)
    out = []
    for p in POLS:
        c = cal.pol(p)
        out.append(_wcm_db(_soil_lin(cal, p, mv_t, th, h), vt, th, c.a, c.b))
    return sar.Backscatter(*out)


def estimate_hrms(
    sigma0_vv: TensorLike,
    sigma0_vh: TensorLike,
    theta: TensorLike,
    v: TensorLike,
    cal: WcmCalibration,
    mv: TensorLike | None = None,
    n_grid: int = 400,
) -> float:
    """Rms height (cm) of one series from its σ0 alone, for an Oh calibration.

    The roughness nuisance of a new series: the ``hrms`` in [0.1, 5] cm (log grid of
    ``n_grid`` values) minimising the squared dB error of VV and VH over the series, at
    soil moisture ``mv`` (default: the calibration's training mean ``cal.mv_mean``, so
    no measured moisture of the series is needed).

    Parameters
    ----------
    sigma0_vv, sigma0_vh : array-like, shape (n,)
        Linear σ0 of the series (> 0; NaN samples are ignored).
    theta, v : array-like, shape (n,)
        Incidence angle (degrees) and descriptor.
    cal : WcmCalibration
        An Oh calibration (``soil_term="oh"``).
    mv : array-like, optional
        Soil moisture assumed for the series, m³/m³.

    Returns
    -------
    float
        The rms height, cm.
    """
    if cal.soil_term != "oh":
        raise S1InputError("estimate_hrms needs an Oh calibration (soil_term='oh')")
    t = _prepare(sigma0_vv, sigma0_vh, theta, v, mv, cal.descriptor, allow_nan=True)
    mv_t = t.get("mv", torch.full_like(t["theta"], cal.mv_mean)).reshape(1, -1)
    th = t["theta"].reshape(1, -1)
    vt = t[cal.descriptor].reshape(1, -1)
    grid = torch.logspace(math.log10(HRMS.lower), math.log10(HRMS.upper), n_grid, dtype=th.dtype)
    grid = grid.clamp(HRMS.lower, HRMS.upper)
    h = grid.reshape(-1, 1)
    loss = torch.zeros(n_grid, dtype=th.dtype)
    for p in POLS:
        c = cal.pol(p)
        obs = 10.0 * torch.log10(t[f"sigma0_{p}"].reshape(1, -1))
        pred = _wcm_db(_soil_lin(cal, p, mv_t, th, h), vt, th, c.a, c.b)
        loss = loss + torch.nansum((pred - obs) ** 2, dim=1)
    return float(grid[int(torch.argmin(loss))])


def invert_mv(
    sigma0_vv: TensorLike | None,
    sigma0_vh: TensorLike | None,
    theta: TensorLike,
    lai: TensorLike,
    coefficients: WcmCalibration,
    *,
    hrms: TensorLike | None = None,
    prior: bool = True,
    clip: bool = True,
) -> MoistureEstimate:
    """Soil moisture per sample by inverting a calibrated WCM (closed form).

    For every polarisation given, the soil contribution is isolated from the WCM,
    ``σ0_soil = (σ0 − A V cos θ (1 − τ²)) / τ²``, and the soil term inverted:

    * linear: ``mv = (10 log10 σ0_soil − C − F (θ − θ_ref)) / D``;
    * Oh (2004): σ0_soil ∝ mv^0.7 for VV and VH (q = σvh/σvv does not depend on mv), so
      ``log10 mv = (10 log10 σ0_soil − 10 log10 K(ks, θ)) / 7``.

    The 1-σ error of 10 log10 σ0_soil is ``noise_db · σ0 / (σ0 − vegetation term)``
    (the calibration's residual propagated through the subtraction); where σ0 does
    not exceed the vegetation term a polarisation carries no information. VV and VH
    are combined by inverse-variance weighting, then (``prior=True``) with the
    Gaussian prior N(``mv_mean``, ``mv_std``²) of the calibration (optimal estimation,
    Rodgers 2000), and (``clip=True``) clipped to [``mv_min``, ``mv_max``].

    Parameters
    ----------
    sigma0_vv, sigma0_vh : array-like or None
        Linear σ0 (m²/m², > 0); NaN samples give NaN (or the prior). Give at least one.
    theta : array-like
        Incidence angle, degrees (10–70).
    lai : array-like
        Descriptor of the calibration (LAI in m²/m², or NDVI for an NDVI calibration).
    coefficients : WcmCalibration
        From :func:`calibrate_wcm`.
    hrms : array-like, optional
        Oh soil term: rms height, cm; default ``coefficients.hrms``.
    prior : bool
        Combine with the calibration's moisture prior (default True).
    clip : bool
        Clip the estimate to the calibration's moisture bounds (default True).

    Returns
    -------
    MoistureEstimate
        ``mv`` and ``std`` (m³/m³), the broadcast shape of the inputs. Differentiable
        with respect to the σ0 (away from the clipping bounds). The ``std`` does not
        shrink when clipping.

    Raises
    ------
    S1InputError
        On bad inputs (all-NaN, non-positive σ0, θ in radians, mismatched shapes).
    """
    cal = coefficients
    if sigma0_vv is None and sigma0_vh is None:
        raise S1InputError("give sigma0_vv and/or sigma0_vh")
    spec = _descriptor_spec(cal.descriptor)
    inputs = {"theta": as_tensor("theta", theta), "lai": as_tensor("lai", lai)}
    for p, x in (("vv", sigma0_vv), ("vh", sigma0_vh)):
        if x is not None:
            inputs[f"sigma0_{p}"] = as_tensor(f"sigma0_{p}", x)
            check_sigma0(f"sigma0_{p}", inputs[f"sigma0_{p}"])
    shape = same_shape(**inputs)
    check_theta(inputs["theta"], THETA)
    check_range(spec, inputs["lai"], "lai", allow_nan=True)
    dtype = inputs["theta"].dtype
    for x in inputs.values():
        dtype = torch.promote_types(dtype, x.dtype)
    t = {k: x.to(dtype).expand(shape) for k, x in inputs.items()}
    th, v = t["theta"], t["lai"]
    rad = th * (math.pi / 180.0)
    cos_t = torch.cos(rad)
    h = _hrms_tensor(cal, hrms, th)

    num = torch.zeros(shape, dtype=dtype)
    den = torch.zeros(shape, dtype=dtype)
    for p in POLS:
        if f"sigma0_{p}" not in t:
            continue
        c = cal.pol(p)
        sig = t[f"sigma0_{p}"]
        tau2 = torch.exp(-2.0 * c.b * v / cos_t)
        veg = c.a * v * cos_t * (1.0 - tau2)
        excess = sig - veg
        ok = torch.isfinite(sig) & (excess > 0)
        safe_excess = torch.where(ok, excess, torch.ones_like(excess))
        soil_db = 10.0 * torch.log10(safe_excess / tau2)
        err_db = c.noise_db * torch.where(ok, sig, torch.ones_like(sig)) / safe_excess
        if cal.soil_term == "linear":
            d = max(float(c.d_db), 1e-9)
            est = (soil_db - c.c_db - c.f_db * (th - cal.theta_ref)) / d
            var = (err_db / d) ** 2
        else:
            k_db = 10.0 * torch.log10(_soil_lin(cal, p, torch.ones_like(th), th, h))
            log_mv = (soil_db - k_db) / (10.0 * _OH_MV_EXPONENT)
            est = torch.pow(10.0, log_mv)
            var = (est * math.log(10.0) * err_db / (10.0 * _OH_MV_EXPONENT)) ** 2
        w = torch.where(ok, 1.0 / var, torch.zeros_like(var))
        num = num + w * torch.where(ok, est, torch.zeros_like(est))
        den = den + w
    if prior:
        w0 = 1.0 / cal.mv_std**2
        num = num + w0 * cal.mv_mean
        den = den + w0
    has_info = den > 0
    safe_den = torch.where(has_info, den, torch.ones_like(den))
    nan = torch.full_like(den, math.nan)
    mv = torch.where(has_info, num / safe_den, nan)
    std = torch.where(has_info, safe_den.rsqrt(), nan)
    if clip:
        mv = mv.clamp(cal.mv_min, cal.mv_max)
    return MoistureEstimate(mv, std)
