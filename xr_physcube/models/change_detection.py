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
[mv_min, mv_max]. Their parameters (:class:`ChangeDetectionParameters`, the shipped
defaults :func:`default_parameters`, fitted on MNI 2017, and
:func:`uncalibrated_parameters`, fitted on no data) and building blocks live in
:mod:`~xr_physcube.models.change_detection_parameters`, the fit in
:mod:`~xr_physcube.models.change_detection_fit`.

Which parameters are fitted on training series
(:func:`~xr_physcube.models.change_detection_fit.fit_change_detection`): β_p
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

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from xr_physcube.exceptions import InvalidArgumentError
from xr_physcube.models._s1_inputs import series_inputs
from xr_physcube.models.change_detection_parameters import (
    ChangeDetectionParameters,
    PolarisationChange,
    default_parameters,
    level_cov,
    mv_cov,
    normalise_incidence,
    normalised_db,
    sensitivity,
    uncalibrated_parameters,
)
from xr_physcube.models.wcm_coefficients import MoistureEstimate
from xr_physcube.parameters import TensorLike

__all__ = [
    "ChangeDetectionParameters", "PolarisationChange", "MoistureEstimate",
    "default_parameters", "uncalibrated_parameters", "normalise_incidence", "sensitivity",
    "change_detection_mv", "change_detection_minmax",
]  # fmt: skip
"""The retrieval and the parameters it takes (re-exported from
:mod:`~xr_physcube.models.change_detection_parameters`)."""


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
    DimensionError
        Empty inputs, mismatched shapes, ``time_days``/``orbit`` not one per date.
    InputUnitsError
        σ0 that looks like dB, θ in radians.
    OutOfRangeError
        Non-positive σ0, values outside their bounds, a series without any valid
        sample (all NaN).
    TimeAxisError
        ``time_days`` not finite and non-decreasing.
    InvalidArgumentError
        No polarisation both given and set in ``params``.

    All are :class:`~xr_physcube.exceptions.PhyscubeError` and ``ValueError``.
    """
    given = {p: x for p, x in (("vv", sigma0_vv), ("vh", sigma0_vh)) if x is not None}
    pols = {p: c for p, c in params.pols().items() if p in given}
    if not pols:
        raise InvalidArgumentError("no polarisation both given and set in params (vv and/or vh)")
    t, masks, times, codes, squeeze = series_inputs(
        {p: given[p] for p in pols}, theta, lai, params.descriptor, time_days, orbit
    )
    th, v = t["theta"], t[params.descriptor]
    n_t, n = th.shape
    mu = params.mv_mean
    P = mv_cov(times, params.mv_std, params.mv_corr_days)
    ys, Hs, Cs, Rs, Ms = [], [], [], [], []
    for p, c in pols.items():
        m = masks[p]
        y = normalised_db(t[f"sigma0_{p}"], th, params.theta_ref, c.incidence_slope)
        S = sensitivity(v, th, c.s0, c.b)
        r = torch.where(m, y - S * mu, torch.zeros_like(y))
        # subtract each orbit level's mean over valid dates (exact in the flat-prior limit)
        for k in torch.unique(codes).tolist():
            sel = (codes == k)[:, None] & m
            cnt = sel.sum(0).clamp_min(1)
            r = r - torch.where(sel, (r * sel).sum(0) / cnt, torch.zeros_like(r))
        ys.append(r)
        Hs.append(torch.where(m, S, torch.zeros_like(S)))
        Cs.append(level_cov(times, codes, c.drift_db))
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
        raise InvalidArgumentError(f"params has no {pol!r} polarisation")
    if anchor not in ("mid", "dry"):
        raise InvalidArgumentError(f"anchor must be 'mid' or 'dry'; got {anchor!r}")
    t, masks, _, codes, squeeze = series_inputs(
        {pol.lower(): sigma0}, theta, lai, params.descriptor, None, orbit
    )
    th, v = t["theta"], t[params.descriptor]
    m = masks[pol.lower()]
    y = normalised_db(t[f"sigma0_{pol.lower()}"], th, params.theta_ref, c.incidence_slope)
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
