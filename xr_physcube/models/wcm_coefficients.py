"""The Water Cloud Model of the Sentinel-1 soil-moisture methods: its coefficients,
their bounds and provenance, and the model itself (pure PyTorch, no xarray).

Per polarisation p ∈ {VV, VH}, with the vegetation descriptor V (LAI, or NDVI) and the
incidence angle θ (Attema & Ulaby 1978)::

    τ²      = exp(−2 B V / cos θ)
    σ0      = A V cos θ (1 − τ²) + τ² σ0_soil                       (linear, m²/m²)

with the soil term ``"linear"`` (``10 log10 σ0_soil = C + D mv + F (θ − θ_ref)``) or
``"oh"`` (Oh 2004, a function of mv, θ and the rms height ``hrms``); see
:mod:`~xr_physcube.models.wcm_calibration` (fitting the coefficients) and
:mod:`~xr_physcube.models.wcm_inversion` (forward model in dB, inversion for mv).

References
----------
.. [1] Attema, E. P. W. & Ulaby, F. T. (1978), Vegetation modeled as a water cloud,
   Radio Science 13(2):357–364.
.. [2] Oh, Y. (2004), Quantitative retrieval of soil moisture content and surface
   roughness from multipolarized radar observations of bare soil surfaces, IEEE TGRS
   42(3):596–601.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch

from xr_physcube.exceptions import InvalidArgumentError
from xr_physcube.models import sar
from xr_physcube.models._s1_inputs import (
    as_tensor,
    check_range,
    check_sigma0,
    check_theta,
    descriptor_spec,
    same_shape,
)
from xr_physcube.models.dielectric import MV
from xr_physcube.models.sar import THETA
from xr_physcube.parameters import ParameterSpec
from xr_physcube.sensors.sentinel1 import WAVENUMBER_CM, linear_to_db

SoilTerm = Literal["linear", "oh"]
SOIL_TERMS: tuple[str, ...] = ("linear", "oh")
Descriptor = Literal["lai", "ndvi"]
POLS: tuple[str, ...] = ("vv", "vh")

__all__ = [
    "A", "B", "C_DB", "D_DB", "F_DB", "SOIL_SPECS", "SOIL_TERMS", "SoilTerm", "Descriptor",
    "PolarisationCoefficients", "WcmCalibration", "MoistureEstimate", "check_soil_term",
]  # fmt: skip

# --- Bounds of the calibrated coefficients (the sigmoid maps onto these ranges).
A = ParameterSpec("a", "WCM vegetation backscatter coefficient A", "1", 0.0, 1.0, 0.05)
B = ParameterSpec("b", "WCM attenuation coefficient B (per unit descriptor)", "1", 0.0, 3.0, 0.2)
C_DB = ParameterSpec("c_db", "soil sigma0 at mv = 0 and theta_ref", "dB", -40.0, 5.0, -15.0)
D_DB = ParameterSpec("d_db", "soil sigma0 sensitivity to mv", "dB/(m3/m3)", 0.0, 80.0, 20.0)
F_DB = ParameterSpec("f_db", "soil sigma0 incidence slope", "dB/degree", -1.0, 1.0, -0.1)
SOIL_SPECS: tuple[ParameterSpec, ...] = (C_DB, D_DB, F_DB)


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
        measurement error; the 1-σ error used by
        :func:`~xr_physcube.models.wcm_inversion.invert_mv`).
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
        nuisance values of the fit); the default roughness of the forward model and the
        inversion (:mod:`~xr_physcube.models.wcm_inversion`).
    series_hrms : tuple of (str, float)
        Oh soil term only: the fitted rms height (cm) of every training series.
    mv_mean, mv_std, mv_min, mv_max : float
        Soil moisture statistics of the training samples, m³/m³: the Gaussian prior and
        the clipping bounds of :func:`~xr_physcube.models.wcm_inversion.invert_mv`
        (min/max: mean over training series of each series' minimum/maximum).
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
            raise InvalidArgumentError(f"polarisation must be 'vv' or 'vh'; got {pol!r}")
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


# --- the model --------------------------------------------------------------------------


def check_soil_term(soil_term: str) -> SoilTerm:
    """``soil_term`` if it is one of :data:`SOIL_TERMS`, else
    :class:`~xr_physcube.exceptions.InvalidArgumentError`."""
    if soil_term not in SOIL_TERMS:
        raise InvalidArgumentError(
            f"soil_term must be one of {list(SOIL_TERMS)}; got {soil_term!r}"
        )
    return soil_term  # type: ignore[return-value]


def soil_db_linear(c, d, f, mv: torch.Tensor, theta, theta_ref) -> torch.Tensor:
    """Linear soil term, dB: ``C + D mv + F (θ − θ_ref)`` (θ in degrees)."""
    return c + d * mv + f * (theta - theta_ref)


def oh_soil(mv: torch.Tensor, hrms: torch.Tensor, theta: torch.Tensor):
    """Oh (2004) bare-soil σ0 (linear VV, VH) at C band; ``hrms`` cm, θ degrees."""
    bare = sar.oh2004(mv, WAVENUMBER_CM * hrms, theta * (math.pi / 180.0))
    return bare.vv, bare.vh


def wcm_db(soil_lin, v, theta, a, b) -> torch.Tensor:
    """Total σ0 in dB of the WCM over a linear soil σ0 (θ in degrees)."""
    total, _, _ = sar.water_cloud(soil_lin, v, theta * (math.pi / 180.0), a, b, 1.0)
    return linear_to_db(total)


def prepare(sigma0_vv, sigma0_vh, theta, v, mv, descriptor, allow_nan: bool):
    """Checked, broadcast tensors ``sigma0_vv``, ``sigma0_vh``, ``theta``, the descriptor
    and (when given) ``mv``."""
    spec = descriptor_spec(descriptor)
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
