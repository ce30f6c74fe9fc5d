"""Bounded memory and threads: ``predict`` batches internally, a temporal encode sizes its
tasks to a memory budget, and each dask task runs torch with ``cores // dask threads``
threads (``benchmarks/bench_memory.py`` measures the peaks)."""

from __future__ import annotations

import math
import os

import dask
import dask.array
import numpy as np
import pytest
import torch
import xarray as xr

import xr_physcube  # noqa: F401  (registers the accessors)
from xr_physcube.cube.blockwise import blockwise
from xr_physcube.cube.vae import limit_spatial_chunks, temporal_task_size
from xr_physcube.inverse.nets import PREDICT_BATCH, InverseModel
from xr_physcube.inverse.pretrained import load_pretrained
from xr_physcube.io.demo import demo_scene
from xr_physcube.performance import task_threads, torch_threads_per_task
from xr_physcube.vae.pretrained import load_pretrained as load_vae

S2_ROW = [0.03, 0.05, 0.04, 0.08, 0.2, 0.25, 0.3, 0.32, 0.2, 0.1, 35.0, 5.0, 100.0]


@pytest.fixture(scope="module")
def rows() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    x = torch.tensor(S2_ROW) * (0.8 + 0.4 * torch.rand(1000, 1, generator=gen))
    x[7] = math.nan  # a masked row
    return x


@pytest.mark.parametrize("batch", [1, 64, 999, 1000, 5000])
def test_predict_calls_the_network_once_per_batch(monkeypatch, rows, batch):
    net = load_pretrained("s2")
    calls: list[int] = []
    inner = InverseModel._predict_rows

    def counting(self, x, work, **kwargs):
        calls.append(x.shape[0])
        return inner(self, x, work, **kwargs)

    whole_mean, whole_std = net.predict(rows, batch_size=len(rows))
    monkeypatch.setattr(InverseModel, "_predict_rows", counting)
    mean, std = net.predict(rows, batch_size=batch)
    assert len(calls) == math.ceil(len(rows) / batch) and max(calls) <= batch
    torch.testing.assert_close(mean, whole_mean, equal_nan=True, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(std, whole_std, equal_nan=True, rtol=1e-5, atol=1e-5)
    assert torch.isnan(mean[7]).all() and torch.isfinite(mean[8]).all()


def test_predict_default_batch_bounds_a_large_call(monkeypatch):
    net = load_pretrained("s2")
    n = 2 * PREDICT_BATCH + 5
    calls: list[int] = []
    inner = InverseModel._predict_rows
    monkeypatch.setattr(
        InverseModel,
        "_predict_rows",
        lambda self, x, w, **kw: calls.append(len(x)) or inner(self, x, w, **kw),
    )
    mean, _ = net.predict(torch.tensor(S2_ROW).expand(n, 13))
    assert calls == [PREDICT_BATCH, PREDICT_BATCH, 5] and mean.shape == (n, 8)


def _threads_inside_tasks(scheduler: str, workers: int | None) -> list[int]:
    seen: list[int] = []

    def record(x: np.ndarray):
        seen.append(torch.get_num_threads())
        return (x[..., 0],)

    a = xr.DataArray(dask.array.zeros((8, 8), chunks=4), dims=("y", "x"))
    (out,) = blockwise(record, [a], n_outputs=1)
    out.compute(scheduler=scheduler, num_workers=workers)
    return seen


def test_dask_threads_times_torch_threads_within_the_cores():
    cores = os.cpu_count() or 1
    before = torch.get_num_threads()
    seen = _threads_inside_tasks("threads", 2)
    assert len(seen) == 4
    assert all(t * 2 <= max(cores, 2) and t >= 1 for t in seen), (seen, cores)
    assert torch.get_num_threads() == before  # the caller's setting is untouched


def test_synchronous_tasks_keep_the_callers_threads():
    before = torch.get_num_threads()
    assert set(_threads_inside_tasks("synchronous", None)) == {before}
    assert torch_threads_per_task() is None  # main thread: not a dask pool
    with task_threads() as n:
        assert n == before


def test_temporal_tasks_fit_the_budget():
    net = load_vae("temporal_hybrid")
    small = temporal_task_size(20, net, 16 * 2**20)
    large = temporal_task_size(20, net, 1024 * 2**20)
    assert small[0] < large[0] and small[1] < large[1]
    assert temporal_task_size(200, net, 16 * 2**20)[0] < small[0]  # longer series, fewer


def test_limit_spatial_chunks():
    a = xr.DataArray(dask.array.zeros((3, 20, 20), chunks=(3, 20, 20)), dims=("time", "y", "x"))
    limited = limit_spatial_chunks(a, 25)
    assert max(limited.chunksizes["y"]) == 5 and max(limited.chunksizes["x"]) == 5
    assert limited.chunksizes["time"] == (3,)
    assert limit_spatial_chunks(a, 400) is a
    assert limit_spatial_chunks(a.compute(), 25).chunks is None  # NumPy stays NumPy


def test_temporal_encode_splits_a_large_chunk_and_gives_the_same_result():
    cube = demo_scene(size=8, seed=4, chunks=8).cube
    net = load_vae("temporal_hybrid")
    n_dates = cube.sizes["time"]
    per_pixel = (2 * 2**20) // temporal_task_size(n_dates, net, 2 * 2**20)[0]
    small = cube.vae.encode(net, memory_budget=16 * per_pixel)  # 16 pixels per task
    _, y_chunks, x_chunks = small.lai.data.chunks
    assert max(y_chunks) * max(x_chunks) <= 16 and len(y_chunks) > 1
    whole = cube.vae.encode(net, memory_budget=2**40)
    assert whole.lai.data.chunks[1:] == ((8,), (8,))
    xr.testing.assert_allclose(small.compute(), whole.compute(), rtol=1e-5, atol=1e-6)
