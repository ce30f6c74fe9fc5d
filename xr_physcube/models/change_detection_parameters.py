"""Parameters and building blocks of Sentinel-1 change detection (pure PyTorch, no
xarray).

The model (:mod:`~xr_physcube.models.change_detection`), per polarisation p and date t,
in dB at a reference incidence angle θ_ref::

    y_p(t) = 10 log10 σ0_p(t) − β_p (θ(t) − θ_ref)   (or the cos² law when β_p is None)
    y_p(t) = c_p(t) + S_p(t) mv(t) + e_p(t),    S_p(t) = s0_p exp(−2 b_p V(t) / cos θ(t))

Here: the parameter bounds (:data:`NOISE_DB`, :data:`DRIFT_DB`, :data:`MV_CORR_DAYS`),
the frozen parameter sets (:class:`PolarisationChange`,
:class:`ChangeDetectionParameters`), the shipped defaults fitted on MNI 2017
(:func:`default_parameters`) and a set fitted on no data
(:func:`uncalibrated_parameters`), the incidence normalisation, the sensitivity and the
covariances of the series level and of the moisture prior.

References
----------
.. [1] Attema, E. P. W. & Ulaby, F. T. (1978), Vegetation modeled as a water cloud,
   Radio Science 13(2):357–364 (two-way attenuation τ² = exp(−2 B V / cos θ)).
.. [2] Oh, Y. (2004), Quantitative retrieval of soil moisture content and surface
   roughness from multipolarized radar observations of bare soil surfaces, IEEE TGRS
   42(3):596–601 (σ0 ∝ mv^0.7 in VV and VH).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

import torch

from xr_physcube.exceptions import OutOfRangeError
from xr_physcube.models._s1_inputs import descriptor_spec
from xr_physcube.models.dielectric import MV
from xr_physcube.models.sar import THETA, WCM_COEFFICIENTS
from xr_physcube.parameters import ParameterSpec
from xr_physcube.sensors.sentinel1 import linear_to_db

Descriptor = Literal["lai", "ndvi"]
Incidence = Literal["slope", "cos2"]
POLS: tuple[str, ...] = ("vv", "vh")

__all__ = [
    "NOISE_DB", "DRIFT_DB", "MV_CORR_DAYS", "MV_STD", "OH_SENSITIVITY_DB", "PRIOR_FIELDS",
    "PolarisationChange", "ChangeDetectionParameters", "default_parameters",
    "uncalibrated_parameters",
    "normalise_incidence", "sensitivity",
]  # fmt: skip

NOISE_DB = ParameterSpec("noise_db", "white noise of sigma0 about the model", "dB", 0.05, 5.0, 1.0)
DRIFT_DB = ParameterSpec(
    "drift_db", "random-walk drift of the series level", "dB day-1/2", 0.0, 2.0, 0.1
)
MV_CORR_DAYS = ParameterSpec(
    "mv_corr_days", "correlation time of soil moisture", "day", 1e-3, 365.0, 10.0
)
LEVEL_VAR_DB2 = 1.0e4  # prior variance of each series level: (100 dB)², i.e. flat
MV_STD = ParameterSpec(
    "mv_std", "prior standard deviation of soil moisture", "m3 m-3", 1e-3, 0.5, 0.05
)
OH_SENSITIVITY_DB = 10.0 * 0.7 / (math.log(10.0) * MV.default)
"""Bare-soil sensitivity of σ0 to mv, dB per m³/m³, of the Oh (2004) soil model at the
default moisture ``MV.default`` (0.2 m³/m³): σ0_vh ∝ mv^0.7 and σ0_vv = σ0_vh / q with
q independent of mv, so d(10 log10 σ0)/d mv = 7 / (ln 10 · mv) ≈ 15.2 in both
polarisations."""
PRIOR_FIELDS: tuple[str, ...] = (
    "mv_mean",
    "mv_std",
    "mv_corr_days",
    "mv_min",
    "mv_max",
    "theta_ref",
)
"""Scalar fields of :class:`ChangeDetectionParameters` that
:meth:`~ChangeDetectionParameters.with_values` sets (checked)."""


@dataclass(frozen=True)
class PolarisationChange:
    """Change-detection parameters of one polarisation.

    Attributes
    ----------
    s0 : float
        Sensitivity of σ0 to mv over bare soil, dB per m³/m³ (0–80).
    b : float
        Vegetation attenuation of the sensitivity per unit descriptor (0–3):
        S = s0 exp(−2 b V / cos θ).
    noise_db : float
        White-noise std of σ0 about the model, dB (0.05–5).
    drift_db : float
        Random-walk std of the series level per √day, dB (0–2).
    incidence_slope : float or None
        Incidence normalisation slope β, dB/degree (−1–1); ``None``: cos² law.
    """

    s0: float
    b: float
    noise_db: float
    drift_db: float
    incidence_slope: float | None = None


@dataclass(frozen=True)
class ChangeDetectionParameters:
    """All parameters of :func:`change_detection_mv`, with provenance.

    Attributes
    ----------
    vv, vh : PolarisationChange or None
        Per-polarisation parameters; a polarisation set to ``None`` is not used.
    mv_mean, mv_std : float
        Gaussian prior of soil moisture, m³/m³.
    mv_corr_days : float
        Correlation time of the moisture prior, days (exponential covariance).
    mv_min, mv_max : float
        Bounds of the retrieved moisture, m³/m³.
    theta_ref : float
        Reference incidence angle, degrees.
    descriptor : {"lai", "ndvi"}
        Vegetation descriptor of the sensitivity.
    dataset, fields, note : str, tuple of str, str
        Provenance of fitted parameters.
    lofo_rmse : tuple of (str, float)
        Leave-one-field-out scores, filled in by the caller.
    """

    vv: PolarisationChange | None
    vh: PolarisationChange | None
    mv_mean: float = 0.2
    mv_std: float = 0.05
    mv_corr_days: float = 10.0
    mv_min: float = 0.05
    mv_max: float = 0.40
    theta_ref: float = 40.0
    descriptor: Descriptor = "lai"
    dataset: str = ""
    fields: tuple[str, ...] = ()
    note: str = ""
    lofo_rmse: tuple[tuple[str, float], ...] = ()

    def pols(self) -> dict[str, PolarisationChange]:
        """The polarisations in use, ``{"vv": ..., "vh": ...}``."""
        return {p: getattr(self, p) for p in POLS if getattr(self, p) is not None}

    def with_lofo(self, **scores: float) -> ChangeDetectionParameters:
        """A copy with leave-one-field-out scores added."""
        merged = dict(self.lofo_rmse) | {k: float(v) for k, v in scores.items()}
        return dataclasses.replace(self, lofo_rmse=tuple(sorted(merged.items())))

    def with_values(self, **values: float) -> ChangeDetectionParameters:
        """A copy with scalar fields among :data:`PRIOR_FIELDS` replaced, checked.

        ``mv_mean``, ``mv_min`` and ``mv_max`` must lie in the bounds of
        :data:`~xr_physcube.models.dielectric.MV` (0.02–0.5 m³/m³) with
        ``mv_min < mv_max``; ``mv_std`` in :data:`MV_STD`; ``mv_corr_days`` in
        :data:`MV_CORR_DAYS`; ``theta_ref`` in :data:`~xr_physcube.models.sar.THETA`.
        Unknown names raise ``TypeError``, bad values
        :class:`~xr_physcube.exceptions.OutOfRangeError`.
        """
        unknown = [k for k in values if k not in PRIOR_FIELDS]
        if unknown:
            raise TypeError(
                f"unknown change-detection parameter(s) {unknown}; known: {list(PRIOR_FIELDS)} "
                "(per-polarisation ones through a ChangeDetectionParameters)"
            )
        specs = {"mv_mean": MV, "mv_min": MV, "mv_max": MV, "mv_std": MV_STD}
        specs |= {"mv_corr_days": MV_CORR_DAYS, "theta_ref": THETA}
        for name, value in values.items():
            specs[name].check(float(value), f"change detection {name}")
        out = dataclasses.replace(self, **{k: float(v) for k, v in values.items()})
        if not out.mv_min < out.mv_max:
            raise OutOfRangeError(f"mv_min ({out.mv_min:g}) must be below mv_max ({out.mv_max:g})")
        return out


def uncalibrated_parameters(descriptor: Descriptor = "lai") -> ChangeDetectionParameters:
    """Change-detection parameters fitted on no data (VV and VH, cos² law).

    Every value comes from the package's forward models and parameter defaults, none
    from a fit:

    * ``s0`` (VV, VH): :data:`OH_SENSITIVITY_DB` ≈ 15.2 dB per m³/m³, the sensitivity
      of the Oh (2004) soil model at 0.2 m³/m³;
    * ``b`` (VV, VH): the attenuation coefficients B of the shipped Water Cloud Model
      for ``descriptor`` (:data:`~xr_physcube.models.sar.WCM_COEFFICIENTS`: LAI
      0.126 / 0.025, NDVI 0.551 / 0.131 — see their provenance notes there);
    * ``noise_db`` 1 dB, ``drift_db`` 0.1 dB/√day (defaults of :data:`NOISE_DB`,
      :data:`DRIFT_DB`); incidence by the cos² law (no slope);
    * moisture prior N(0.2, 0.05²) m³/m³ with a 10-day correlation time
      (:data:`~xr_physcube.models.dielectric.MV`, :data:`MV_STD`,
      :data:`MV_CORR_DAYS` defaults), bounds 0.05–0.40 m³/m³, θ_ref 40°.

    The prior mean sets the moisture *level* of every series (changes alone cannot give
    it): where the true level differs, this bias stays. On MNI 2017 these parameters
    score worse than the fitted defaults (:func:`default_parameters`): their small drift
    (0.1 dB/√day) lets vegetation changes of σ0 pass for moisture changes.

    Parameters
    ----------
    descriptor : {"lai", "ndvi"}
        Vegetation descriptor of the sensitivity (LAI in m²/m², or NDVI).

    Returns
    -------
    ChangeDetectionParameters
    """
    descriptor_spec(descriptor)
    wcm = WCM_COEFFICIENTS[descriptor]
    pols = {
        p: PolarisationChange(
            s0=OH_SENSITIVITY_DB,
            b=wcm[f"b_{p}"],
            noise_db=NOISE_DB.default,
            drift_db=DRIFT_DB.default,
            incidence_slope=None,
        )
        for p in POLS
    }
    return ChangeDetectionParameters(
        **pols,
        mv_mean=MV.default,
        mv_std=MV_STD.default,
        mv_corr_days=MV_CORR_DAYS.default,
        mv_min=0.05,
        mv_max=0.40,
        theta_ref=40.0,
        descriptor=descriptor,
        note=(
            "uncalibrated: s0 from Oh (2004) at mv = 0.2, b from the shipped WCM "
            "coefficients, spec defaults for noise, drift and the moisture prior"
        ),
    )


_MNI2017_NOTE = (
    "fitted on the 3 MNI 2017 fields (301, 508 winter wheat, 319 maize; field means, "
    "in-situ 5 cm moisture) with fit_change_detection: VV+VH, cos2 law, one level per "
    "relative orbit. LOFO RMSE of this recipe {lofo} m3/m3 vs {mean} for the training "
    "mean: no skill (per-field r ~ 0); the estimate stays near mv_mean"
)
_MNI2017_PRIOR = {
    "mv_mean": 0.21242211538461542,
    "mv_std": 0.044359726963704126,
    "mv_corr_days": 5.508199476606364,
    "mv_min": 0.15146666666666667,
    "mv_max": 0.3113666666666667,
    "theta_ref": 40.0,
    "dataset": "MNI 2017 field means (mni2017_s1/s1_sm_lai_mni2017.csv)",
    "fields": ("301", "319", "508"),
}
_MNI2017: dict[str, ChangeDetectionParameters] = {
    "lai": ChangeDetectionParameters(
        vv=PolarisationChange(23.501305469988374, 0.2060367821434456, 0.8803416926402419,
                              0.4883468816922435),
        vh=PolarisationChange(10.688460437890273, 0.016284556971100067, 0.7488841395833036,
                              0.5016508448772207),
        descriptor="lai",
        note=_MNI2017_NOTE.format(lofo=0.054, mean=0.053),
        lofo_rmse=(("mv", 0.054), ("mv_training_mean", 0.053)),
        **_MNI2017_PRIOR,
    ),
    "ndvi": ChangeDetectionParameters(
        vv=PolarisationChange(71.70031974438696, 1.4193814539523022, 0.860785842015549,
                              0.5108609737943542),
        vh=PolarisationChange(9.4553654789582, 1.2721844907715272e-10, 0.7491557999028727,
                              0.5017063499969987),
        descriptor="ndvi",
        note=_MNI2017_NOTE.format(lofo=0.055, mean=0.053)
        + "; NDVI: a stand-in 0.90 - 0.75 exp(-0.6 LAI) from the in-situ LAI (no S2 there)",
        lofo_rmse=(("mv", 0.055), ("mv_training_mean", 0.053)),
        **_MNI2017_PRIOR,
    ),
}  # fmt: skip


def default_parameters(descriptor: Descriptor = "lai") -> ChangeDetectionParameters:
    """The shipped change-detection parameters: fitted on measured data (MNI 2017).

    :func:`~xr_physcube.models.change_detection_fit.fit_change_detection` on the three
    fields of the MNI 2017 campaign (Munich-North-Isar: 301 and 508 winter wheat, 319
    maize; field-mean Sentinel-1 σ0 of 121 dates, of which 208 field-dates with in-situ
    5 cm soil moisture and LAI), VV and VH, the cos² law, one series level per relative
    orbit (``benchmarks/bench_real.py``, ``fit_change_detection_on``, reproduces them).
    For ``"ndvi"`` the same fit with an NDVI stand-in, 0.90 − 0.75 exp(−0.6 LAI) of
    the in-situ LAI (MNI has no Sentinel-2 here).

    Scores of this recipe, leave-one-field-out (fitted on two fields, scored on the
    third): RMSE 0.054 m³/m³ (LAI; NDVI stand-in 0.055) against 0.053 for predicting the
    training fields' mean, skill −0.07; within a field the estimate barely follows the
    measured moisture (r ≈ 0). The fit finds a large drift of the series level
    (≈ 0.5 dB/√day), so σ0 changes move the estimate little and it stays near
    ``mv_mean`` (0.212 m³/m³), inside the bounds 0.151–0.311 m³/m³ (the mean of the
    fields' minima and maxima). Elsewhere, set the moisture prior and bounds for the
    region (:meth:`ChangeDetectionParameters.with_values`) or fit on local fields.

    Parameters
    ----------
    descriptor : {"lai", "ndvi"}
        Vegetation descriptor of the sensitivity (LAI in m²/m², or NDVI).

    Returns
    -------
    ChangeDetectionParameters
        With its provenance (``dataset``, ``fields``, ``note``, ``lofo_rmse``).
    """
    descriptor_spec(descriptor)
    return _MNI2017[descriptor]


# --- building blocks --------------------------------------------------------------------


def normalise_incidence(
    sigma0_db: torch.Tensor,
    theta: torch.Tensor,
    theta_ref: float = 40.0,
    slope: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """σ0 in dB brought to the reference incidence angle.

    Parameters
    ----------
    sigma0_db : torch.Tensor
        Backscatter, dB.
    theta : torch.Tensor
        Incidence angle, degrees.
    theta_ref : float
        Reference angle, degrees (default 40°, mid-swath of Sentinel-1 IW).
    slope : float, optional
        Linear slope β (dB/degree): ``σ0_dB − β (θ − θ_ref)``. ``None``: the cos² law,
        ``σ0_dB + 20 log10(cos θ_ref / cos θ)``.

    Returns
    -------
    torch.Tensor
        Normalised backscatter, dB.
    """
    if slope is None:
        ref = math.cos(math.radians(theta_ref))
        return sigma0_db + 20.0 * torch.log10(ref / torch.cos(theta * (math.pi / 180.0)))
    return sigma0_db - slope * (theta - theta_ref)


def sensitivity(
    v: torch.Tensor, theta: torch.Tensor, s0: float | torch.Tensor, b: float | torch.Tensor
) -> torch.Tensor:
    """Sensitivity of σ0 (dB) to soil moisture under vegetation, dB per m³/m³.

    ``S = s0 exp(−2 b V / cos θ)``: the bare-soil sensitivity ``s0`` times the WCM two-way
    attenuation (Attema & Ulaby 1978). ``v``: descriptor (LAI m²/m² or NDVI); ``theta``:
    degrees.
    """
    return s0 * torch.exp(-2.0 * b * v / torch.cos(theta * (math.pi / 180.0)))


def normalised_db(sig: torch.Tensor, theta: torch.Tensor, theta_ref: float, slope) -> torch.Tensor:
    """Linear σ0 to dB at ``theta_ref`` (:func:`normalise_incidence`)."""
    return normalise_incidence(linear_to_db(sig), theta, theta_ref, slope)


def level_cov(times: torch.Tensor, codes: torch.Tensor, drift_db) -> torch.Tensor:
    """Covariance (T, T) of the series level: flat per orbit + random walk in time."""
    same = (codes[:, None] == codes[None, :]).to(times.dtype)
    tau = times - times[0]
    return LEVEL_VAR_DB2 * same + drift_db**2 * torch.minimum(tau[:, None], tau[None, :])


def mv_cov(times: torch.Tensor, std: float, corr_days: float) -> torch.Tensor:
    """Covariance (T, T) of the moisture prior: ``std² exp(−|Δt| / corr_days)``."""
    dt = (times[:, None] - times[None, :]).abs()
    return std**2 * torch.exp(-dt / corr_days)
