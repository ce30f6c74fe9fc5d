"""Sentinel-1 C-band backscatter: bare-soil models inside the Water Cloud Model.

Bare soil (linear sigma0, m²/m²):

* **Oh 2004** — Oh, Y. (2004), *Quantitative retrieval of soil moisture content and
  surface roughness from multipolarized radar observations of bare soil surfaces*,
  IEEE TGRS 42(3):596–601. Inputs: mv (m³/m³), ks, θ; no dielectric model needed::

      σvh = 0.11 mv^0.7 cos^2.2 θ (1 − exp(−0.32 ks^1.8))
      q   = σvh/σvv = 0.095 (0.13 + sin 1.5θ)^1.4 (1 − exp(−1.3 ks^0.9))
      p   = σhh/σvv = 1 − (2θ/π)^(0.35 mv^−0.65) exp(−0.4 ks^1.4)

  Calibrated on 0.13 ≤ ks ≤ 6.98, 0.04 ≤ mv ≤ 0.291, 10° ≤ θ ≤ 70°.
* **Dubois 1995** — Dubois, P. C., van Zyl, J., Engman, T. (1995), *Measuring soil
  moisture with imaging radars*, IEEE TGRS 33(4):915–926::

      σvv = 10^−2.35 (cos³θ / sin³θ) 10^(0.046 ε' tanθ) (ks sinθ)^1.1 λ^0.7
      σhh = 10^−2.75 (cos^1.5θ / sin^5θ) 10^(0.028 ε' tanθ) (ks sinθ)^1.4 λ^0.7

  (λ in cm; valid for ks ≤ 2.5, mv ≤ 0.35, θ ≥ 30°). ε' comes from
  :func:`~xr_physcube.models.dielectric.hallikainen` (default) or
  :func:`~xr_physcube.models.dielectric.dobson`. Dubois has no cross-polarised
  model: with ``soil_model="dubois"`` the VH soil term is Oh (2004)'s σvh.

Vegetation: **Water Cloud Model**, Attema, E. P. W. & Ulaby, F. T. (1978), *Vegetation
modeled as a water cloud*, Radio Science 13(2):357–364, with the exponent on the
descriptor of Prévot, Champion & Guyot (1993), RSE 46(3):331–339::

    τ² = exp(−2 B V / cos θ)
    σ0 = A V^E cos θ (1 − τ²) + τ² σ0_soil          (per polarisation)

with V the leaf area index (``descriptor="lai"``) or NDVI (``descriptor="ndvi"``).
Default coefficients: :data:`WCM_COEFFICIENTS` (sources there; the NDVI values are
attributed to Baghdadi et al. 2017 but could not be verified offline, and the LAI values
are derived here, not published — see the comments on :data:`WCM_COEFFICIENTS`).

The bare-soil models live in :mod:`xr_physcube.models.soil_backscatter` (re-exported
here); this module owns the Water Cloud Model that composes them.

All functions are batched over any broadcastable shape, follow the inputs' dtype and
device and are differentiable w.r.t. every continuous input and coefficient.
Frequency, wavelength and dB conversion come from :mod:`xr_physcube.sensors.sentinel1`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import nn

from xr_physcube.exceptions import InvalidArgumentError
from xr_physcube.models import sail as _sail
from xr_physcube.models.dielectric import (
    CLAY,
    MV,
    SAND,
    DielectricModel,
    check_dielectric_model,
)
from xr_physcube.models.soil_backscatter import (
    HRMS,
    SOIL_MODELS,
    SOIL_PARAMETERS,
    THETA,
    BareSoilBackscatter,
    SoilModel,
    SoilParameters,
    bare_soil_backscatter,
    check_soil_model,
    dubois1995,
    oh2004,
    validate_soil,
)
from xr_physcube.parameters import (
    ParameterSet,
    ParameterSpec,
    TensorLike,
    TensorParameters,
    as_tensors,
    deg2rad,
    spec_field,
)
from xr_physcube.sensors import sentinel1 as s1
from xr_physcube.sensors.sentinel1 import DB_FLOOR, db_to_linear, linear_to_db
from xr_physcube.validation import check_arrays

Descriptor = Literal["lai", "ndvi"]

__all__ = [
    "MV", "HRMS", "THETA", "LAI", "NDVI", "SAND", "CLAY",
    "SoilParameters", "VegetationParameters", "WcmCoefficients", "WCM_COEFFICIENTS",
    "Backscatter", "BareSoilBackscatter", "oh2004", "dubois1995", "bare_soil_backscatter",
    "water_cloud", "water_cloud_backscatter", "WaterCloud", "to_db", "db_to_linear",
    "SOIL_MODELS", "SOIL_PARAMETERS", "SoilModel", "check_soil_model",
]  # fmt: skip
"""The radar API: the Water Cloud Model (here) and the bare-soil models and inputs it
composes (:mod:`xr_physcube.models.soil_backscatter`, re-exported)."""

# --- Input specifications (declared once; MV, SAND, CLAY live in models.dielectric,
# HRMS, THETA in models.soil_backscatter, LAI in models.sail; re-exported here).
LAI = _sail.LAI
NDVI = ParameterSpec("ndvi", "normalized difference vegetation index", "1", 0.0, 1.0, 0.5)

A_VV = ParameterSpec("a_vv", "WCM vegetation backscatter coefficient A, VV", "1", 0.0, 1.0, 0.019)
B_VV = ParameterSpec("b_vv", "WCM attenuation coefficient B, VV", "1", 0.0, 3.0, 0.126)
E_VV = ParameterSpec("e_vv", "WCM exponent E of the descriptor, VV", "1", 0.0, 3.0, 1.0)
A_VH = ParameterSpec("a_vh", "WCM vegetation backscatter coefficient A, VH", "1", 0.0, 1.0, 0.006)
B_VH = ParameterSpec("b_vh", "WCM attenuation coefficient B, VH", "1", 0.0, 3.0, 0.025)
E_VH = ParameterSpec("e_vh", "WCM exponent E of the descriptor, VH", "1", 0.0, 3.0, 1.0)

WCM_COEFFICIENTS: dict[str, dict[str, float]] = {
    # Attributed to Baghdadi, N., El Hajj, M., Zribi, M., Bousbih, S. (2017), "Calibration
    # of the Water Cloud Model at C-band for winter crop fields and grasslands", Remote
    # Sensing 9(9):969 (WCM with V1 = V2 = NDVI, soil term from the Baghdadi-calibrated
    # IEM), used by El Hajj et al. (2017), Remote Sensing 9(12):1292, for S1+S2 soil
    # moisture maps.
    # UNVERIFIED: these four numbers were transcribed from memory. A search of the offline
    # corpora (public web pages, docs, GitHub code incl. the SenSE package pygeo/sense,
    # which cites the paper but ships no NDVI coefficients) found neither paper's
    # coefficient table, so A/B could not be checked against Baghdadi et al. (2017);
    # they are kept unchanged because the shipped S1 inverse network was trained on them.
    # The VV pair is used, with the same attribution ("baghdadi winter crop") and the same
    # WCM form, by independent Earth Engine code (GitHub benedettabb/radar, wmc.js); the
    # VH pair was found nowhere else (data/SOURCES.md).
    # Check against the paper's table before quoting them.
    "ndvi": {"a_vv": 0.0950, "b_vv": 0.5513, "e_vv": 1.0,
             "a_vh": 0.0293, "b_vh": 0.1309, "e_vh": 1.0},
    # LAI form (E = 1, Attema & Ulaby 1978): NOT a published calibration. A and B were
    # derived here by least squares (LAI 0-6, theta 29-46 deg, soil sigma0 -18..-7 dB VV /
    # -28..-16 dB VH; RMS 0.9 dB) to reproduce the NDVI model above composed with the
    # NDVI-LAI relation NDVI = 0.90 - 0.75 exp(-0.6 LAI) (form of Baret & Guyot 1991, RSE
    # 35:161-173). Indicative defaults: calibrate per crop (WaterCloud with learnable=True).
    "lai": {"a_vv": 0.019, "b_vv": 0.126, "e_vv": 1.0,
            "a_vh": 0.006, "b_vh": 0.025, "e_vh": 1.0},
}  # fmt: skip
"""Published/derived default WCM coefficients per vegetation descriptor (see comments)."""


@dataclass
class VegetationParameters(TensorParameters):
    """Vegetation descriptors of the WCM; the model uses ``lai`` or ``ndvi`` (its descriptor)."""

    lai: torch.Tensor | float = spec_field(LAI)
    ndvi: torch.Tensor | float = spec_field(NDVI)


@dataclass
class WcmCoefficients(TensorParameters):
    """Per-polarisation WCM coefficients A, B (and exponent E) for one descriptor.

    Field defaults are the LAI-form values; use :meth:`published` to get the defaults
    of a descriptor (see :data:`WCM_COEFFICIENTS` for their sources).
    """

    a_vv: torch.Tensor | float = spec_field(A_VV)
    b_vv: torch.Tensor | float = spec_field(B_VV)
    e_vv: torch.Tensor | float = spec_field(E_VV)
    a_vh: torch.Tensor | float = spec_field(A_VH)
    b_vh: torch.Tensor | float = spec_field(B_VH)
    e_vh: torch.Tensor | float = spec_field(E_VH)

    @classmethod
    def published(cls, descriptor: Descriptor = "lai", **overrides: TensorLike) -> WcmCoefficients:
        """Default coefficients for ``descriptor`` ("lai" or "ndvi"), optionally overridden."""
        return cls(**{**WCM_COEFFICIENTS[_check_descriptor(descriptor)], **overrides})


VEGETATION_PARAMETERS: ParameterSet = VegetationParameters.parameter_set()
WCM_PARAMETERS: ParameterSet = WcmCoefficients.parameter_set()


class Backscatter(NamedTuple):
    """Total sigma0 (linear, m²/m²) for Sentinel-1 polarisations VV and VH."""

    vv: torch.Tensor
    vh: torch.Tensor


def to_db(sigma0: Backscatter | BareSoilBackscatter | torch.Tensor, floor: float | None = DB_FLOOR):
    """Linear sigma0 (a tensor or a Backscatter tuple) to dB via :func:`sentinel1.linear_to_db`
    (``floor``: linear, default :data:`~xr_physcube.sensors.sentinel1.DB_FLOOR`)."""
    if isinstance(sigma0, tuple):
        return type(sigma0)(*(linear_to_db(v, floor) for v in sigma0))
    return linear_to_db(sigma0, floor)


def _check_descriptor(descriptor: str) -> Descriptor:
    if descriptor not in ("lai", "ndvi"):
        raise InvalidArgumentError(f"descriptor must be 'lai' or 'ndvi'; got {descriptor!r}")
    return descriptor  # type: ignore[return-value]


# --- Water Cloud Model ----------------------------------------------------------------


def _safe_pow(v: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """v**e for v >= 0 with 0**e = 0 and finite gradients at v = 0."""
    positive = v > 0
    v_safe = torch.where(positive, v, torch.ones_like(v))
    return torch.where(positive, v_safe.pow(e), torch.zeros_like(v))


def water_cloud(
    soil_sigma0: torch.Tensor,
    descriptor: torch.Tensor,
    theta_rad: torch.Tensor,
    a: torch.Tensor | float,
    b: torch.Tensor | float,
    e: torch.Tensor | float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One polarisation of the WCM: returns (total, vegetation term, two-way τ²)."""
    cos_t = torch.cos(theta_rad)
    e = torch.as_tensor(e, dtype=descriptor.dtype, device=descriptor.device)
    tau2 = torch.exp(-2.0 * b * descriptor / cos_t)
    veg = a * _safe_pow(descriptor, e) * cos_t * (1.0 - tau2)
    return veg + tau2 * soil_sigma0, veg, tau2


def water_cloud_backscatter(
    mv: TensorLike = MV.default,
    hrms: TensorLike = HRMS.default,
    theta: TensorLike = THETA.default,
    lai: TensorLike | None = None,
    ndvi: TensorLike | None = None,
    *,
    sand: TensorLike = SAND.default,
    clay: TensorLike = CLAY.default,
    coefficients: WcmCoefficients | None = None,
    soil_model: SoilModel = "oh",
    dielectric: DielectricModel = "hallikainen",
    validate: bool = True,
    compile: bool = False,
) -> Backscatter:
    """Sentinel-1 VV/VH sigma0 (linear) of a vegetated field: WCM over a bare-soil model.

    Args:
        mv: volumetric soil moisture, m³/m³ (0.02–0.5).
        hrms: surface rms height, cm (0.1–5).
        theta: incidence angle, degrees (10–70; Sentinel-1 IW is 29.1–46°).
        lai: leaf area index, m²/m² (0–10) — gives ``descriptor="lai"``; or
        ndvi: NDVI (0–1) — gives ``descriptor="ndvi"``. Exactly one must be given.
        sand, clay: sand and clay mass fractions of the soil, 0–1 with sand + clay <= 1
            (``ValueError`` naming both otherwise). They enter only through the soil
            permittivity, which only ``soil_model="dubois"`` uses; with the default
            ``soil_model="oh"`` they have no effect (only range-checked).
        coefficients: WCM A/B/E; default :meth:`WcmCoefficients.published` for the descriptor.
        soil_model: bare-soil model, case-insensitive: "oh" (default; Oh 2004, a function
            of ``mv``, ``hrms`` and ``theta`` only) or "dubois" (Dubois 1995 VV from the
            permittivity ε' of the ``dielectric`` model at ``sand``/``clay``; VH from Oh).
        dielectric: soil permittivity model used by ``soil_model="dubois"`` only,
            case-insensitive: "hallikainen" (Hallikainen et al. 1985) or "dobson"
            (Dobson et al. 1985); ignored by "oh".
        validate: raise ``ValueError`` on NaN or out-of-range inputs.
        compile: run the Oh + WCM arithmetic through ``torch.compile`` (one fused kernel,
            ~3x faster on CPU for large batches; the first call per shape/dtype compiles
            for ~10-30 s and needs a C++ compiler on CPU). Only with ``soil_model="oh"``.
            Results equal the eager path to rounding.

    Returns:
        :class:`Backscatter` (vv, vh), linear sigma0 with the broadcast batch shape;
        use :func:`to_db` for decibels.
    """
    if (lai is None) == (ndvi is None):
        raise InvalidArgumentError("give exactly one vegetation descriptor: lai=... or ndvi=...")
    descriptor: Descriptor = "lai" if lai is not None else "ndvi"
    value = lai if lai is not None else ndvi
    soil_model = check_soil_model(soil_model)
    dielectric = check_dielectric_model(dielectric)
    coefficients = coefficients or WcmCoefficients.published(descriptor)
    soil = SoilParameters(mv=mv, hrms=hrms, theta=theta, sand=sand, clay=clay)
    return _run_wcm(
        soil, descriptor, value, coefficients.as_dict(), soil_model, dielectric, validate, compile
    )


def _run_wcm(
    soil: SoilParameters,
    descriptor: Descriptor,
    value: TensorLike,
    coeffs: dict[str, TensorLike],
    soil_model: SoilModel,
    dielectric: DielectricModel,
    validate: bool,
    compile: bool = False,
) -> Backscatter:
    spec = LAI if descriptor == "lai" else NDVI
    if compile and soil_model != "oh":
        raise InvalidArgumentError("compile=True is only available with soil_model='oh'")
    if validate:
        check_arrays({descriptor: value, **soil.as_dict()}, f"Water Cloud Model ({descriptor})")
        spec.check(value, f"Water Cloud Model ({descriptor})")
        WCM_PARAMETERS.validate(coeffs, "Water Cloud Model coefficients")
    if soil_model == "oh":
        values = soil.as_dict()
        if validate:
            validate_soil(values, "bare soil (oh)")
        st = as_tensors({k: values[k] for k in ("mv", "hrms", "theta")})
        t = as_tensors({"v": value, "mv": st["mv"], "hrms": st["hrms"], "theta": st["theta"]})
        v = t["v"]
        c = {k: torch.as_tensor(x, dtype=v.dtype, device=v.device) for k, x in coeffs.items()}
        unit_e = all(
            not c[k].requires_grad and c[k].numel() == 1 and float(c[k]) == 1.0
            for k in ("e_vv", "e_vh")
        )
        core = _compiled_oh_wcm() if compile else _oh_wcm_core
        vv, vh = core(t["mv"], t["hrms"], t["theta"], v, *(c[k] for k in WCM_PARAMETERS), unit_e)
        return Backscatter(vv, vh)
    bare = bare_soil_backscatter(
        soil, soil_model=soil_model, dielectric=dielectric, validate=validate
    )
    t = as_tensors({"v": value, "theta": soil.theta, "vv": bare.vv, "vh": bare.vh})
    v = t["v"]
    c = {k: torch.as_tensor(x, dtype=v.dtype, device=v.device) for k, x in coeffs.items()}
    theta = deg2rad(t["theta"])
    vv, _, _ = water_cloud(t["vv"], v, theta, c["a_vv"], c["b_vv"], c["e_vv"])
    vh, _, _ = water_cloud(t["vh"], v, theta, c["a_vh"], c["b_vh"], c["e_vh"])
    return Backscatter(vv, vh)


def _oh_wcm_core(mv, hrms, theta_deg, v, a_vv, b_vv, e_vv, a_vh, b_vh, e_vh, unit_e: bool):
    """Oh (2004) VV/VH soil terms inside the WCM, in as few passes as possible.

    The same equations as :func:`oh2004` and :func:`water_cloud`; x**c is written
    exp(c·log x) (all bases are > 0 here), cos θ and log ks are shared, and V**E is
    skipped when both exponents are a fixed 1. No Python branches on data, so
    ``torch.compile(fullgraph=True)`` fuses it.
    """
    theta = theta_deg * (math.pi / 180.0)
    cos_t = torch.cos(theta)
    log_cos = torch.log(cos_t)
    log_ks = torch.log(s1.WAVENUMBER_CM * hrms)
    soil_vh = (
        0.11
        * torch.exp(0.7 * torch.log(mv) + 2.2 * log_cos)
        * (1.0 - torch.exp(-0.32 * torch.exp(1.8 * log_ks)))
    )
    q = (
        0.095
        * torch.exp(1.4 * torch.log(0.13 + torch.sin(1.5 * theta)))
        * (1.0 - torch.exp(-1.3 * torch.exp(0.9 * log_ks)))
    )
    soil_vv = soil_vh / q
    inv_cos = 1.0 / cos_t
    out = []
    for soil_s, a, b, e in ((soil_vv, a_vv, b_vv, e_vv), (soil_vh, a_vh, b_vh, e_vh)):
        tau2 = torch.exp((-2.0 * b) * v * inv_cos)
        veg = v if unit_e else _safe_pow(v, e)
        out.append(a * veg * cos_t * (1.0 - tau2) + tau2 * soil_s)
    return out[0], out[1]


@functools.cache
def _compiled_oh_wcm():
    return torch.compile(_oh_wcm_core, dynamic=False, fullgraph=True)


class WaterCloud(nn.Module):
    """Water Cloud Model over a bare-soil model, as an ``nn.Module``.

    Args:
        soil_model: "oh" (Oh 2004) or "dubois" (Dubois 1995 VV with Oh 2004 VH);
            case-insensitive. Only "dubois" uses ``sand``/``clay`` (via ``dielectric``).
        descriptor: vegetation descriptor "lai" or "ndvi".
        dielectric: soil permittivity model for Dubois, "hallikainen" or "dobson"
            (case-insensitive; ignored by "oh").
        coefficients: WCM A/B/E; default: :meth:`WcmCoefficients.published` (descriptor).
        learnable: hold the six coefficients as ``nn.Parameter`` (for calibration by
            gradient descent) instead of buffers.
        validate: raise ``ValueError`` on NaN or out-of-range inputs.
        compile: fused ``torch.compile`` path (Oh soil model only; see
            :func:`water_cloud_backscatter`).

    ``forward(soil: SoilParameters, vegetation: VegetationParameters) -> Backscatter``
    (linear VV, VH; only the chosen descriptor field of ``vegetation`` is used).
    """

    def __init__(
        self,
        soil_model: SoilModel = "oh",
        descriptor: Descriptor = "lai",
        dielectric: DielectricModel = "hallikainen",
        coefficients: WcmCoefficients | None = None,
        learnable: bool = False,
        validate: bool = True,
        compile: bool = False,
    ):
        super().__init__()
        self.soil_model = check_soil_model(soil_model)
        if compile and self.soil_model != "oh":
            raise InvalidArgumentError("compile=True is only available with soil_model='oh'")
        self.compile = compile
        self.descriptor = _check_descriptor(descriptor)
        self.dielectric: DielectricModel = check_dielectric_model(dielectric)
        self.validate = validate
        coefficients = coefficients or WcmCoefficients.published(descriptor)
        if validate:
            coefficients.validate("WaterCloud coefficients")
        self._names = tuple(WCM_PARAMETERS)
        for name, value in coefficients.as_dict().items():
            tensor = torch.as_tensor(value, dtype=torch.get_default_dtype()).clone()
            if learnable:
                self.register_parameter(name, nn.Parameter(tensor))
            else:
                self.register_buffer(name, tensor)

    def extra_repr(self) -> str:
        return (
            f"soil_model={self.soil_model!r}, descriptor={self.descriptor!r}, "
            f"dielectric={self.dielectric!r}, validate={self.validate}, compile={self.compile}"
        )

    def coefficients(self) -> WcmCoefficients:
        return WcmCoefficients(**{n: getattr(self, n) for n in self._names})

    def forward(self, soil: SoilParameters, vegetation: VegetationParameters) -> Backscatter:
        """Sentinel-1 VV and VH backscatter of vegetated fields.

        Args:
            soil: :class:`SoilParameters` — ``mv`` (m³/m³), ``hrms`` (cm), ``theta``
                (incidence, degrees), ``sand``/``clay`` (mass fractions, used by
                ``soil_model="dubois"`` only); see ``help(SoilParameters)`` for ranges.
            vegetation: :class:`VegetationParameters`; only the module's descriptor
                field is read (``lai`` in m²/m², or ``ndvi``, dimensionless).
                Fields of both may be floats, arrays or tensors of broadcastable shapes.

        Returns:
            :class:`Backscatter` (vv, vh): linear sigma0 (m²/m²) with the broadcast batch
            shape (:func:`to_db` for decibels); dtype/device follow the inputs.
            Differentiable w.r.t. the inputs and the WCM coefficients.

        Raises:
            ValueError: NaN or out-of-range inputs, or sand + clay > 1, unless the
                module was built with ``validate=False``.
        """
        value = getattr(vegetation, self.descriptor)
        coeffs = {n: getattr(self, n) for n in self._names}
        return _run_wcm(
            soil,
            self.descriptor,
            value,
            coeffs,
            self.soil_model,
            self.dielectric,
            self.validate,
            self.compile,
        )
