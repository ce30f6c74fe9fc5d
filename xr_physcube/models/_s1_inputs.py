"""Input checks and fitting helpers shared by the Sentinel-1 soil-moisture methods (no
xarray).

Used by the Water Cloud Model calibration and inversion
(:mod:`~xr_physcube.models.wcm_calibration`, :mod:`~xr_physcube.models.wcm_inversion`)
and by change detection (:mod:`~xr_physcube.models.change_detection`,
:mod:`~xr_physcube.models.change_detection_fit`). Every failure raises one of the
package's exceptions (:mod:`xr_physcube.exceptions`, all ``ValueError``), with a message
that names the argument:

* :class:`~xr_physcube.exceptions.DimensionError`: empty inputs, mismatched shapes;
* :class:`~xr_physcube.exceptions.InputUnitsError`: σ0 that looks like dB, angles that
  look like radians;
* :class:`~xr_physcube.exceptions.OutOfRangeError`: NaN-only or NaN where none is
  allowed, infinite or non-positive σ0, values outside a parameter's bounds;
* :class:`~xr_physcube.exceptions.TimeAxisError`: acquisition times that are not finite
  and non-decreasing;
* :class:`~xr_physcube.exceptions.InvalidArgumentError`: bad options (an unknown
  descriptor), data that cannot be read as numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from xr_physcube.exceptions import (
    DimensionError,
    InputUnitsError,
    InvalidArgumentError,
    OutOfRangeError,
    TimeAxisError,
)
from xr_physcube.models.sar import LAI, NDVI, THETA
from xr_physcube.parameters import ParameterSpec, TensorLike

__all__ = [
    "as_tensor", "same_shape", "check_sigma0", "check_range", "check_theta",
    "descriptor_spec", "series_inputs", "bounded", "unbounded",
]  # fmt: skip

DB_LOOKING = -1.0
"""Linear σ0 below this value (m²/m²) is taken for dB (a bright target in dB can be a
little below 0 dB, linear σ0 is never negative)."""


def as_tensor(name: str, x: TensorLike, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``x`` as a floating tensor (keeps a floating tensor's dtype/device; else ``dtype``).

    Raises :class:`DimensionError` for empty inputs and :class:`InvalidArgumentError`
    for data that cannot be read as numbers.
    """
    if isinstance(x, torch.Tensor):
        t = x if x.is_floating_point() else x.to(dtype)
    else:
        try:
            t = torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=dtype)
        except (TypeError, ValueError) as err:
            raise InvalidArgumentError(f"{name}: cannot convert to a float array ({err})") from err
    if t.numel() == 0:
        raise DimensionError(f"{name} is empty (shape {tuple(t.shape)}); give at least one sample")
    return t


def same_shape(**tensors: torch.Tensor) -> torch.Size:
    """The common shape of the given tensors; 0-d tensors broadcast, others must match
    (else :class:`DimensionError`)."""
    shapes = {k: tuple(t.shape) for k, t in tensors.items()}
    full = {s for s in shapes.values() if len(s) > 0}
    if len(full) > 1:
        raise DimensionError(f"inputs must have the same shape (scalars broadcast); got {shapes}")
    return torch.Size(full.pop()) if full else torch.Size([])


def check_sigma0(name: str, t: torch.Tensor, allow_nan: bool = True) -> None:
    """Linear σ0 must be > 0 where finite; not all NaN (nor any NaN if not allowed).

    Raises :class:`InputUnitsError` when the values look like dB (below
    :data:`DB_LOOKING`), else :class:`OutOfRangeError`.
    """
    t = t.detach()
    nan = torch.isnan(t)
    if bool(nan.all()):
        raise OutOfRangeError(f"{name} is all NaN; no valid backscatter to use")
    if not allow_nan and bool(nan.any()):
        raise OutOfRangeError(
            f"{name} has {int(nan.sum())} NaN value(s); remove invalid samples before fitting"
        )
    valid = t[~nan]
    if bool(torch.isinf(valid).any()):
        raise OutOfRangeError(f"{name} has infinite values")
    lo = float(valid.min())
    if lo < DB_LOOKING:
        raise InputUnitsError(
            f"{name} must be linear backscatter > 0 (m²/m²); got minimum {lo:g}, which "
            "looks like dB: give linear sigma0, 10**(dB/10)"
        )
    if lo <= 0.0:
        raise OutOfRangeError(f"{name} must be linear backscatter > 0 (m²/m²); got minimum {lo:g}")


def check_range(spec: ParameterSpec, t: torch.Tensor, name: str, allow_nan: bool = False) -> None:
    """Values of ``t`` (ignoring NaN if ``allow_nan``) inside ``spec``'s closed bounds,
    else :class:`OutOfRangeError` (also for all-NaN, or any NaN if not allowed)."""
    t = t.detach()
    nan = torch.isnan(t)
    if bool(nan.all()):
        raise OutOfRangeError(f"{name} is all NaN")
    if not allow_nan and bool(nan.any()):
        raise OutOfRangeError(f"{name} has {int(nan.sum())} NaN value(s)")
    valid = t[~nan]
    lo, hi = float(valid.min()), float(valid.max())
    if lo < spec.lower or hi > spec.upper:
        raise OutOfRangeError(
            f"{name} ({spec.long_name}) must lie in {spec.range_text}; "
            f"got values in [{lo:g}, {hi:g}]"
        )


def check_theta(t: torch.Tensor, spec: ParameterSpec = THETA, name: str = "theta") -> None:
    """Incidence angle in degrees: :class:`InputUnitsError` when it looks like radians
    (every value ≤ π/2), then the bounds of ``spec``."""
    t = t.detach()
    valid = t[~torch.isnan(t)]
    if valid.numel() and float(valid.max()) <= math.pi / 2 + 1e-9:
        raise InputUnitsError(
            f"{name} must be in degrees; got values in [{float(valid.min()):g}, "
            f"{float(valid.max()):g}], which look like radians (use numpy.degrees)"
        )
    check_range(spec, t, name, allow_nan=True)


def descriptor_spec(descriptor: str) -> ParameterSpec:
    """The :class:`ParameterSpec` of a vegetation descriptor ("lai" or "ndvi")."""
    if descriptor not in ("lai", "ndvi"):
        raise InvalidArgumentError(f"descriptor must be 'lai' or 'ndvi'; got {descriptor!r}")
    return LAI if descriptor == "lai" else NDVI


def series_inputs(
    sigma0: Mapping[str, TensorLike],
    theta: TensorLike,
    v: TensorLike,
    descriptor: str,
    time_days: TensorLike | None,
    orbit: Sequence | np.ndarray | None,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor, torch.Tensor, bool]:
    """Checked σ0 series of the change-detection methods.

    Returns (T, n) float64 tensors (``theta``, the descriptor, ``sigma0_<pol>``), a
    validity mask per polarisation, the times (T,) in days, orbit codes (T,) and whether
    the input was one series of shape (T,).
    """
    spec = descriptor_spec(descriptor)
    t = {"theta": as_tensor("theta", theta), descriptor: as_tensor(descriptor, v)}
    for p, x in sigma0.items():
        t[f"sigma0_{p}"] = as_tensor(f"sigma0_{p}", x)
        check_sigma0(f"sigma0_{p}", t[f"sigma0_{p}"])
    shape = same_shape(**t)
    if len(shape) not in (1, 2):
        raise DimensionError(f"series must have shape (time,) or (time, n); got {tuple(shape)}")
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
        raise OutOfRangeError(f"series {bad[:10]} have no valid sample (all NaN)")
    if time_days is None:
        times = torch.arange(n_t, dtype=torch.float64)
    else:
        times = as_tensor("time_days", time_days).to(torch.float64).reshape(-1)
        if times.shape[0] != n_t:
            raise DimensionError(
                f"time_days needs {n_t} values (one per time); got {times.shape[0]}"
            )
        if not bool(torch.isfinite(times).all()) or bool((torch.diff(times) < 0).any()):
            raise TimeAxisError("time_days must be finite and non-decreasing")
    if orbit is None:
        codes = np.zeros(n_t, dtype=np.int64)
    else:
        arr = np.asarray(orbit).reshape(-1)
        if arr.shape[0] != n_t:
            raise DimensionError(f"orbit needs {n_t} labels (one per time); got {arr.shape[0]}")
        codes = np.unique(arr, return_inverse=True)[1].reshape(-1)
    return out, masks, times, torch.as_tensor(codes), squeeze


def bounded(u: torch.Tensor, spec: ParameterSpec) -> torch.Tensor:
    """An unbounded fit variable mapped onto ``spec``'s bounds by a sigmoid."""
    return spec.lower + (spec.upper - spec.lower) * torch.sigmoid(u)


def unbounded(value: float, spec: ParameterSpec) -> float:
    """The inverse of :func:`bounded` (a start value inside the bounds)."""
    p = min(max((value - spec.lower) / (spec.upper - spec.lower), 1e-9), 1.0 - 1e-9)
    return math.log(p / (1.0 - p))
