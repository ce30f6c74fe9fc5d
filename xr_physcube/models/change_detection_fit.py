"""Fitting the Sentinel-1 change-detection parameters on series with measured soil
moisture (pure PyTorch, no xarray).

The model and the retrieval: :mod:`~xr_physcube.models.change_detection`; the parameter
sets and bounds: :mod:`~xr_physcube.models.change_detection_parameters`.

References
----------
.. [1] Rasmussen, C. E. & Williams, C. K. I. (2006), Gaussian Processes for Machine
   Learning, MIT Press, ch. 5 (marginal likelihood; here restricted, with the series
   level integrated out).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from xr_physcube.exceptions import DimensionError, InvalidArgumentError, OutOfRangeError
from xr_physcube.models._s1_inputs import as_tensor, bounded, check_range, series_inputs, unbounded
from xr_physcube.models.change_detection_parameters import (
    DRIFT_DB,
    LEVEL_VAR_DB2,
    NOISE_DB,
    ChangeDetectionParameters,
    Descriptor,
    Incidence,
    PolarisationChange,
    mv_cov,
    normalise_incidence,
    sensitivity,
)
from xr_physcube.models.dielectric import MV
from xr_physcube.models.wcm_coefficients import D_DB, F_DB, B
from xr_physcube.parameters import ParameterSpec, TensorLike
from xr_physcube.sensors.sentinel1 import linear_to_db

__all__ = ["fit_change_detection"]


def _param(value: float, spec: ParameterSpec) -> torch.Tensor:
    return torch.tensor(unbounded(value, spec), dtype=torch.float64, requires_grad=True)


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
        raise InvalidArgumentError(f"incidence must be 'slope' or 'cos2'; got {incidence!r}")
    given = {p: x for p, x in (("vv", sigma0_vv), ("vh", sigma0_vh)) if x is not None}
    if not given:
        raise InvalidArgumentError("give sigma0_vv and/or sigma0_vh")
    n_series = len(theta)
    if n_series == 0:
        raise DimensionError("no training series given")
    for name, seq in (("lai", lai), ("mv", mv), ("time_days", time_days), *given.items()):
        if len(seq) != n_series:
            raise DimensionError(f"{name} has {len(seq)} series; theta has {n_series}")
    series = []
    for i in range(n_series):
        mv_i = as_tensor(f"mv[{i}]", mv[i]).to(torch.float64).reshape(-1)
        t, masks, times, codes, _ = series_inputs(
            {p: x[i] for p, x in given.items()},
            theta[i],
            lai[i],
            descriptor,
            time_days[i],
            None if orbit is None else orbit[i],
        )
        if mv_i.shape[0] != times.shape[0]:
            raise DimensionError(f"mv[{i}] has {mv_i.shape[0]} values; series has {times.shape[0]}")
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
                    "db": linear_to_db(t[f"sigma0_{p}"][m, 0]),
                    "theta": t["theta"][m, 0],
                    "v": t[descriptor][m, 0],
                    "mv": mv_i[m],
                    "proj": proj,
                    "level": LEVEL_VAR_DB2 * (G @ G.T),
                    "rw": torch.minimum(tau[:, None], tau[None, :]),
                    "eye": torch.eye(len(cm), dtype=torch.float64),
                }
            )
        if not pieces:
            raise OutOfRangeError(f"no training series has 3 valid {p.upper()} samples with mv")
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
            slope = bounded(u["slope"], F_DB) if "slope" in u else None
            s0, b = bounded(u["s0"], D_DB), bounded(u["b"], B)
            drift2 = bounded(u["drift"], DRIFT_DB) ** 2
            noise2 = bounded(u["noise"], NOISE_DB) ** 2
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
                s0=float(bounded(u["s0"], D_DB)),
                b=float(bounded(u["b"], B)),
                noise_db=float(bounded(u["noise"], NOISE_DB)),
                drift_db=float(bounded(u["drift"], DRIFT_DB)),
                incidence_slope=float(bounded(u["slope"], F_DB)) if "slope" in u else None,
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
            K = mv_cov(times[ok], mv_std, float(ell))
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
