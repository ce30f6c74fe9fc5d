"""Checks of public arguments: counts and positive numbers, and arrays a model can read.

Every public entry point runs its numeric options and its array inputs through these
before any computation, so a bad value ends in one of the package's typed errors
(:mod:`xr_physcube.exceptions`, all ``ValueError``) whose message names the argument and
its valid range, never in an internal error deep inside torch or a silently wrong result:

* :func:`positive_int`, :func:`positive_float`, :func:`non_negative_float`: options
  (batch sizes, steps, samples, series terms, frequencies, learning rates, weights);
* :func:`check_real`: an array of real numbers (not text or objects, not complex);
* :func:`check_not_empty`: at least one value (an empty batch is a caller's mistake);
* :func:`check_bbox`: a (W, S, E, N) search box in degrees (the loaders and the CLI).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from xr_physcube.exceptions import DimensionError, InputDtypeError, InvalidArgumentError


def positive_int(value: Any, name: str) -> int:
    """``value`` as an ``int`` ≥ 1 (a count: batch size, steps, samples), else an
    :class:`~xr_physcube.exceptions.InvalidArgumentError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidArgumentError(f"{name} must be a whole number ≥ 1; got {value!r}")
    if value < 1:
        raise InvalidArgumentError(f"{name} must be at least 1; got {value}")
    return int(value)


def _finite_float(value: Any, name: str, valid: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidArgumentError(f"{name} must be a real number {valid}; got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidArgumentError(f"{name} must be a finite number {valid}; got {value!r}")
    return number


def positive_float(value: Any, name: str) -> float:
    """``value`` as a finite ``float`` > 0, else :class:`InvalidArgumentError`."""
    number = _finite_float(value, name, "> 0")
    if number <= 0.0:
        raise InvalidArgumentError(f"{name} must be > 0; got {value!r}")
    return number


def non_negative_float(value: Any, name: str) -> float:
    """``value`` as a finite ``float`` ≥ 0, else :class:`InvalidArgumentError`."""
    number = _finite_float(value, name, "≥ 0")
    if number < 0.0:
        raise InvalidArgumentError(f"{name} must be ≥ 0; got {value!r}")
    return number


def _dtype_kind(value: Any) -> str:
    """NumPy's kind letter of ``value``'s element type ("f", "i", "c", "O", "U", ...)."""
    if isinstance(value, torch.Tensor):
        if value.is_complex():
            return "c"
        return "b" if value.dtype == torch.bool else ("f" if value.is_floating_point() else "i")
    dtype = getattr(value, "dtype", None)
    if dtype is not None:  # NumPy, xarray, dask arrays: no conversion
        return np.dtype(dtype).kind
    if isinstance(value, (bool, int, float, np.number)):
        return np.asarray(value).dtype.kind
    try:
        return np.asarray(value).dtype.kind
    except (TypeError, ValueError):  # ragged lists and the like
        return "O"


_KIND_NAMES = {
    "c": "complex numbers",
    "O": "Python objects",
    "U": "text",
    "S": "bytes",
    "M": "dates",
    "m": "time spans",
}


def check_real(name: str, value: Any, context: str = "") -> None:
    """Raise :class:`~xr_physcube.exceptions.InputDtypeError` (a ``ValueError`` and a
    ``TypeError``) unless ``value`` holds real numbers: not text, objects or complex
    values (whose imaginary part would be dropped without a word)."""
    kind = _dtype_kind(value)
    if kind in "fiub":
        return
    where = f"{context}: " if context else ""
    what = _KIND_NAMES.get(kind, f"values of dtype kind {kind!r}")
    raise InputDtypeError(
        f"{where}{name} holds {what}; give real numbers (a float or integer array)"
    )


def check_not_empty(values: Mapping[str, Any], context: str) -> None:
    """Raise :class:`~xr_physcube.exceptions.DimensionError` naming the first array of
    ``values`` that has no element."""
    for name, value in values.items():
        shape = getattr(value, "shape", None)
        if shape is None:
            if isinstance(value, (bool, int, float, np.number)):
                continue
            shape = np.shape(value)
        if 0 in tuple(shape):
            raise DimensionError(
                f"{context}: {name} is empty (shape {tuple(shape)}); give at least one value"
            )


def check_arrays(values: Mapping[str, Any], context: str, allow_empty: bool = False) -> None:
    """:func:`check_real` on every value, then :func:`check_not_empty` unless
    ``allow_empty``."""
    for name, value in values.items():
        check_real(name, value, context)
    if not allow_empty:
        check_not_empty(values, context)


__all__ = [
    "check_arrays",
    "check_bbox",
    "check_not_empty",
    "check_real",
    "non_negative_float",
    "positive_float",
    "positive_int",
]


def check_bbox(bbox: Sequence[float]) -> list[float]:
    """``bbox`` (west, south, east, north) in degrees as 4 floats, else
    :class:`InvalidArgumentError`: longitudes in [-180, 180], latitudes in [-90, 90],
    west < east and south < north (a box across the antimeridian is not supported)."""
    try:
        values = [float(v) for v in bbox]
    except (TypeError, ValueError) as err:
        raise InvalidArgumentError(f"bbox must be 4 numbers (W, S, E, N); got {bbox!r}") from err
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise InvalidArgumentError(f"bbox must be 4 finite numbers (W, S, E, N); got {bbox!r}")
    w, s, e, n = values
    if not (
        -180.0 <= w <= 180.0 and -180.0 <= e <= 180.0 and -90.0 <= s <= 90.0 and -90.0 <= n <= 90.0
    ):
        raise InvalidArgumentError(
            f"bbox {values}: longitudes must lie in [-180, 180] and latitudes in [-90, 90]"
        )
    if not (w < e and s < n):
        raise InvalidArgumentError(
            f"bbox {values}: expected (W, S, E, N) with W < E and S < N (reversed corners? a "
            "box across the antimeridian is not supported)"
        )
    return values
