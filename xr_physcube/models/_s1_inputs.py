"""Input checks shared by the Sentinel-1 soil-moisture methods (no xarray).

Used by :mod:`xr_physcube.models.wcm_calibration` and
:mod:`xr_physcube.models.change_detection`. Every failure raises :class:`S1InputError`,
a ``ValueError`` subclass, with a message that names the argument.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from xr_physcube.parameters import ParameterSpec, TensorLike

__all__ = ["S1InputError", "as_tensor", "check_sigma0", "check_theta", "check_range"]


class S1InputError(ValueError):
    """Invalid input to a Sentinel-1 soil-moisture method (a ``ValueError``)."""


def as_tensor(name: str, x: TensorLike, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``x`` as a floating tensor (keeps a floating tensor's dtype/device; else ``dtype``).

    Raises :class:`S1InputError` for empty inputs and non-numeric data.
    """
    if isinstance(x, torch.Tensor):
        t = x if x.is_floating_point() else x.to(dtype)
    else:
        try:
            t = torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=dtype)
        except (TypeError, ValueError) as err:
            raise S1InputError(f"{name}: cannot convert to a float array ({err})") from err
    if t.numel() == 0:
        raise S1InputError(f"{name} is empty (shape {tuple(t.shape)}); give at least one sample")
    return t


def same_shape(**tensors: torch.Tensor) -> torch.Size:
    """The common shape of the given tensors; 0-d tensors broadcast, others must match."""
    shapes = {k: tuple(t.shape) for k, t in tensors.items()}
    full = {s for s in shapes.values() if len(s) > 0}
    if len(full) > 1:
        raise S1InputError(f"inputs must have the same shape (scalars broadcast); got {shapes}")
    return torch.Size(full.pop()) if full else torch.Size([])


def check_sigma0(name: str, t: torch.Tensor, allow_nan: bool = True) -> None:
    """Linear sigma0 must be > 0 where finite; not all NaN (nor any NaN if not allowed)."""
    t = t.detach()
    nan = torch.isnan(t)
    if bool(nan.all()):
        raise S1InputError(f"{name} is all NaN; no valid backscatter to use")
    if not allow_nan and bool(nan.any()):
        raise S1InputError(
            f"{name} has {int(nan.sum())} NaN value(s); remove invalid samples before fitting"
        )
    valid = t[~nan]
    if bool(torch.isinf(valid).any()):
        raise S1InputError(f"{name} has infinite values")
    lo = float(valid.min())
    if lo <= 0.0:
        hint = " (it looks like dB: give linear sigma0, 10**(dB/10))" if lo < -1.0 else ""
        raise S1InputError(
            f"{name} must be linear backscatter > 0 (m²/m²); got minimum {lo:g}{hint}"
        )


def check_range(spec: ParameterSpec, t: torch.Tensor, name: str, allow_nan: bool = False) -> None:
    """Values of ``t`` (ignoring NaN if ``allow_nan``) inside ``spec``'s closed bounds."""
    t = t.detach()
    nan = torch.isnan(t)
    if bool(nan.all()):
        raise S1InputError(f"{name} is all NaN")
    if not allow_nan and bool(nan.any()):
        raise S1InputError(f"{name} has {int(nan.sum())} NaN value(s)")
    valid = t[~nan]
    lo, hi = float(valid.min()), float(valid.max())
    if lo < spec.lower or hi > spec.upper:
        raise S1InputError(
            f"{name} ({spec.long_name}) must lie in {spec.range_text}; "
            f"got values in [{lo:g}, {hi:g}]"
        )


def check_theta(t: torch.Tensor, spec: ParameterSpec, name: str = "theta") -> None:
    """Incidence angle in degrees; a clear message when it was given in radians."""
    t = t.detach()
    valid = t[~torch.isnan(t)]
    if valid.numel() and float(valid.max()) <= math.pi / 2 + 1e-9:
        raise S1InputError(
            f"{name} must be in degrees; got values in [{float(valid.min()):g}, "
            f"{float(valid.max()):g}], which look like radians (use numpy.degrees)"
        )
    check_range(spec, t, name, allow_nan=True)
