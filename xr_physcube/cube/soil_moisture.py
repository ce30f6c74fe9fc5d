"""Soil moisture from a Sentinel-1 time-series cube (``ds.physics.soil_moisture``).

Glue only: the checks of the cube (variables, a datetime ``time`` axis), the block
function that runs change detection on every pixel's whole series, and the delegation
of ``method="inverse"`` to :meth:`~xr_physcube.cube.physics.PhysicsAccessor.retrieve`.
The physics lives in :mod:`xr_physcube.models.change_detection` and
:mod:`xr_physcube.inverse`.
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from xr_physcube.cube.blockwise import (
    blockwise,
    check_batch_size,
    gather,
    map_rows,
    require,
    side_coords,
    std_attrs,
)
from xr_physcube.cube.checks import datetime_axis
from xr_physcube.exceptions import InvalidArgumentError, MissingVariableError, TimeAxisError
from xr_physcube.models.change_detection import (
    ChangeDetectionParameters,
    change_detection_mv,
    default_parameters,
)
from xr_physcube.models.dielectric import MV

METHODS: tuple[str, ...] = ("change-detection", "inverse")
DEFAULT_METHOD = "change-detection"
"""Chosen by the leave-one-field-out benchmark on MNI 2017 (see :func:`soil_moisture`)."""
CD_BATCH = 128
"""Series per batched Cholesky in change detection: memory about
``batch × (2 T)² × 32`` bytes for T dates (0.2 GB for 128 series of 120 dates)."""
S1_VARIABLES: tuple[str, ...] = ("VV", "VH", "theta")
_POL_COLUMNS = {"vv": 0, "vh": 1}


def soil_moisture(
    ds: xr.Dataset,
    method: str = DEFAULT_METHOD,
    *,
    parameters: ChangeDetectionParameters | None = None,
    orbit: str | None = None,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    **params: float,
) -> xr.Dataset:
    """Surface soil moisture (0–5 cm, m³/m³) from a Sentinel-1 time-series cube.

    The Dataset holds, on a datetime64 ``time`` axis, ``VV`` and ``VH`` as linear sigma0
    (m²/m², not dB), the incidence angle ``theta`` (degrees; a variable or a per-date
    coordinate) and a vegetation descriptor: ``lai`` (m²/m²) or, when there is no
    ``lai``, ``ndvi`` (derived from bands ``B4`` and ``B8`` when both are present).
    Any spatial layout works: ``(time, y, x)``, or ``(time, x)`` with ``x`` the samples
    (fields, points) of a 1-D cube, or one series ``(time,)``. Lazy on dask input.
    NaN dates are skipped: a date without a valid observation gives NaN and informs
    nothing; a pixel without any gives NaN on every date (neighbours are unaffected).

    Methods:

    ``"change-detection"`` (default): Bayesian change detection on each pixel's whole
    series (:func:`~xr_physcube.models.change_detection.change_detection_mv`, VV and
    VH): the posterior mean and std of mv on every date, given all dates. The series is
    processed with ``time`` in one chunk (``time`` is rechunked to one chunk, spatial
    chunks are kept); runs on the CPU in float64. Nothing is fitted at call time: the
    parameters are ``parameters`` (e.g. from
    :func:`~xr_physcube.models.change_detection_fit.fit_change_detection` on local
    fields with measured moisture) or, by default, the shipped set of
    :func:`~xr_physcube.models.change_detection.default_parameters` for the
    descriptor, fitted on the three MNI 2017 fields (Bavaria; winter wheat, maize) with
    one level per relative orbit: a moisture prior N(0.212, 0.044²) m³/m³ with a
    5.5-day correlation, bounds 0.151–0.311 m³/m³. Scalar ``**params`` replace fields
    of either set: ``mv_mean``, ``mv_std``, ``mv_corr_days``, ``mv_min``, ``mv_max``,
    ``theta_ref`` — set the prior and bounds for the region: the prior mean sets the
    moisture level of every series (σ0 changes cannot), and with the shipped set the
    estimate stays close to it.

    ``"inverse"``: the shipped per-date network,
    ``retrieve(["mv"], model="pretrained-s1")`` (``s1_lai`` with ``lai``, ``s1`` with
    ``ndvi``), trained on Water Cloud + Oh simulations; each date on its own.

    Choice of the default, on MNI 2017 (208 field-dates of 3 fields with in-situ 5 cm
    moisture; ``benchmarks/bench_real.py``; skill = 1 − MSE / MSE of predicting the
    other fields' mean): predicting the training fields' mean, RMSE 0.053 m³/m³;
    change detection with the default recipe fitted leave-one-field-out, 0.054 (skill
    −0.07; 0.055 with an NDVI stand-in); change detection with
    :func:`~xr_physcube.models.change_detection.uncalibrated_parameters` (fitted on no
    data), 0.106 (skill −3.0); the shipped network, 0.099 (``s1_lai``, skill −2.5;
    0.098 for ``s1`` on an NDVI stand-in). **No method has skill there**: within a
    field neither follows the measured moisture (r ≈ 0). Change detection is the
    default because its error is that of the climatology it falls back to, with a std
    that covers it (85 % of the truths within ±2 std), while the network's error is
    twice as large. The shipped defaults were fitted on the very fields of this
    benchmark, so their own score there is in-sample; the scores above refit the
    recipe without the scored field.

    Args:
        ds: the cube.
        method: ``"change-detection"`` or ``"inverse"``.
        parameters: change detection only: a
            :class:`~xr_physcube.models.change_detection.ChangeDetectionParameters`
            (its ``descriptor`` says which of ``lai``/``ndvi`` it reads).
        orbit: change detection only: name of a variable or coordinate along ``time``
            holding each date's relative orbit; each orbit then gets its own series
            level (look direction and angle differ between orbits). Read at call time.
        device: ``method="inverse"`` only: "cpu", "cuda" or None.
        batch_size: series per batched solve (change detection, default
            :data:`CD_BATCH`) or pixels per network call (inverse).
        **params: change detection only: scalar parameters, e.g. ``mv_mean=0.25``.

    Returns:
        Dataset with ``mv`` and ``mv_std`` (m³/m³, float32, CF attrs of
        :data:`~xr_physcube.models.dielectric.MV`) on the cube's dims and spatial
        chunks, with its non-index coordinates.

    Raises:
        TimeAxisError: no ``time`` dimension, ``time`` not datetime64, dates not
            increasing (change detection).
        MissingVariableError: ``VV``, ``VH``, ``theta`` or the descriptor missing.
        InvalidArgumentError: an unknown method, options of the other method, a bad
            ``batch_size``.
        OutOfRangeError, InputUnitsError: out-of-range keyword parameters (at once);
            when the chunk is computed, inputs in wrong units (dB, radians) or out of
            range (NDVI outside 0–1: clip or mask water first).
        TypeError: an unknown keyword parameter.

    All but ``TypeError`` are :class:`~xr_physcube.exceptions.PhyscubeError` and
    ``ValueError``.
    """
    if method not in METHODS:
        raise InvalidArgumentError(f"method must be one of {list(METHODS)}; got {method!r}")
    times = _datetimes(ds)
    if method == "inverse":
        return _inverse(ds, parameters, orbit, params, device, batch_size)
    if device is not None and torch.device(device).type != "cpu":
        raise InvalidArgumentError(
            "soil_moisture(method='change-detection') runs on the CPU; device applies to "
            "method='inverse'"
        )
    batch = check_batch_size(CD_BATCH if batch_size is None else batch_size)
    if parameters is not None and not isinstance(parameters, ChangeDetectionParameters):
        raise InvalidArgumentError(
            f"parameters must be a ChangeDetectionParameters; got {type(parameters).__name__}"
        )
    if parameters is None:
        descriptor = "lai" if "lai" in ds.variables else "ndvi"
        parameters = default_parameters(descriptor)
    cd = parameters.with_values(**params) if params else parameters
    steps = np.diff(times)
    if (steps <= np.timedelta64(0, "ns")).any():
        raise TimeAxisError(
            "soil_moisture(method='change-detection') needs increasing dates on 'time' "
            "(each date once); sort with ds.sortby('time')"
        )
    ds = _with_descriptor(ds, cd.descriptor, method)
    names = [*S1_VARIABLES, cd.descriptor]
    days = ((times - times[0]) / np.timedelta64(1, "D")).astype(np.float64)
    block = ChangeDetectionBlock(cd, days, _orbit_labels(ds, orbit), batch)
    inputs = gather(ds, names)
    mv, sd = blockwise(block, inputs, n_outputs=2, time_core=True)
    dims = inputs[0].dims
    source = (
        "Bayesian change detection (xr_physcube.models.change_detection.change_detection_mv)"
        f", VV+VH, descriptor {cd.descriptor}" + (f"; {cd.note}" if cd.note else "")
    )
    return _dataset(ds, mv.transpose(*dims), sd.transpose(*dims), "change-detection", source)


def _datetimes(ds: xr.Dataset) -> np.ndarray:
    times = datetime_axis(
        ds,
        "soil_moisture() needs a 'time' dimension of acquisition dates (a Sentinel-1 series)",
        "ds.assign_coords(time=pd.to_datetime(dates))",
    )
    return times.astype("datetime64[ns]")


def _descriptor_hint(missing: list[str]) -> str:
    return (
        "; the vegetation descriptor is 'lai' (m2/m2) or 'ndvi' (derived from bands B4 "
        "and B8 when both are present)"
    )


def _with_descriptor(ds: xr.Dataset, descriptor: str, method: str) -> xr.Dataset:
    """``ds`` with the S1 variables and ``descriptor`` checked (``ndvi`` derived from
    B4/B8 if need be)."""
    if descriptor == "ndvi" and "ndvi" not in ds.variables and {"B4", "B8"} <= set(ds):
        ds = ds.assign(ndvi=ds.physics.ndvi())  # lazy
    require(ds, [*S1_VARIABLES, descriptor], f"soil_moisture(method={method!r})", _descriptor_hint)
    return ds


def _orbit_labels(ds: xr.Dataset, orbit: str | None) -> np.ndarray | None:
    if orbit is None:
        return None
    if orbit not in ds.variables:
        raise MissingVariableError(f"orbit={orbit!r} is not a variable or coordinate of the cube")
    da = ds[orbit]
    if da.dims != ("time",):
        raise InvalidArgumentError(
            f"orbit variable {orbit!r} must have dims ('time',) (one relative orbit per date); "
            f"got {da.dims}"
        )
    return np.asarray(da.values)


def _inverse(ds, parameters, orbit, params, device, batch_size) -> xr.Dataset:
    given = [n for n, v in (("parameters", parameters), ("orbit", orbit)) if v is not None]
    if given or params:
        raise InvalidArgumentError(
            f"{given + sorted(params)} apply to method='change-detection', not 'inverse'"
        )
    require(ds, list(S1_VARIABLES), "soil_moisture(method='inverse')")
    if not ({"lai", "ndvi"} & set(ds.variables) or {"B4", "B8"} <= set(ds.variables)):
        raise MissingVariableError(
            "soil_moisture(method='inverse') needs a vegetation descriptor: 'lai' (network "
            "s1_lai), 'ndvi' (network s1), or bands B4 and B8 to derive NDVI"
        )
    kwargs = {"device": device} | ({} if batch_size is None else {"batch_size": batch_size})
    out = ds.physics.retrieve(["mv"], model="pretrained-s1", **kwargs)
    network = out.attrs.get("retrieval_network", "pretrained-s1")
    dims = [d for d in ds["VV"].dims if d in out.mv.dims]
    dims += [d for d in out.mv.dims if d not in dims]
    source = f"shipped inverse network {network} (per date), ds.physics.retrieve"
    return _dataset(ds, out.mv.transpose(*dims), out.mv_std.transpose(*dims), "inverse", source)


def _dataset(ds, mv: xr.DataArray, sd: xr.DataArray, method: str, source: str) -> xr.Dataset:
    attrs = MV.attrs()
    out = xr.Dataset(
        {"mv": mv.assign_attrs(attrs), "mv_std": sd.assign_attrs(std_attrs(attrs))},
        attrs={"soil_moisture_method": method, "source": source},
    )
    return out.assign_coords(side_coords(ds, tuple(mv.dims)))


class ChangeDetectionBlock:
    """[VV, VH, theta, descriptor] (..., T, 4) -> mv, std (..., T) by change detection
    over each pixel's series; dates without a valid observation and pixels without any
    give NaN."""

    def __init__(self, params: ChangeDetectionParameters, days, orbit, batch: int):
        self.params, self.days, self.orbit, self.batch = params, days, orbit, batch

    def _run(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        series = t.double().cpu().numpy().transpose(1, 0, 2)  # (T, b, 4)
        base = np.isfinite(series[..., 2]) & np.isfinite(series[..., 3])
        pol_ok = {p: base & np.isfinite(series[..., _POL_COLUMNS[p]]) for p in self.params.pols()}
        sigma = {  # a polarisation without any valid value in these pixels is left out
            p: series[..., _POL_COLUMNS[p]] if pol_ok[p].any() else None
            for p in ("vv", "vh")
            if p in pol_ok
        }
        est = change_detection_mv(
            sigma.get("vv"),
            sigma.get("vh"),
            series[..., 2],
            series[..., 3],
            self.params,
            time_days=self.days,
            orbit=self.orbit,
            chunk=self.batch,
        )
        ok = torch.as_tensor(np.logical_or.reduce(list(pol_ok.values())).T)
        nan = torch.full_like(est.mv.T, float("nan"))
        return torch.where(ok, est.mv.T, nan), torch.where(ok, est.std.T, nan)

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        *lead, n_t, _ = x.shape
        flat = x.reshape(-1, n_t, x.shape[-1])
        base = np.isfinite(flat[..., 2]) & np.isfinite(flat[..., 3])
        pol_ok = [base & np.isfinite(flat[..., _POL_COLUMNS[p]]) for p in self.params.pols()]
        mv, std = map_rows(
            self._run,
            [flat],
            out_shapes=[(n_t,)] * 2,
            batch=self.batch,
            device="cpu",  # change detection runs in float64 on the CPU
            valid=np.logical_or.reduce(pol_ok).any(axis=1),  # pixels with any valid date
        )
        return mv.reshape(*lead, n_t), std.reshape(*lead, n_t)
