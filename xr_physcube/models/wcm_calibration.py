"""Calibrating the Water Cloud Model on measured Sentinel-1 backscatter.

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
(:data:`~xr_physcube.models.wcm_coefficients.A`, ``B``, ``C_DB``, ``D_DB``, ``F_DB`` of
:mod:`~xr_physcube.models.wcm_coefficients`, :data:`xr_physcube.models.sar.HRMS`).
Vegetation terms (A, B) can be crop-specific (``group``) while the soil term is shared.
The result is one frozen :class:`~xr_physcube.models.wcm_coefficients.WcmCalibration`
per group, with its provenance.

:mod:`~xr_physcube.models.wcm_inversion` runs a calibration forward
(``forward_db``) and inverts it for soil moisture (``invert_mv``, ``estimate_hrms``).

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
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from xr_physcube.exceptions import DimensionError
from xr_physcube.models._s1_inputs import bounded, unbounded
from xr_physcube.models.sar import HRMS
from xr_physcube.models.wcm_coefficients import (
    POLS,
    SOIL_SPECS,
    A,
    B,
    Descriptor,
    PolarisationCoefficients,
    SoilTerm,
    WcmCalibration,
    check_soil_term,
    oh_soil,
    prepare,
    soil_db_linear,
    wcm_db,
)
from xr_physcube.parameters import ParameterSpec, TensorLike
from xr_physcube.sensors.sentinel1 import linear_to_db

__all__ = ["calibrate_wcm"]

_INIT = {
    "vv": {"a": 0.05, "b": 0.2, "c_db": -12.0, "d_db": 20.0, "f_db": -0.1},
    "vh": {"a": 0.02, "b": 0.1, "c_db": -20.0, "d_db": 20.0, "f_db": -0.1},
}


def _labels(name: str, labels: Sequence | np.ndarray | None, n: int) -> tuple[list, np.ndarray]:
    """Unique labels (sorted by first appearance) and the index of every sample."""
    if labels is None:
        return ["all"], np.zeros(n, dtype=np.int64)
    arr = np.asarray(labels).reshape(-1)
    if arr.shape[0] != n:
        raise DimensionError(f"{name} needs one label per sample ({n}); got {arr.shape[0]}")
    uniques, first, index = np.unique(arr, return_index=True, return_inverse=True)
    order = np.argsort(first)
    remap = np.empty_like(order)
    remap[order] = np.arange(len(order))
    return [str(uniques[i]) for i in order], remap[index]


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
    DimensionError
        Empty or mismatched inputs, labels not one per sample.
    InputUnitsError
        σ0 that looks like dB, θ in radians.
    OutOfRangeError
        NaN, non-positive σ0, values outside their bounds.
    InvalidArgumentError
        An unknown ``soil_term`` or ``descriptor``.

    All are :class:`~xr_physcube.exceptions.PhyscubeError` and ``ValueError``.

    Notes
    -----
    The loss is the mean squared dB error of VV plus that of VH. The fit is
    deterministic (fixed start values, :data:`_INIT`). In-sample ``noise_db`` is
    optimistic: score a calibration on fields it did not see.
    """
    soil_term = check_soil_term(soil_term)
    t = prepare(sigma0_vv, sigma0_vh, theta, v, mv, descriptor, allow_nan=False)
    n = t["theta"].numel()
    flat = {k: x.reshape(-1) for k, x in t.items()}
    obs = {p: linear_to_db(flat[f"sigma0_{p}"]) for p in POLS}
    v_flat = flat[descriptor]
    th, mv_t = flat["theta"], flat["mv"]
    group_names, gidx = _labels("group", group, n)
    series_names, sidx = _labels("series", series, n)
    gi = torch.as_tensor(gidx)
    si = torch.as_tensor(sidx)
    dtype = th.dtype

    def param(value: float, spec: ParameterSpec, size: int = 1) -> torch.Tensor:
        return torch.full((size,), unbounded(value, spec), dtype=dtype, requires_grad=True)

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
                    soil_db_linear(
                        *(bounded(soil[p][s.name], s) for s in SOIL_SPECS),
                        mv_t,
                        th,
                        theta_ref,
                    )
                    / 10.0,
                )
                for p in POLS
            }
        else:
            s_vv, s_vh = oh_soil(mv_t, bounded(hrms_u, HRMS)[si], th)
            soil_lin = {"vv": s_vv, "vh": s_vh}
        return {
            p: wcm_db(
                soil_lin[p], v_flat, th, bounded(veg[p]["a"], A)[gi], bounded(veg[p]["b"], B)[gi]
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
            h = bounded(hrms_u, HRMS)
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
                    extra = {s.name: float(bounded(soil[p][s.name], s)) for s in SOIL_SPECS}
                pols[p] = PolarisationCoefficients(
                    a=float(bounded(veg[p]["a"], A)[g]),
                    b=float(bounded(veg[p]["b"], B)[g]),
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
