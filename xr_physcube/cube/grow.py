"""SAFY crop growth on every pixel of a daily forcing cube (``ds.physics.grow``).

The calendar logic (a regular daily ``time`` axis, emergence dates as SAFY's ``d0``)
and the block function; the model is :func:`xr_physcube.models.safy.safy`.
"""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr

from xr_physcube.cube.blockwise import (
    blockwise,
    check_batch_size,
    finite_rows,
    map_rows,
    require,
    side_coords,
)
from xr_physcube.cube.checks import datetime_axis, forcing_hint
from xr_physcube.exceptions import (
    DimensionError,
    InputDtypeError,
    InvalidArgumentError,
    TimeAxisError,
)
from xr_physcube.models.safy import OUTPUT_ATTRS as SAFY_OUTPUT_ATTRS
from xr_physcube.models.safy import (
    RADIATION,
    SAFY_PARAMETERS,
    TEMPERATURE,
    SafyParameters,
    safy,
)
from xr_physcube.parameters import fields_doc
from xr_physcube.validation import positive_float

SAFY_BATCH = 8192
"""Pixels per SAFY call inside a chunk (about 50 bytes per pixel and day of float32)."""


def grow(
    ds: xr.Dataset,
    temperature: str = "temperature",
    radiation: str = "radiation",
    *,
    emergence: str | np.datetime64 | pd.Timestamp | xr.DataArray | None = None,
    emergence_width: float = 0.5,
    device: str | torch.device | None = None,
    validate: bool = True,
    batch_size: int = SAFY_BATCH,
    **params: float,
) -> xr.Dataset:
    """Run the SAFY crop model (:func:`~xr_physcube.models.safy.safy`) on every pixel.

    The Dataset holds daily forcing on a regular daily datetime64 ``time`` axis:
    variables ``temperature`` (daily mean air temperature, °C) and ``radiation``
    (daily global radiation, MJ m⁻² day⁻¹), per pixel (time, y, x) or one series
    (time,) for the whole cube. Any SAFY parameter (listed below) found in the
    Dataset as a variable or coordinate without a time dimension, e.g. ``d0`` or
    ``elue`` per pixel (y, x) or as a scalar, is used per pixel; others come from
    the keywords ``**params`` (scalars; a name given both ways raises) or take their
    maize defaults. ``yield`` is returned when ``hi`` (harvest index) is given.

    Blockwise over space with the whole time axis in one chunk (``time`` is
    rechunked to one chunk, spatial chunks are kept); lazy on dask input. A pixel
    with any NaN forcing day or NaN parameter gives NaN on every day (neighbours are
    unaffected). Out-of-range forcings or per-pixel parameters raise ``ValueError``
    when the chunk is computed; scalar parameters and dates are checked at once.

    Args:
        temperature: name of the temperature variable (°C).
        radiation: name of the global radiation variable (MJ m⁻² day⁻¹).
        emergence: plant emergence as a date (``"2024-05-06"``, ``np.datetime64``,
            ``pd.Timestamp``), or a per-pixel datetime64 variable (its name or a
            DataArray; NaT gives a NaN pixel). Converted to SAFY's ``d0`` (0-based
            index of that calendar day in the series; times of day are ignored);
            a date outside the series raises ``ValueError``. Exclusive with ``d0``.
        emergence_width: width (days) of SAFY's smooth emergence step; > 0.
        device: "cpu", "cuda" or None (CUDA when available).
        validate: check forcings and parameters against their ranges.
        batch_size: pixels per model call inside a chunk (bounds memory: about
            50 bytes per pixel and day).
        **params: scalar SAFY parameters, e.g. ``elue=2.8, hi=0.5``.

    Returns:
        Dataset with ``glai`` (green leaf area index, m² m⁻²), ``biomass`` (dry
        aboveground mass, g m⁻²) and, with ``hi``, ``yield`` (HI × biomass, g m⁻²),
        on the forcing's dims in its order (e.g. time, y, x) and spatial chunks,
        with its non-index coordinates.

    Raises:
        TimeAxisError: no regular daily ``time`` axis, an emergence date outside the
            series.
        MissingVariableError: a missing forcing variable.
        DimensionError: a parameter variable with a time dimension.
        InvalidArgumentError: ``emergence`` together with ``d0``, a bad
            ``batch_size`` or ``emergence_width``.
        OutOfRangeError: an out-of-range scalar parameter.
        TypeError: an unknown keyword parameter.

    All but ``TypeError`` are :class:`~xr_physcube.exceptions.PhyscubeError` and
    ``ValueError``.
    """
    emergence_width = positive_float(emergence_width, "emergence_width (days)")
    unknown = [k for k in params if k not in SAFY_PARAMETERS]
    if unknown:
        raise TypeError(
            f"grow() got unknown SAFY parameter(s) {unknown}; known: {list(SAFY_PARAMETERS)}"
        )
    batch_size = check_batch_size(batch_size)
    times = daily_times(ds)
    require(ds, [temperature, radiation], "grow()", forcing_hint)
    forcing = [ds[n].reset_coords(drop=True) for n in (temperature, radiation)]
    for name, da in zip((temperature, radiation), forcing, strict=True):
        if "time" not in da.dims:
            raise TimeAxisError(f"grow(): forcing variable {name!r} has no 'time' dimension")
    ref = max(forcing, key=lambda da: da.ndim)
    per_pixel = {
        n: ds[n].reset_coords(drop=True)
        for n in SAFY_PARAMETERS
        if n in ds.variables and n not in ds.dims
    }
    both = sorted(set(per_pixel) & set(params))
    if both:
        raise InvalidArgumentError(
            f"grow(): parameter(s) {both} given both as Dataset variables and keywords; "
            "drop one (e.g. ds.drop_vars(...))"
        )
    if emergence is not None:
        if "d0" in per_pixel or "d0" in params:
            raise InvalidArgumentError("grow(): give the emergence either as emergence= or as d0")
        d0 = emergence_index(ds, emergence, times)
        if isinstance(d0, xr.DataArray):
            per_pixel["d0"] = d0
        else:
            params["d0"] = d0
    for name, da in per_pixel.items():
        if np.issubdtype(da.dtype, np.datetime64):
            raise InvalidArgumentError(
                f"grow(): variable {name!r} holds dates; pass it as emergence={name!r}"
            )
        if not np.issubdtype(da.dtype, np.number) or np.iscomplexobj(da):
            raise InputDtypeError(
                f"grow(): variable {name!r} has a non-numeric or complex dtype {da.dtype}; "
                "SAFY parameters are real numbers"
            )
        if "time" in da.dims:
            raise DimensionError(
                f"grow(): parameter variable {name!r} has dims {da.dims}; SAFY parameters "
                "are constant in time (per pixel or scalar)"
            )
        if da.chunks is None:  # cheap: check now (NaN marks a masked pixel)
            values = np.asarray(da.values, dtype=float)
            if name == "d0":
                check_index(values, times)
            finite = values[np.isfinite(values)]
            if finite.size:
                SAFY_PARAMETERS[name].check(finite, "grow()")
    for name, value in params.items():
        SAFY_PARAMETERS[name].check(value, "grow()")
    if "d0" in params:
        check_index(np.asarray([params["d0"]], dtype=float), times)

    inputs = [*forcing, *per_pixel.values()]
    if any(da.chunks is not None for da in inputs):
        chunks = dict(ref.chunksizes) if ref.chunks is not None else {}
        chunks["time"] = -1
        inputs = [da.chunk({d: c for d, c in chunks.items() if d in da.dims}) for da in inputs]
    outputs = ["glai", "biomass"] + (["yield_"] if "hi" in params or "hi" in per_pixel else [])
    block = SafyBlock(
        list(per_pixel),
        {k: float(v) for k, v in params.items()},
        outputs,
        emergence_width,
        device,
        validate,
        batch_size,
        times if "d0" in per_pixel and emergence is not None else None,
    )
    result = blockwise(
        block,
        inputs,
        n_outputs=len(outputs),
        time_core=[True, True, *([False] * len(per_pixel))],
        stack=False,
    )
    dims = list(ref.dims)
    for da in per_pixel.values():
        dims += [d for d in da.dims if d not in dims]
    data = {
        name.rstrip("_"): da.transpose(*dims).assign_attrs(SAFY_OUTPUT_ATTRS[name])
        for name, da in zip(outputs, result, strict=True)
    }
    out = xr.Dataset(data, attrs={"source": "SAFY (xr_physcube.models.safy.safy)"})
    return out.assign_coords(side_coords(ds, tuple(dims)))


grow.__doc__ = (grow.__doc__ or "") + textwrap.indent(
    "\n"
    + fields_doc([TEMPERATURE, RADIATION], "Forcing variables")
    + "\n\n"
    + fields_doc(SAFY_PARAMETERS.values(), "SAFY parameters (variables or keywords)")
    + "\n",
    " " * 4,
)


def daily_times(ds: xr.Dataset) -> np.ndarray:
    """The ``time`` coordinate as datetime64, checked to be daily and regular."""
    times = datetime_axis(
        ds,
        "grow() needs a daily 'time' dimension (one date per day)",
        "ds.assign_coords(time=pd.date_range('2024-01-01', periods=ds.sizes['time']))",
    )
    if times.size < 2:
        raise TimeAxisError(f"grow() needs at least 2 days of forcing; got {times.size}")
    steps = np.diff(times)
    bad = np.flatnonzero(steps != np.timedelta64(1, "D"))
    if bad.size:
        i = int(bad[0])
        raise TimeAxisError(
            "grow() needs daily forcing on a regular time axis (steps of exactly 1 day, "
            f"increasing); found a step of {steps[i] / np.timedelta64(1, 'h'):g} h between "
            f"{times[i]} and {times[i + 1]} ({bad.size} irregular step(s)); resample, e.g. "
            "ds.resample(time='1D').mean(), and fill gaps"
        )
    return times


def check_index(d0: np.ndarray, times: np.ndarray) -> None:
    """Raise if an emergence index (days, NaN ignored) falls outside the series."""
    finite = d0[np.isfinite(d0)]
    if finite.size and (finite.min() < 0 or finite.max() > times.size - 1):
        raise TimeAxisError(
            f"grow(): emergence outside the forcing series {times[0]} .. {times[-1]} "
            f"(d0 must lie in [0, {times.size - 1}]; got values in "
            f"[{finite.min():g}, {finite.max():g}])"
        )


def emergence_index(ds: xr.Dataset, emergence: Any, times: np.ndarray) -> float | xr.DataArray:
    """SAFY's ``d0`` (days since the first forcing day) for an emergence date or a
    per-pixel datetime64 variable (checked now unless it is dask-backed)."""
    first = np.datetime64(pd.Timestamp(times[0]).floor("D"))
    day = np.timedelta64(1, "D")
    if isinstance(emergence, str) and emergence in ds.variables:
        emergence = ds[emergence]
    if isinstance(emergence, xr.DataArray):
        if not np.issubdtype(emergence.dtype, np.datetime64):
            raise InvalidArgumentError(
                f"grow(): emergence variable {emergence.name!r} must hold datetime64 dates; "
                f"got dtype {emergence.dtype} (give a 0-based day index as 'd0' instead)"
            )
        d0 = ((emergence.dt.floor("D") - first) / day).reset_coords(drop=True).rename("d0")
        if d0.chunks is None:
            check_index(np.asarray(d0.values, dtype=float), times)
        return d0
    try:
        when = pd.Timestamp(emergence)
    except (TypeError, ValueError) as err:
        raise InvalidArgumentError(
            f"grow(): emergence={emergence!r} is neither a variable of the Dataset nor a date"
        ) from err
    if pd.isna(when):
        raise InvalidArgumentError("grow(): emergence is NaT")
    d0 = float((np.datetime64(when.floor("D")) - first) / day)
    check_index(np.asarray([d0]), times)
    return d0


class SafyBlock:
    """temperature, radiation (..., n_days) and per-pixel parameters (...) ->
    SAFY outputs (..., n_days); NaN pixels -> NaN."""

    def __init__(self, names, constants, outputs, width, device, validate, batch, times):
        self.names, self.constants, self.outputs = list(names), dict(constants), list(outputs)
        self.width, self.device, self.validate, self.batch = width, device, validate, batch
        self.times = times  # the forcing days, when d0 comes from emergence dates

    def _run(self, temp: torch.Tensor, rad: torch.Tensor, *params: torch.Tensor):
        given = dict(zip(self.names, params, strict=True))
        res = safy(
            temp,
            rad,
            SafyParameters(**self.constants, **given),
            emergence_width=self.width,
            validate=self.validate,
        )
        return tuple(getattr(res, name) for name in self.outputs)

    def __call__(self, temp: np.ndarray, rad: np.ndarray, *params: np.ndarray):
        n_days = temp.shape[-1]
        shape = np.broadcast_shapes(temp.shape[:-1], rad.shape[:-1], *(p.shape for p in params))
        t = np.broadcast_to(temp, (*shape, n_days)).reshape(-1, n_days).astype(np.float32)
        r = np.broadcast_to(rad, (*shape, n_days)).reshape(-1, n_days).astype(np.float32)
        p = [np.broadcast_to(v, shape).reshape(-1).astype(np.float32) for v in params]
        valid = finite_rows(t, r, *p)
        if self.times is not None:  # dask-backed dates: not checked before compute
            check_index(p[self.names.index("d0")][valid], self.times)
        out = map_rows(
            self._run,
            [t, r, *p],
            out_shapes=[(n_days,)] * len(self.outputs),
            batch=self.batch,
            device=self.device,
            valid=valid,
        )
        return tuple(o.reshape(*shape, n_days) for o in out)
