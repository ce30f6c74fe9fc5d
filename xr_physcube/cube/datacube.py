"""``ds.vae.datacube``: S1 and S2 cubes on their own dates -> physical variables on a
regular time grid, with the :class:`~xr_physcube.vae.datacube.DataCubeVAE`.

Glue only: the S2 bands (SCL-masked) with their sun/view angles, and the S1 VV/VH with
their incidence angle, are stacked per modality (each on its own ``time`` axis, one
chunk), and the model is mapped over spatial chunks with
:func:`~xr_physcube.cube.blockwise.blockwise` (core dims: the S2 dates, the S1 dates;
output: the grid dates).

Memory per task: spatial chunks are chosen so that a task's inputs, outputs and the
model's temporaries stay under ``memory_budget`` (default :data:`MEMORY_BUDGET`,
256 MiB; :func:`pixels_per_task`). ``benchmarks/bench_datacube.py`` measures the peak.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
import xarray as xr

from xr_physcube.checkpoints import state_checksum
from xr_physcube.cube.blockwise import blockwise, gather, map_rows, private_copy, std_attrs
from xr_physcube.cube.checks import datetime_axis
from xr_physcube.cube.sampling import prepare_cube
from xr_physcube.exceptions import DimensionError, InvalidArgumentError, MissingVariableError
from xr_physcube.sensors.sentinel1 import linear_to_db
from xr_physcube.sensors.sentinel2 import BANDS
from xr_physcube.vae.datacube import DataCubeVAE, SeriesBatch, days_since_new_year
from xr_physcube.vae.model import latent_spec

MEMORY_BUDGET = 256 * 2**20
"""Default peak memory per task of ``ds.vae.datacube`` (bytes)."""
S2_INPUTS = (*BANDS, "tts", "tto", "psi")
S1_INPUTS = ("VV", "VH", "theta")
_EXAMPLE = "ds.assign_coords(time=pd.to_datetime(dates))"


def pixels_per_task(n_s2: int, n_s1: int, n_query: int, model: DataCubeVAE, budget: int):
    """(pixels per spatial chunk, pixels per model call) keeping a task under ``budget``
    bytes: half for the chunk's float32 inputs and outputs, half for the temporaries of
    one call (attention weights heads × queries × tokens, a few copies, and the token
    embeddings)."""
    n_tok = n_s2 + n_s1
    n_lat = len(model.latent_names)
    io = 4 * (n_s2 * len(S2_INPUTS) + n_s1 * len(S1_INPUTS) + 2 * n_query * n_lat)
    heads, hidden = model.config.heads, model.config.hidden
    tmp = 4 * (6 * heads * n_query * (n_tok + 1) + 12 * n_tok * hidden + 8 * n_query * hidden)
    return max(1, (budget // 2) // io), max(1, (budget // 2) // tmp)


class DataCubeBlock:
    """Block function: S2 (..., T2, 13) and/or S1 (..., T1, 3) -> posterior mean and std
    (..., Q, n_latent) at the query days; NaN for pixels without any valid acquisition."""

    def __init__(self, model, s2_day, s1_day, query_day, device, batch):
        self.model, self.device, self.batch = private_copy(model), device, batch
        self.s2_day, self.s1_day, self.query_day = s2_day, s1_day, query_day

    def _run(self, s2: torch.Tensor, s1: torch.Tensor):
        model = self.model.to(s2.device)
        f = lambda a: torch.as_tensor(a, device=s2.device)[None]  # noqa: E731
        series = SeriesBatch(
            s2[..., :10], s2[..., 10:], f(self.s2_day),
            linear_to_db(s1[..., :2], mask_invalid=True), s1[..., 2], f(self.s1_day),
        )  # fmt: skip
        return model.infer_series(series, f(self.query_day))

    def __call__(self, *arrays: np.ndarray):
        has_s2, has_s1 = self.s2_day.size > 0, self.s1_day.size > 0
        it = iter(arrays)
        s2 = next(it) if has_s2 else None
        s1 = next(it) if has_s1 else None
        lead = (s2 if has_s2 else s1).shape[:-2]
        n = int(np.prod(lead))
        s2 = s2.reshape(n, -1, 13) if has_s2 else np.zeros((n, 0, 13), np.float32)
        s1 = s1.reshape(n, -1, 3) if has_s1 else np.zeros((n, 0, 3), np.float32)
        valid = np.isfinite(s2[..., :10]).all(-1).any(-1)
        valid |= (np.isfinite(s1[..., :2]) & (s1[..., :2] > 0)).all(-1).any(-1)
        shape = (self.query_day.size, len(self.model.latent_names))
        mean, std = map_rows(
            self._run, [s2, s1], out_shapes=[shape, shape], batch=self.batch,
            device=self.device, valid=valid,
        )  # fmt: skip
        return mean.reshape(*lead, *shape), std.reshape(*lead, *shape)


def grid_times(dates: Sequence[pd.DatetimeIndex], freq, times, start, end) -> pd.DatetimeIndex:
    """The query dates: ``times`` if given, else every ``freq`` from ``start`` (default:
    the first acquisition's day) to ``end`` (default: the last acquisition)."""
    if times is not None:
        out = pd.DatetimeIndex(pd.to_datetime(np.atleast_1d(np.asarray(times))))
    else:
        allt = pd.DatetimeIndex(np.concatenate([d.values for d in dates]))
        first = pd.Timestamp(start) if start is not None else allt.min().floor("D")
        last = pd.Timestamp(end) if end is not None else allt.max()
        try:
            out = pd.date_range(first, last, freq=freq)
        except ValueError as err:
            raise InvalidArgumentError(f"freq={freq!r} is not a pandas frequency: {err}") from err
    if out.empty:
        raise InvalidArgumentError("the time grid is empty: check freq/start/end/times")
    return out.rename("time")


def _modality(ds: xr.Dataset, names: tuple[str, ...], dim: str, var_dim: str) -> xr.DataArray:
    """The variables ``names`` of one modality stacked on ``var_dim``, time renamed ``dim``."""
    arrays = gather(ds, list(names))
    stacked = xr.concat([a.astype(np.float32) for a in arrays], dim=var_dim)
    return stacked.transpose(..., "time", var_dim).rename(time=dim)


def _s1_linear(s1: xr.Dataset) -> xr.Dataset:
    """VV/VH as linear sigma0 (``units`` "dB" converted), theta as a variable or coord."""
    missing = [v for v in ("VV", "VH") if v not in s1.data_vars]
    if missing:
        raise MissingVariableError(f"the S1 cube needs variables {missing}")
    if "theta" not in s1.variables:
        raise MissingVariableError(
            "the S1 cube needs the incidence angle 'theta' (deg), a variable or a per-date "
            "coordinate (load_s1 gives it)"
        )
    out = s1
    for p in ("VV", "VH"):
        if str(s1[p].attrs.get("units", "")).lower() == "db":
            out = out.assign({p: 10.0 ** (s1[p] / 10.0)})
    return out


def datacube(
    s2: xr.Dataset | None,
    s1: xr.Dataset | None,
    model: DataCubeVAE,
    *,
    freq: str = "5D",
    times=None,
    start=None,
    end=None,
    device=None,
    memory_budget: int = MEMORY_BUDGET,
) -> xr.Dataset:
    """See :meth:`xr_physcube.cube.vae.VAEAccessor.datacube`."""
    if s2 is None and s1 is None:
        raise MissingVariableError("datacube needs an S2 cube, an S1 cube or both")
    parts, core, days = [], [], {}
    dates = []
    year = None
    ref = None
    if s2 is not None:
        s2p = prepare_cube(s2)
        datetime_axis(s2p, "vae.datacube needs S2 dates on 'time'", _EXAMPLE)
        dates.append(s2p.indexes["time"])
        ref = s2p
    if s1 is not None:
        s1p = _s1_linear(s1)
        datetime_axis(s1p, "vae.datacube needs S1 dates on 'time'", _EXAMPLE)
        dates.append(s1p.indexes["time"])
        ref = s2p if s2 is not None else s1p
    grid = grid_times(dates, freq, times, start, end)
    year = int(min(d.min() for d in [*dates, grid]).year)
    if s2 is not None:
        parts.append(_modality(s2p, S2_INPUTS, "time_s2", "s2_input"))
        core.append(("time_s2", "s2_input"))
        days["s2"] = days_since_new_year(s2p.indexes["time"].values, year)
    if s1 is not None:
        s1a = _modality(s1p, S1_INPUTS, "time_s1", "s1_input")
        if s2 is not None:
            for d in ("y", "x"):
                if d in s1a.dims and not np.array_equal(s1a[d].values, parts[0][d].values):
                    raise DimensionError(
                        f"the S1 and S2 cubes differ along {d!r}: load S1 on the S2 grid "
                        "(load_s1(..., like=s2))"
                    )
        parts.append(s1a)
        core.append(("time_s1", "s1_input"))
        days["s1"] = days_since_new_year(s1p.indexes["time"].values, year)
    q_day = days_since_new_year(grid.values, year)
    n2, n1 = len(days.get("s2", ())), len(days.get("s1", ()))
    per_chunk, per_call = pixels_per_task(n2, n1, len(grid), model, int(memory_budget))
    spatial = [d for d in parts[0].dims if d not in core[0]]
    side = max(1, int(per_chunk ** (1.0 / max(len(spatial), 1))))
    parts = [p.chunk({d: side for d in spatial}) for p in parts]
    block = DataCubeBlock(
        model, days.get("s2", np.zeros(0, np.float32)), days.get("s1", np.zeros(0, np.float32)),
        q_day, device, per_call,
    )  # fmt: skip
    mean, std = blockwise(
        block,
        parts,
        n_outputs=2,
        stack=False,
        core_dims=core,
        out_core_dims=("time", "latent"),
        out_sizes={"time": len(grid), "latent": len(model.latent_names)},
    )
    dims = ("time", *spatial, "latent")
    mean, std = mean.transpose(*dims), std.transpose(*dims)
    out = {}
    for i, name in enumerate(model.latent_names):
        attrs = latent_spec(name).attrs()
        out[name] = mean.isel(latent=i).assign_attrs(
            {**attrs, "long_name": f"posterior mean of {attrs['long_name']}"}
        )
        out[f"{name}_std"] = std.isel(latent=i).assign_attrs(
            std_attrs({**attrs, "long_name": f"posterior {attrs['long_name']}"})
        )
    result = xr.Dataset(out).assign_coords(time=grid)
    keep = {k: v for k, v in ref.coords.items() if k not in ref.indexes and "time" not in v.dims}
    keep = {k: v for k, v in keep.items() if set(v.dims) <= set(spatial)}
    result = result.assign_coords(keep)
    result["time"].attrs = {"long_name": "date of the regular grid", "standard_name": "time"}
    result.attrs = {
        "vae_model": "DataCubeVAE",
        "model_sha256": state_checksum(model),
        "source": "xr_physcube DataCubeVAE: S1/S2 on their own dates, PROSAIL-D + WCM/Oh decoder",
        "time_grid": f"freq={freq}" if times is None else "explicit times",
        **{k: v for k, v in ref.attrs.items() if k in ("crs", "spatial_ref", "title")},
    }
    return result
