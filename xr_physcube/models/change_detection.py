"""Soil moisture from Sentinel-1 time series by change detection (pure PyTorch).

Change detection works on the *changes* of backscatter within one series (pixel or
field), where roughness, soil texture and, over a few days, vegetation are the same:
the ratio of two linear σ0 taken days apart is then a function of the ratio (or the
difference) of soil moisture alone. This is the idea of SMOSAR (Balenzano et al.
2011), which solves the system of consecutive σ0 ratios for the moisture series within
bounds [mv_min, mv_max], and of Gao et al. (2017), who map the normalised σ0 change
between a dry reference and the current date to mv in [mv_min, mv_max] with a
sensitivity (dB per m³/m³) that decreases with vegetation (NDVI classes).

Model (per polarisation p, time t, in dB at a reference incidence angle θ_ref)::

    y_p(t) = 10 log10 σ0_p(t) − β_p (θ(t) − θ_ref)      (fitted slope β_p, dB/degree;
             or + 20 log10(cos θ_ref / cos θ(t)), the cos² law, when β_p is None)
    y_p(t) = c_p(t) + S_p(t) mv(t) + e_p(t)
    S_p(t) = s0_p exp(−2 b_p V(t) / cos θ(t))                 (dB per m³/m³)

* ``S_p`` is the sensitivity of σ0 to mv: ``s0_p`` over bare soil, attenuated twice
  through the canopy as in the Water Cloud Model (descriptor V = LAI, or NDVI).
* ``c_p(t)`` is the series' own level (roughness, texture, vegetation scattering): an
  unknown constant (flat prior; one per relative orbit when ``orbit`` is given, since
  look direction and angle differ between orbits 44/95/117/168) plus a random walk of
  ``drift_db`` dB per √day (slow vegetation change). A very large drift makes only
  consecutive ratios informative (SMOSAR's assumption of unchanged vegetation between
  close dates); zero drift makes the whole series one change-detection window.
* ``e_p`` is white noise of ``noise_db`` dB (speckle, model error).
* ``mv`` has a Gaussian prior: mean ``mv_mean``, std ``mv_std``, exponential time
  correlation ``mv_corr_days`` (fitted to the training series). The prior fixes the
  moisture level, which changes alone cannot give (in SMOSAR and Gao et al. the
  bounds do that).

:func:`change_detection_mv` returns the exact Gaussian posterior mean and std of mv
(per series, over all dates at once), clipped to [mv_min, mv_max].
:func:`change_detection_minmax` is the deterministic bounded form (Gao et al. 2017,
SMOSAR bounds): the series level is set so that the retrieved series lies within
[mv_min, mv_max].

Which parameters are fitted on training series (:func:`fit_change_detection`): β_p
(if ``incidence="slope"``), s0_p, b_p, noise_db, drift_db — by maximising the
likelihood of the training σ0 given the measured mv (the per-series level is
integrated out, so series with different roughness can be pooled); mv_mean, mv_std
and mv_corr_days from the training moisture; mv_min and mv_max as the mean over
training series of each series' minimum and maximum.

References
----------
.. [1] Balenzano, A., Mattia, F., Satalino, G., Davidson, M. W. J. (2011), Dense
   temporal series of C- and L-band SAR data for soil moisture retrieval over
   agricultural crops, IEEE JSTARS 4(2):439–450.
.. [2] Gao, Q., Zribi, M., Escorihuela, M. J., Baghdadi, N. (2017), Synergetic use of
   Sentinel-1 and Sentinel-2 data for soil moisture mapping at 100 m resolution,
   Sensors 17(9):1966.
.. [3] Attema, E. P. W. & Ulaby, F. T. (1978), Vegetation modeled as a water cloud,
   Radio Science 13(2):357–364 (two-way attenuation τ² = exp(−2 B V / cos θ)).
.. [4] Rasmussen, C. E. & Williams, C. K. I. (2006), Gaussian Processes for Machine
   Learning, MIT Press, ch. 2 (posterior of a linear-Gaussian model), ch. 5 (marginal
   likelihood).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from xr_physcube.models._s1_inputs import (
    S1InputError,
    as_tensor,
    check_range,
    check_sigma0,
    check_theta,
    same_shape,
)
from xr_physcube.models.dielectric import MV
from xr_physcube.models.sar import LAI, NDVI, THETA
from xr_physcube.models.wcm_calibration import D_DB, F_DB, B, MoistureEstimate
from xr_physcube.parameters import ParameterSpec, TensorLike

Descriptor = Literal["lai", "ndvi"]
Incidence = Literal["slope", "cos2"]
POLS: tuple[str, ...] = ("vv", "vh")

__all__ = [
    "NOISE_DB", "DRIFT_DB", "MV_CORR_DAYS", "S1InputError", "PolarisationChange",
    "ChangeDetectionParameters", "normalise_incidence", "sensitivity",
    "change_detection_mv", "change_detection_minmax", "fit_change_detection",
]  # fmt: skip

NOISE_DB = ParameterSpec("noise_db", "white noise of sigma0 about the model", "dB", 0.05, 5.0, 1.0)
DRIFT_DB = ParameterSpec(
    "drift_db", "random-walk drift of the series level", "dB day-1/2", 0.0, 2.0, 0.1
)
MV_CORR_DAYS = ParameterSpec(
    "mv_corr_days", "correlation time of soil moisture", "day", 1e-3, 365.0, 10.0
)
_LEVEL_VAR_DB2 = 1.0e4  # prior variance of each series level: (100 dB)², i.e. flat


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


def _descriptor_spec(descriptor: str) -> ParameterSpec:
    if descriptor not in ("lai", "ndvi"):
        raise S1InputError(f"descriptor must be 'lai' or 'ndvi'; got {descriptor!r}")
    return LAI if descriptor == "lai" else NDVI


def _series_inputs(sigma0, theta, v, descriptor, time_days, orbit):
    """Checked (T, n) float64 tensors, a validity mask per pol, times (T,), orbit codes."""
    spec = _descriptor_spec(descriptor)
    t = {"theta": as_tensor("theta", theta), descriptor: as_tensor(descriptor, v)}
    for p, x in sigma0.items():
        t[f"sigma0_{p}"] = as_tensor(f"sigma0_{p}", x)
        check_sigma0(f"sigma0_{p}", t[f"sigma0_{p}"])
    shape = same_shape(**t)
    if len(shape) not in (1, 2):
        raise S1InputError(f"series must have shape (time,) or (time, n); got {tuple(shape)}")
    check_theta(t["theta"], THETA)
    check_range(spec, t[descriptor], descriptor, allow_nan=True)
    squeeze = len(shape) == 1
    n_t = shape[0]
    out = {k: x.to(torch.float64).expand(shape) for k, x in t.items()}
    if squeeze:
        out = {k: x[:, None] for k, x in out.items()}
    base = torch.isfinite(out["theta"]) & torch.isfinite(out[descriptor])
    masks = {p: base & torch.isfinite(out[f"sigma0_{p}"]) for p in sigma0}
    any_valid = torch.stack(list(masks.values())).any(0).any(0)
    if not bool(any_valid.all()):
        bad = torch.nonzero(~any_valid).reshape(-1).tolist()
        raise S1InputError(f"series {bad[:10]} have no valid sample (all NaN)")
    if time_days is None:
        times = torch.arange(n_t, dtype=torch.float64)
    else:
        times = as_tensor("time_days", time_days).to(torch.float64).reshape(-1)
        if times.shape[0] != n_t:
            raise S1InputError(f"time_days needs {n_t} values (one per time); got {times.shape[0]}")
        if not bool(torch.isfinite(times).all()) or bool((torch.diff(times) < 0).any()):
            raise S1InputError("time_days must be finite and non-decreasing")
    if orbit is None:
        codes = np.zeros(n_t, dtype=np.int64)
    else:
        arr = np.asarray(orbit).reshape(-1)
        if arr.shape[0] != n_t:
            raise S1InputError(f"orbit needs {n_t} labels (one per time); got {arr.shape[0]}")
        codes = np.unique(arr, return_inverse=True)[1].reshape(-1)
    return out, masks, times, torch.as_tensor(codes), squeeze


def _normalised_db(sig: torch.Tensor, theta: torch.Tensor, theta_ref: float, slope) -> torch.Tensor:
    return normalise_incidence(10.0 * torch.log10(sig), theta, theta_ref, slope)


def _level_cov(times: torch.Tensor, codes: torch.Tensor, drift_db) -> torch.Tensor:
    """Covariance (T, T) of the series level: flat per orbit + random walk in time."""
    same = (codes[:, None] == codes[None, :]).to(times.dtype)
    tau = times - times[0]
    return _LEVEL_VAR_DB2 * same + drift_db**2 * torch.minimum(tau[:, None], tau[None, :])


def _mv_cov(times: torch.Tensor, std: float, corr_days: float) -> torch.Tensor:
    dt = (times[:, None] - times[None, :]).abs()
    return std**2 * torch.exp(-dt / corr_days)


# --- retrieval --------------------------------------------------------------------------


def change_detection_mv(
    sigma0_vv: TensorLike | None,
    sigma0_vh: TensorLike | None,
    theta: TensorLike,
    lai: TensorLike,
    params: ChangeDetectionParameters,
    *,
    time_days: TensorLike | None = None,
    orbit: Sequence | np.ndarray | None = None,
    clip: bool = True,
    chunk: int = 256,
) -> MoistureEstimate:
    """Soil moisture series from σ0 series by Bayesian change detection.

    The posterior of the linear-Gaussian model of the module docstring, per series
    (column), given all its dates: with H the sensitivities, C_c the level covariance
    (flat per orbit + random walk), R the noise and P the moisture prior covariance,
    ``mv = μ + P Hᵀ (H P Hᵀ + C_c + R)⁻¹ (y − H μ)`` and
    ``Σ = P − P Hᵀ (H P Hᵀ + C_c + R)⁻¹ H P``. Missing samples (NaN σ0, θ or V) are
    skipped. Cost O(n (2T)³) (one Cholesky per series of T dates and 2 polarisations),
    computed in chunks of ``chunk`` series.

    Parameters
    ----------
    sigma0_vv, sigma0_vh : array-like, shape (time,) or (time, n), or None
        Linear σ0 (m²/m², > 0; NaN = missing). The polarisations used are those given
        here *and* set in ``params``.
    theta : array-like, same shape
        Incidence angle, degrees (10–70).
    lai : array-like, same shape
        Descriptor ``params.descriptor``: LAI (m²/m², 0–10) or NDVI (0–1).
    params : ChangeDetectionParameters
        From :func:`fit_change_detection` (or set by hand).
    time_days : array-like, shape (time,), optional
        Acquisition times in days (non-decreasing); default 0, 1, 2, ...
    orbit : sequence, shape (time,), optional
        Relative orbit of each date: each orbit gets its own series level.
    clip : bool
        Clip the posterior mean to [mv_min, mv_max] (std unchanged). Default True.
    chunk : int
        Series per batched Cholesky.

    Returns
    -------
    MoistureEstimate
        ``mv`` and ``std`` (m³/m³), shape of the inputs, float64. Differentiable with
        respect to σ0, θ and the descriptor (away from the clipping bounds).

    Raises
    ------
    S1InputError
        (``ValueError``) on empty inputs, mismatched shapes, non-positive σ0, θ in
        radians, a series without any valid sample, or bad ``time_days``/``orbit``.
    """
    given = {p: x for p, x in (("vv", sigma0_vv), ("vh", sigma0_vh)) if x is not None}
    pols = {p: c for p, c in params.pols().items() if p in given}
    if not pols:
        raise S1InputError("no polarisation both given and set in params (vv and/or vh)")
    t, masks, times, codes, squeeze = _series_inputs(
        {p: given[p] for p in pols}, theta, lai, params.descriptor, time_days, orbit
    )
    th, v = t["theta"], t[params.descriptor]
    n_t, n = th.shape
    mu = params.mv_mean
    P = _mv_cov(times, params.mv_std, params.mv_corr_days)
    ys, Hs, Cs, Rs, Ms = [], [], [], [], []
    for p, c in pols.items():
        m = masks[p]
        y = _normalised_db(t[f"sigma0_{p}"], th, params.theta_ref, c.incidence_slope)
        S = sensitivity(v, th, c.s0, c.b)
        r = torch.where(m, y - S * mu, torch.zeros_like(y))
        # subtract each orbit level's mean over valid dates (exact in the flat-prior limit)
        for k in torch.unique(codes).tolist():
            sel = (codes == k)[:, None] & m
            cnt = sel.sum(0).clamp_min(1)
            r = r - torch.where(sel, (r * sel).sum(0) / cnt, torch.zeros_like(r))
        ys.append(r)
        Hs.append(torch.where(m, S, torch.zeros_like(S)))
        Cs.append(_level_cov(times, codes, c.drift_db))
        Rs.append(c.noise_db**2)
        Ms.append(m)
    n_p = len(ys)
    mv_out = torch.empty(n_t, n, dtype=torch.float64)
    std_out = torch.empty(n_t, n, dtype=torch.float64)
    for j0 in range(0, n, max(int(chunk), 1)):
        j1 = min(j0 + max(int(chunk), 1), n)
        blocks_hp, rows, cy_blocks = [], [], []
        for i in range(n_p):
            m = Ms[i][:, j0:j1].T  # (b, T)
            hp = Hs[i][:, j0:j1].T[:, :, None] * P[None]  # (b, T, T): rows of H P
            blocks_hp.append(hp)
            rows.append(ys[i][:, j0:j1].T)
            mm = (m[:, :, None] & m[:, None, :]).to(torch.float64)
            cc = Cs[i][None] * mm + torch.diag_embed((~m).to(torch.float64))
            cc = cc + torch.diag_embed(m.to(torch.float64) * Rs[i])
            cy_blocks.append(cc)
        HP = torch.cat(blocks_hp, dim=1)  # (b, pT, T)
        Hcols = torch.cat([Hs[i][:, j0:j1].T for i in range(n_p)], dim=1)  # (b, pT)
        b_sz = j1 - j0
        Cy = torch.zeros(b_sz, n_p * n_t, n_p * n_t, dtype=torch.float64)
        for i in range(n_p):
            for k in range(n_p):
                # (H P Hᵀ)_{ik} = H_i P H_k, H diagonal per pol
                Cy[:, i * n_t : (i + 1) * n_t, k * n_t : (k + 1) * n_t] = (
                    HP[:, i * n_t : (i + 1) * n_t, :] * Hcols[:, None, k * n_t : (k + 1) * n_t]
                )
            Cy[:, i * n_t : (i + 1) * n_t, i * n_t : (i + 1) * n_t] += cy_blocks[i]
        L = torch.linalg.cholesky(Cy)
        rhs = torch.cat([torch.cat(rows, dim=1)[:, :, None], HP], dim=2)
        X = torch.cholesky_solve(rhs, L)
        mean = mu + torch.einsum("bmt,bm->bt", HP, X[:, :, 0])
        post = P[None] - torch.einsum("bmt,bms->bts", HP, X[:, :, 1:])
        var = torch.diagonal(post, dim1=1, dim2=2).clamp_min(0.0)
        mv_out[:, j0:j1] = mean.T
        std_out[:, j0:j1] = var.sqrt().T
    if clip:
        mv_out = mv_out.clamp(params.mv_min, params.mv_max)
    if squeeze:
        return MoistureEstimate(mv_out[:, 0], std_out[:, 0])
    return MoistureEstimate(mv_out, std_out)


def change_detection_minmax(
    sigma0: TensorLike,
    theta: TensorLike,
    lai: TensorLike,
    params: ChangeDetectionParameters,
    *,
    pol: str = "vv",
    orbit: Sequence | np.ndarray | None = None,
    anchor: Literal["mid", "dry"] = "mid",
) -> MoistureEstimate:
    """Bounded change detection (Gao et al. 2017; the bounds of SMOSAR), one polarisation.

    With ``y(t) = c + S(t) mv(t)`` (module docstring, no noise) the level ``c`` of a
    series is unknown; requiring mv(t) ∈ [mv_min, mv_max] at every date bounds it:
    ``max_t(y − S mv_max) ≤ c ≤ min_t(y − S mv_min)``. ``anchor="dry"`` takes the upper
    end (the driest date is at mv_min: Gao et al.'s dry reference); ``"mid"`` the middle
    of that interval (if noise makes it empty, the middle of the crossed ends). Then
    ``mv(t) = (y(t) − c) / S(t)``, clipped to the bounds. Exact when the series reaches
    both bounds and σ0 follows the model.

    Parameters
    ----------
    sigma0 : array-like, shape (time,) or (time, n)
        Linear σ0 of polarisation ``pol`` (> 0; NaN = missing).
    theta, lai : array-like, same shape
        Incidence angle (degrees) and descriptor ``params.descriptor``.
    params : ChangeDetectionParameters
        Uses ``params.<pol>`` (s0, b, incidence slope, noise_db), mv_min, mv_max.
    pol : {"vv", "vh"}
        Polarisation of ``sigma0``.
    orbit : sequence, shape (time,), optional
        Relative orbit per date: one level per orbit.
    anchor : {"mid", "dry"}
        Which level inside the feasible interval.

    Returns
    -------
    MoistureEstimate
        ``mv`` (m³/m³) and ``std`` = noise_db / S(t): the error of one date's change
        only (not of the level), a lower bound.
    """
    c = params.pols().get(pol.lower())
    if c is None:
        raise S1InputError(f"params has no {pol!r} polarisation")
    if anchor not in ("mid", "dry"):
        raise S1InputError(f"anchor must be 'mid' or 'dry'; got {anchor!r}")
    t, masks, _, codes, squeeze = _series_inputs(
        {pol.lower(): sigma0}, theta, lai, params.descriptor, None, orbit
    )
    th, v = t["theta"], t[params.descriptor]
    m = masks[pol.lower()]
    y = _normalised_db(t[f"sigma0_{pol.lower()}"], th, params.theta_ref, c.incidence_slope)
    S = sensitivity(v, th, c.s0, c.b).clamp_min(1e-9)
    level = torch.zeros_like(y)
    inf = torch.full_like(y, math.inf)
    for k in torch.unique(codes).tolist():
        sel = (codes == k)[:, None] & m
        lo = torch.where(sel, y - S * params.mv_max, -inf).amax(0)
        hi = torch.where(sel, y - S * params.mv_min, inf).amin(0)
        chosen = hi if anchor == "dry" else 0.5 * (lo + hi)
        level = torch.where((codes == k)[:, None], chosen[None, :].expand_as(y), level)
    mv = torch.where(m, (y - level) / S, torch.full_like(y, math.nan))
    mv = mv.clamp(params.mv_min, params.mv_max)
    std = torch.where(m, c.noise_db / S, torch.full_like(y, math.nan))
    if squeeze:
        return MoistureEstimate(mv[:, 0], std[:, 0])
    return MoistureEstimate(mv, std)


# --- fitting ----------------------------------------------------------------------------


def _bounded(u: torch.Tensor, spec: ParameterSpec) -> torch.Tensor:
    return spec.lower + (spec.upper - spec.lower) * torch.sigmoid(u)


def _unbounded(value: float, spec: ParameterSpec) -> float:
    p = min(max((value - spec.lower) / (spec.upper - spec.lower), 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


def _param(value: float, spec: ParameterSpec) -> torch.Tensor:
    return torch.tensor(_unbounded(value, spec), dtype=torch.float64, requires_grad=True)


def fit_change_detection(
    sigma0_vv: Sequence[TensorLike] | None,
    sigma0_vh: Sequence[TensorLike] | None,
    theta: Sequence[TensorLike],
    lai: Sequence[TensorLike],
    mv: Sequence[TensorLike],
    time_days: Sequence[TensorLike],
    *,
    orbit: Sequence[Sequence] | None = None,
    incidence: Incidence = "slope",
    descriptor: Descriptor = "lai",
    theta_ref: float = 40.0,
    fields: Sequence[str] = (),
    dataset: str = "",
    max_iter: int = 300,
) -> ChangeDetectionParameters:
    """Fit the change-detection parameters on training series with measured mv.

    Parameters
    ----------
    sigma0_vv, sigma0_vh : sequence of array-like (time_i,), or None
        Linear σ0 of every training series (NaN = missing). ``None``: polarisation
        not used.
    theta, lai, mv, time_days : sequence of array-like (time_i,)
        Incidence (degrees), descriptor, measured soil moisture (m³/m³, NaN = missing)
        and acquisition time (days) of every series.
    orbit : sequence of sequences, optional
        Relative orbit of every date of every series (one level per orbit).
    incidence : {"slope", "cos2"}
        Fit a linear incidence slope β per polarisation, or use the cos² law.
    descriptor : {"lai", "ndvi"}
        Vegetation descriptor.
    theta_ref : float
        Reference angle, degrees.
    fields, dataset : provenance.
    max_iter : int
        L-BFGS iterations per polarisation.

    Returns
    -------
    ChangeDetectionParameters

    Notes
    -----
    Per polarisation, s0 (0–80 dB per m³/m³), b (0–3), noise_db (0.05–5 dB), drift_db
    (0–2 dB/√day) and β (−1–1 dB/degree) maximise the restricted (level-integrated)
    Gaussian likelihood of ``y − S mv`` over the training series. The moisture prior:
    mean and std of all training mv; ``mv_corr_days`` maximises the likelihood of the
    exponential covariance on the training mv series (grid of 1–200 days).

    With ``orbit`` given, each orbit has its own level, and a field sees each orbit at
    an almost fixed angle: a fitted slope β is then barely identifiable (on the MNI 2017
    fields it runs to its ±1 dB/degree bounds, harmlessly, as it multiplies angle
    changes of ~0.01°). Prefer ``incidence="cos2"`` with orbit levels, and the fitted
    slope without them.
    """
    if incidence not in ("slope", "cos2"):
        raise S1InputError(f"incidence must be 'slope' or 'cos2'; got {incidence!r}")
    given = {p: x for p, x in (("vv", sigma0_vv), ("vh", sigma0_vh)) if x is not None}
    if not given:
        raise S1InputError("give sigma0_vv and/or sigma0_vh")
    n_series = len(theta)
    if n_series == 0:
        raise S1InputError("no training series given")
    for name, seq in (("lai", lai), ("mv", mv), ("time_days", time_days), *given.items()):
        if len(seq) != n_series:
            raise S1InputError(f"{name} has {len(seq)} series; theta has {n_series}")
    series = []
    for i in range(n_series):
        mv_i = as_tensor(f"mv[{i}]", mv[i]).to(torch.float64).reshape(-1)
        t, masks, times, codes, _ = _series_inputs(
            {p: x[i] for p, x in given.items()},
            theta[i],
            lai[i],
            descriptor,
            time_days[i],
            None if orbit is None else orbit[i],
        )
        if mv_i.shape[0] != times.shape[0]:
            raise S1InputError(f"mv[{i}] has {mv_i.shape[0]} values; series has {times.shape[0]}")
        check_range(MV, mv_i, f"mv[{i}]", allow_nan=True)
        series.append((t, masks, times, codes, mv_i))

    fitted: dict[str, PolarisationChange] = {}
    for p in given:
        # fixed per-series pieces: valid dates, dB, descriptor, orbit-centering projector
        pieces = []
        for t, masks, times, codes, mv_i in series:
            m = masks[p][:, 0] & torch.isfinite(mv_i)
            if int(m.sum()) < 3:
                continue
            cm = codes[m]
            G = (cm[:, None] == torch.unique(cm)[None, :]).to(torch.float64)
            proj = torch.eye(len(cm), dtype=torch.float64) - G @ torch.linalg.pinv(G)
            tau = times[m] - times[m][0]
            pieces.append(
                {
                    "db": 10.0 * torch.log10(t[f"sigma0_{p}"][m, 0]),
                    "theta": t["theta"][m, 0],
                    "v": t[descriptor][m, 0],
                    "mv": mv_i[m],
                    "proj": proj,
                    "level": _LEVEL_VAR_DB2 * (G @ G.T),
                    "rw": torch.minimum(tau[:, None], tau[None, :]),
                    "eye": torch.eye(len(cm), dtype=torch.float64),
                }
            )
        if not pieces:
            raise S1InputError(f"no training series has 3 valid {p.upper()} samples with mv")
        u = {
            "s0": _param(15.0, D_DB),
            "b": _param(0.1, B),
            "noise": _param(1.0, NOISE_DB),
            "drift": _param(0.2, DRIFT_DB),
        }
        if incidence == "slope":
            u["slope"] = _param(-0.1, F_DB)

        def nll(u=u, pieces=pieces) -> torch.Tensor:
            total = torch.zeros((), dtype=torch.float64)
            slope = _bounded(u["slope"], F_DB) if "slope" in u else None
            s0, b = _bounded(u["s0"], D_DB), _bounded(u["b"], B)
            drift2 = _bounded(u["drift"], DRIFT_DB) ** 2
            noise2 = _bounded(u["noise"], NOISE_DB) ** 2
            for q in pieces:
                y = normalise_incidence(q["db"], q["theta"], theta_ref, slope)
                z = q["proj"] @ (y - sensitivity(q["v"], q["theta"], s0, b) * q["mv"])
                L = torch.linalg.cholesky(q["level"] + drift2 * q["rw"] + noise2 * q["eye"])
                alpha = torch.cholesky_solve(z[:, None], L)[:, 0]
                total = total + 0.5 * (z @ alpha) + torch.log(torch.diagonal(L)).sum()
            return total

        opt = torch.optim.LBFGS(
            list(u.values()),
            max_iter=max_iter,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-9,
            tolerance_change=1e-12,
        )

        def closure(opt=opt, nll=nll):
            opt.zero_grad()
            loss = nll()
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            fitted[p] = PolarisationChange(
                s0=float(_bounded(u["s0"], D_DB)),
                b=float(_bounded(u["b"], B)),
                noise_db=float(_bounded(u["noise"], NOISE_DB)),
                drift_db=float(_bounded(u["drift"], DRIFT_DB)),
                incidence_slope=float(_bounded(u["slope"], F_DB)) if "slope" in u else None,
            )

    all_mv = torch.cat([s[4][torch.isfinite(s[4])] for s in series])
    mv_mean, mv_std = float(all_mv.mean()), float(all_mv.std(correction=0))
    mins = [float(s[4][torch.isfinite(s[4])].min()) for s in series]
    maxs = [float(s[4][torch.isfinite(s[4])].max()) for s in series]
    grid = np.logspace(0.0, math.log10(200.0), 60)
    scores = []
    for ell in grid:
        ll = 0.0
        for _, _, times, _, mv_i in series:
            ok = torch.isfinite(mv_i)
            K = _mv_cov(times[ok], mv_std, float(ell))
            K = K + 1e-10 * torch.eye(int(ok.sum()), dtype=K.dtype)
            L = torch.linalg.cholesky(K)
            d = (mv_i[ok] - mv_mean)[:, None]
            ll += float(
                -0.5 * (d * torch.cholesky_solve(d, L)).sum() - torch.log(torch.diagonal(L)).sum()
            )
        scores.append(ll)
    return ChangeDetectionParameters(
        vv=fitted.get("vv"),
        vh=fitted.get("vh"),
        mv_mean=mv_mean,
        mv_std=mv_std,
        mv_corr_days=float(grid[int(np.argmax(scores))]),
        mv_min=float(np.mean(mins)),
        mv_max=float(np.mean(maxs)),
        theta_ref=float(theta_ref),
        descriptor=descriptor,
        dataset=dataset,
        fields=tuple(str(f) for f in fields),
    )
