"""Pixels of a cube for the VAE: the input layout (:func:`prepare_cube`) and minibatches
streamed chunk by chunk for training (:class:`CubeSampler`, a
:class:`~xr_physcube.vae.train.BatchSource`)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import xarray as xr

from xr_physcube.cube.blockwise import gather
from xr_physcube.cube.checks import check_observations
from xr_physcube.exceptions import DimensionError, MissingVariableError
from xr_physcube.sensors.sentinel2 import BANDS, SCL_INVALID
from xr_physcube.vae.model import INPUT_NAMES, Observations


def prepare_cube(ds: xr.Dataset) -> xr.Dataset:
    """Dataset with all :data:`INPUT_NAMES` (missing modality -> NaN, lazily), SCL-masked
    S2 bands, and a ``doy`` coordinate from ``time`` when it holds dates (a ``time``
    dimension of plain numbers gets none: per-pixel models need none)."""
    present = [n for n in (*BANDS, "VV", "VH") if n in ds.data_vars]
    if not present:
        raise MissingVariableError(
            f"the VAE needs Sentinel-2 bands {list(BANDS)} and/or Sentinel-1 'VV', 'VH'; "
            f"found none in {list(ds.data_vars)}"
        )
    has_s2 = any(b in ds.data_vars for b in BANDS)
    if has_s2:
        missing_bands = [b for b in BANDS if b not in ds.data_vars]
        if missing_bands:
            raise MissingVariableError(
                f"the VAE needs all Sentinel-2 bands {list(BANDS)} (or none, for an S1-only "
                f"cube); missing {missing_bands}"
            )
        missing_angles = [a for a in ("tts", "tto", "psi") if a not in ds.variables]
        if missing_angles:
            raise MissingVariableError(
                f"the VAE needs sun/view angles {missing_angles} for the Sentinel-2 bands: add "
                "them as per-date coordinates (degrees), e.g. ds.assign_coords(tts=('time', ...))"
            )
    ref = ds[present[0]]
    out = ds
    nan = xr.full_like(ref, np.nan, dtype=np.float32)
    for name in INPUT_NAMES:
        if name not in out.variables:
            out = out.assign({name: nan})
    if "SCL" in ds.data_vars and has_s2:
        bad = ds["SCL"].isin(list(SCL_INVALID))
        out = out.assign({b: out[b].where(~bad) for b in BANDS})
    dated = "time" in out.indexes and np.issubdtype(out.indexes["time"].dtype, np.datetime64)
    if dated and "doy" not in out.variables:
        out = out.assign_coords(doy=("time", out["time"].dt.dayofyear.values.astype(np.float32)))
    return out


class CubeSampler:
    """Minibatches of pixels from a (dask-backed) cube, one spatial chunk in memory at a time.

    Per-pixel models get rows (one pixel-date each); temporal models get whole
    time series (n, T, ...). Rows without any valid observation are skipped.
    """

    def __init__(self, ds: xr.Dataset, temporal: bool = False):
        self.temporal = temporal
        self.ds = prepare_cube(ds)
        self.names = [*INPUT_NAMES, *(["doy"] if temporal else [])]
        arrays = gather(self.ds, self.names)
        self.stacked = xr.concat(arrays, dim="_var").transpose(..., "_var")
        if temporal and "time" not in self.stacked.dims:
            raise DimensionError("a temporal VAE needs a 'time' dimension")
        spatial = [d for d in self.stacked.dims if d not in ("time", "_var")]
        chunks = self.stacked.chunksizes if self.stacked.chunks else {}
        self.blocks: list[dict[str, slice]] = [{}]
        for dim in spatial:
            sizes = chunks.get(dim, (self.stacked.sizes[dim],))
            edges = np.cumsum((0, *sizes))
            self.blocks = [
                {**b, dim: slice(int(a), int(c))}
                for b in self.blocks
                for a, c in zip(edges[:-1], edges[1:], strict=True)
            ]

    def _block_rows(self, block: dict[str, slice]) -> torch.Tensor:
        arr = self.stacked.isel(block)
        if self.temporal:
            arr = arr.transpose(..., "time", "_var")
        values = np.asarray(arr.values, dtype=np.float32)
        check_observations(values, self.names)
        x = torch.as_tensor(values)
        x = x.reshape(-1, *x.shape[-2:]) if self.temporal else x.reshape(-1, x.shape[-1])
        keep = Observations.from_columns(x[..., : len(INPUT_NAMES)]).observed()
        return x[keep.any(-1) if self.temporal else keep]

    def batches(self, batch_size: int, gen: torch.Generator) -> Iterator[tuple]:
        for b in torch.randperm(len(self.blocks), generator=gen).tolist():
            x = self._block_rows(self.blocks[b])
            order = torch.randperm(x.shape[0], generator=gen)
            for i in range(0, x.shape[0], batch_size):
                rows = x[order[i : i + batch_size]]
                doy = rows[..., -1] if self.temporal else None
                body = rows[..., :-1] if self.temporal else rows
                o = Observations.from_columns(body)
                yield o.obs, o.angles, doy, None
