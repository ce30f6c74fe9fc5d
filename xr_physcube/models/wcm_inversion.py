"""The calibrated Water Cloud Model run forward and inverted for soil moisture (pure
PyTorch, no xarray).

:func:`forward_db` gives σ0 in dB of a :class:`~xr_physcube.models.wcm_coefficients.
WcmCalibration`; :func:`estimate_hrms` the roughness nuisance of a new series from its
σ0 alone (Oh soil term); :func:`invert_mv` inverts a calibration for soil moisture per
sample in closed form (both soil terms are invertible analytically), with an
uncertainty from the calibration residuals propagated through the model, optionally
combined with a Gaussian prior (the training fields' moisture statistics), and clipped
to bounds. The model and its coefficients: :mod:`~xr_physcube.models.wcm_coefficients`;
the fit: :mod:`~xr_physcube.models.wcm_calibration`.

References
----------
.. [1] Attema, E. P. W. & Ulaby, F. T. (1978), Vegetation modeled as a water cloud,
   Radio Science 13(2):357–364.
.. [2] Oh, Y. (2004), Quantitative retrieval of soil moisture content and surface
   roughness from multipolarized radar observations of bare soil surfaces, IEEE TGRS
   42(3):596–601.
.. [3] Rodgers, C. D. (2000), Inverse Methods for Atmospheric Sounding, World
   Scientific (linear Gaussian combination of a measurement and a prior, ch. 2).
"""

from __future__ import annotations

import math

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
from xr_physcube.models.sar import HRMS, THETA
from xr_physcube.models.wcm_coefficients import (
    POLS,
    MoistureEstimate,
    WcmCalibration,
    oh_soil,
    prepare,
    soil_db_linear,
    wcm_db,
)
from xr_physcube.parameters import TensorLike
from xr_physcube.sensors.sentinel1 import linear_to_db

__all__ = ["forward_db", "estimate_hrms", "invert_mv"]

_OH_MV_EXPONENT = 0.7  # Oh (2004): sigma_vh ∝ mv^0.7 and q = vh/vv does not depend on mv


def _soil_lin(cal: WcmCalibration, pol: str, mv, theta, hrms) -> torch.Tensor:
    c = cal.pol(pol)
    if cal.soil_term == "linear":
        return torch.pow(
            10.0, soil_db_linear(c.c_db, c.d_db, c.f_db, mv, theta, cal.theta_ref) / 10
        )
    s_vv, s_vh = oh_soil(mv, hrms, theta)
    return s_vv if pol == "vv" else s_vh


def _hrms_tensor(cal: WcmCalibration, hrms: TensorLike | None, like: torch.Tensor):
    if cal.soil_term != "oh":
        return None
    value = cal.hrms if hrms is None else hrms
    if value is None:
        raise InvalidArgumentError("an Oh calibration needs hrms (cm): give hrms=... or cal.hrms")
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
    spec = descriptor_spec(cal.descriptor)
    mv_t, th, vt = (as_tensor(n, x) for n, x in (("mv", mv), ("theta", theta), ("v", v)))
    check_range(MV, mv_t, "mv", allow_nan=True)
    check_theta(th, THETA)
    check_range(spec, vt, cal.descriptor, allow_nan=True)
    h = _hrms_tensor(cal, hrms, th)
    out = []
    for p in POLS:
        c = cal.pol(p)
        out.append(wcm_db(_soil_lin(cal, p, mv_t, th, h), vt, th, c.a, c.b))
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
        raise InvalidArgumentError("estimate_hrms needs an Oh calibration (soil_term='oh')")
    t = prepare(sigma0_vv, sigma0_vh, theta, v, mv, cal.descriptor, allow_nan=True)
    mv_t = t.get("mv", torch.full_like(t["theta"], cal.mv_mean)).reshape(1, -1)
    th = t["theta"].reshape(1, -1)
    vt = t[cal.descriptor].reshape(1, -1)
    grid = torch.logspace(math.log10(HRMS.lower), math.log10(HRMS.upper), n_grid, dtype=th.dtype)
    grid = grid.clamp(HRMS.lower, HRMS.upper)
    h = grid.reshape(-1, 1)
    loss = torch.zeros(n_grid, dtype=th.dtype)
    for p in POLS:
        c = cal.pol(p)
        obs = linear_to_db(t[f"sigma0_{p}"].reshape(1, -1))
        pred = wcm_db(_soil_lin(cal, p, mv_t, th, h), vt, th, c.a, c.b)
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
    DimensionError
        Empty or mismatched inputs.
    InputUnitsError
        σ0 that looks like dB, θ in radians.
    OutOfRangeError
        All-NaN or non-positive σ0, values outside their bounds.
    InvalidArgumentError
        Neither polarisation given; an Oh calibration without ``hrms``.

    All are :class:`~xr_physcube.exceptions.PhyscubeError` and ``ValueError``.
    """
    cal = coefficients
    if sigma0_vv is None and sigma0_vh is None:
        raise InvalidArgumentError("give sigma0_vv and/or sigma0_vh")
    spec = descriptor_spec(cal.descriptor)
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
        soil_db = linear_to_db(safe_excess / tau2)
        err_db = c.noise_db * torch.where(ok, sig, torch.ones_like(sig)) / safe_excess
        if cal.soil_term == "linear":
            d = max(float(c.d_db), 1e-9)
            est = (soil_db - c.c_db - c.f_db * (th - cal.theta_ref)) / d
            var = (err_db / d) ** 2
        else:
            k_db = linear_to_db(_soil_lin(cal, p, torch.ones_like(th), th, h))
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
