"""The one blockwise mechanism of the xarray layer.

Every accessor method runs a torch model over a cube the same way:

1. :func:`gather` picks the variables a model needs and broadcasts them lazily to the
   cube's dims and chunks (per-date angle coordinates are never materialised at full
   size);
2. :func:`blockwise` is the single :func:`xarray.apply_ufunc` call
   (``dask="parallelized"``): each chunk becomes NumPy float32 arrays, optionally with
   the whole ``time`` axis as a core dimension (SAFY, temporal VAE encoders);
3. inside a chunk, :func:`map_rows` is the single masked and batched loop: rows
   with a non-finite input are skipped (their outputs stay NaN), the others go to the
   model ``batch`` rows at a time under ``torch.no_grad`` on the chosen device.

Memory per task: the chunk's inputs and outputs (float32) plus the temporaries of one
model call on ``batch`` rows; ``batch`` (``batch_size`` of the accessor methods) bounds
the latter, the chunking of the cube the former. Threads: each task runs torch with
``cores // dask threads`` threads (:func:`~xr_physcube.performance.task_threads`).

Block functions hold their own copy of a caller's ``nn.Module`` (:func:`private_copy`),
so running a block never moves the caller's network to another device or flips it to
eval mode.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr

from xr_physcube.devices import resolve_device
from xr_physcube.exceptions import DimensionError, InputDtypeError, MissingVariableError
from xr_physcube.performance import task_threads
from xr_physcube.validation import positive_int

DEFAULT_BATCH = 65_536
"""Pixels per model call inside a chunk (bounds the temporary memory of a block)."""

RowFunction = Callable[..., tuple[torch.Tensor, ...]]


def check_batch_size(batch_size: int) -> int:
    """``batch_size`` (rows per model call) as an ``int`` ≥ 1, else
    :class:`~xr_physcube.exceptions.InvalidArgumentError`."""
    return positive_int(batch_size, "batch_size")


def private_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` in eval mode that blocks may move and run freely."""
    return copy.deepcopy(model).eval()


def require(
    ds: xr.Dataset, names: Sequence[str], what: str, hint: Callable[[list[str]], str] | None = None
) -> None:
    """Raise :class:`MissingVariableError` if variables are missing,
    :class:`~xr_physcube.exceptions.InputDtypeError` (a ``TypeError``) if one is not
    real-valued (text, objects, complex numbers), :class:`DimensionError` if one is
    empty."""
    missing = [n for n in names if n not in ds.variables]
    if missing:
        extra = hint(missing) if hint else ""
        raise MissingVariableError(
            f"{what} needs variable(s) {missing} missing from the Dataset{extra}"
        )
    for name in names:
        dtype = ds[name].dtype
        if not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
            raise InputDtypeError(
                f"{what}: variable {name!r} has a non-numeric or complex dtype {dtype}; it "
                "needs real numbers (cast with .astype('float32'); for complex data take "
                ".real or abs() as the data's units require)"
            )
        empty = [d for d, size in ds[name].sizes.items() if size == 0]
        if empty:
            raise DimensionError(
                f"{what}: variable {name!r} is empty along {empty}; select at least one "
                "pixel and date"
            )


def side_coords(src: xr.Dataset, dims: tuple[str, ...]) -> dict[str, xr.DataArray]:
    """Non-index coordinates of ``src`` (e.g. per-date angles) that fit ``dims``."""
    return {
        k: v for k, v in src.coords.items() if k not in src.indexes and set(v.dims) <= set(dims)
    }


def gather(ds: xr.Dataset, names: Sequence[str]) -> list[xr.DataArray]:
    """Variables/coords ``names`` broadcast lazily to the dims and chunks of the cube.

    The cube's dims and chunks are those of the data variable with most dims among
    ``names``; per-date coordinates (angles) are broadcast to it without ever being
    materialised at full size. A cube with an empty dimension raises
    :class:`DimensionError`.
    """
    candidates = [ds[n] for n in names if n in ds.data_vars]
    if not candidates:
        raise MissingVariableError(f"none of {list(names)} is a data variable of the Dataset")
    # without non-index coordinates, whose chunks may differ from the variable's
    ref = max(candidates, key=lambda da: da.ndim).reset_coords(drop=True)
    empty = [d for d, size in ref.sizes.items() if size == 0]
    if empty:
        raise DimensionError(
            f"variable {ref.name!r} is empty along {empty} (sizes {dict(ref.sizes)}); "
            "select at least one pixel and date"
        )
    out = []
    for name in names:
        da = ds[name].reset_coords(drop=True)
        extra_dims = set(da.dims) - set(ref.dims)
        if extra_dims:
            raise DimensionError(
                f"variable {name!r} has dims {da.dims}, not all in those of {ref.name!r} {ref.dims}"
            )
        if ref.chunks is not None:
            da = da.chunk() if da.chunks is None else da  # lazy broadcast
            da = da.broadcast_like(ref).transpose(*ref.dims).chunk(ref.chunksizes)
        else:
            da = da.broadcast_like(ref).transpose(*ref.dims)
        out.append(da.drop_vars([c for c in da.coords if c not in ref.dims]))
    return out


def blockwise(
    func: Callable[..., Any],
    inputs: Sequence[xr.DataArray],
    *,
    n_outputs: int,
    out_dim: str | None = None,
    out_size: int | None = None,
    time_core: bool | Sequence[bool] = False,
    stack: bool = True,
    core_dims: Sequence[Sequence[str]] | None = None,
    out_core_dims: Sequence[str] | None = None,
    out_sizes: dict[str, int] | None = None,
) -> tuple[xr.DataArray, ...]:
    """Apply ``func`` chunk by chunk: the single :func:`xarray.apply_ufunc` call.

    Args:
        func: block function. With ``stack=True`` it receives one float32 array
            (..., [T,] n_inputs) of the inputs stacked on the last axis; with
            ``stack=False`` the inputs as separate float32 arrays. It returns a tuple
            of ``n_outputs`` float32 arrays (..., [T,] [out_size]).
        inputs: DataArrays (from :func:`gather`, or already aligned).
        n_outputs: number of output arrays.
        out_dim, out_size: name and length of the outputs' last core dimension
            (None: outputs have the inputs' shape, e.g. one value per pixel and day).
        time_core: the whole ``time`` axis as a core dimension (one chunk along
            ``time``), for every input (``True``) or per input (a sequence); outputs
            then carry ``time`` before ``out_dim``.
        stack: stack the inputs into one array before calling ``func``.
        core_dims, out_core_dims, out_sizes: instead of ``time_core``/``out_dim``, the
            core dims of each input (each one chunk), of the outputs, and the sizes of
            output core dims that are not input dims (e.g. S2 dates and S1 dates in,
            the dates of a regular grid out).

    Returns:
        ``n_outputs`` lazy DataArrays (float32), with the core dims last. Attributes are
        dropped: outputs describe other quantities than the inputs.
    """
    if core_dims is not None:
        inputs = [
            da.chunk({d: -1 for d in dims}) if da.chunks is not None else da
            for da, dims in zip(inputs, core_dims, strict=True)
        ]
        return _apply(func, inputs, n_outputs, stack, [list(d) for d in core_dims],
                      list(out_core_dims or ()), dict(out_sizes or {}))  # fmt: skip
    flags = [time_core] * len(inputs) if isinstance(time_core, bool) else list(time_core)
    for da, on_time in zip(inputs, flags, strict=True):
        if on_time and "time" not in da.dims:
            raise DimensionError(f"variable {da.name!r} has no 'time' dimension")
    inputs = [
        da.chunk({"time": -1}) if on_time and da.chunks is not None else da
        for da, on_time in zip(inputs, flags, strict=True)
    ]
    any_time = any(flags)
    out_core = (["time"] if any_time else []) + ([out_dim] if out_dim else [])
    in_core = [["time"] if on_time else [] for on_time in flags]
    return _apply(
        func, inputs, n_outputs, stack, in_core, out_core, {out_dim: out_size} if out_dim else {}
    )


def _apply(func, inputs, n_outputs, stack, in_core, out_core, out_sizes):
    def block(*arrays: np.ndarray):
        arrays = tuple(np.asarray(a, dtype=np.float32) for a in arrays)
        with task_threads():  # dask threads x torch threads <= cores
            out = func(np.stack(arrays, axis=-1)) if stack else func(*arrays)
        return out if n_outputs > 1 else out[0]

    result = xr.apply_ufunc(
        block,
        *inputs,
        input_core_dims=in_core,
        output_core_dims=[out_core] * n_outputs,
        dask="parallelized",
        output_dtypes=[np.float32] * n_outputs,
        dask_gufunc_kwargs={"output_sizes": out_sizes} if out_sizes else {},
        keep_attrs="drop",
    )
    return result if isinstance(result, tuple) else (result,)


def finite_rows(*arrays: np.ndarray) -> np.ndarray:
    """Rows (first axis) where every value of every array is finite."""
    valid = np.ones(arrays[0].shape[0], dtype=bool)
    for a in arrays:
        valid &= np.isfinite(a.reshape(a.shape[0], -1)).all(axis=-1)
    return valid


def map_rows(
    fn: RowFunction,
    arrays: Sequence[np.ndarray],
    *,
    out_shapes: Sequence[tuple[int, ...]],
    batch: int,
    device: str | torch.device | None,
    valid: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Run ``fn`` on the valid rows of ``arrays``, ``batch`` rows at a time.

    Args:
        fn: takes one float32 tensor (b, ...) per array, on ``device``, and returns one
            tensor (b, *out_shapes[i]) per output. Called under ``torch.no_grad``.
        arrays: NumPy arrays with rows on the first axis (same length).
        out_shapes: the trailing shape of each output row.
        batch: rows per call (bounds the temporary memory).
        device: torch device (None: CUDA when available, else CPU).
        valid: rows to compute (default :func:`finite_rows`); others stay NaN.

    Returns:
        One float32 NumPy array (n_rows, *out_shape) per output, NaN where not computed.
    """
    n = arrays[0].shape[0]
    outs = [np.full((n, *shape), np.nan, np.float32) for shape in out_shapes]
    rows_ok = np.flatnonzero(finite_rows(*arrays) if valid is None else valid)
    dev = resolve_device(device)
    for i in range(0, rows_ok.size, check_batch_size(batch)):
        rows = rows_ok[i : i + batch]
        tensors = [torch.as_tensor(a[rows], device=dev) for a in arrays]
        with torch.no_grad():
            results = fn(*tensors)
        for out, res in zip(outs, results, strict=True):
            out[rows] = res.cpu().numpy()
    return outs


class DefaultsBlock:
    """Append constant default parameters to each row before calling ``inner``."""

    def __init__(self, inner: Callable, defaults: list[float]):
        self.inner, self.defaults = inner, np.asarray(defaults, np.float32)

    def __call__(self, x: np.ndarray):
        if self.defaults.size:
            const = np.broadcast_to(self.defaults, (*x.shape[:-1], self.defaults.size))
            x = np.concatenate([x, const], axis=-1)
        return self.inner(x)


def std_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """CF attrs of the standard deviation of a quantity with ``attrs``: same units, no
    valid range (that of the mean does not bound its spread)."""
    out = {k: v for k, v in attrs.items() if k not in ("valid_min", "valid_max", "valid_range")}
    long_name = attrs.get("long_name", "")
    return {**out, "long_name": f"standard deviation of {long_name}".strip()}
