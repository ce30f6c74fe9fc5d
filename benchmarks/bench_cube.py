"""Blockwise retrieval on a large lazy cube vs the plain in-memory path, in one run.

A synthetic 10 dates × 2048 × 2048 × 10-band Sentinel-2 cube chunked 512 × 512 is built
lazily (each pixel is one of 4096 PROSAIL simulations, picked at random per chunk, so
values are realistic and nothing exists before compute). ``cube.physics.retrieve`` is
written to a zarr store chunk by chunk; the peer does the same work in memory (whole
cube as one NumPy array → network in batches → arrays). Each path runs in its own
process so that its peak RSS is its own.

    python benchmarks/bench_cube.py [--dates 10] [--size 2048] [--chunk 512]

Prints pixels/second and peak RSS for both, and the ratios. Targets (issue #5): peak
RSS a few chunks (well under the cube size), throughput within 1.5x of in-memory.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
import time

import numpy as np

BANDS_DTYPE = np.float32


def _library(n: int = 4096, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """PROSAIL S2 reflectances (n, 10) and their (tts, tto, psi) (n, 3)."""
    import torch

    from xr_physcube.models.prosail import Prosail, ProsailParameters
    from xr_physcube.sensors.sentinel2 import Sentinel2Bands

    rng = np.random.default_rng(seed)
    p = {
        "lai": rng.uniform(0, 7, n),
        "cab": rng.uniform(20, 70, n),
        "cw": rng.uniform(0.005, 0.03, n),
        "cm": rng.uniform(0.003, 0.01, n),
        "psoil": rng.uniform(0, 1, n),
        "tts": rng.uniform(20, 60, n),
        "tto": rng.uniform(0, 10, n),
        "psi": rng.uniform(0, 180, n),
    }
    with torch.no_grad():
        params = ProsailParameters(
            **{k: torch.tensor(v, dtype=torch.float32) for k, v in p.items()}
        )
        refl = Prosail(sensor=Sentinel2Bands())(params).reflectance.numpy()
    return refl.astype(BANDS_DTYPE), np.stack([p["tts"], p["tto"], p["psi"]], -1).astype("f4")


def _library_table(queue) -> None:
    refl, angles = _library()
    queue.put(np.concatenate([refl, angles], axis=-1))


def lazy_cube(table: np.ndarray, dates: int, size: int, chunk: int):
    """A dask-backed (time, y, x) cube with the 10 bands and per-pixel angles."""
    import dask.array as da
    import xarray as xr

    from xr_physcube.sensors.sentinel2 import BANDS

    idx = da.random.default_rng(1).integers(
        0, len(table), (dates, size, size), chunks=(1, chunk, chunk), dtype=np.int16
    )
    names = [*BANDS, "tts", "tto", "psi"]
    data = {
        name: (("time", "y", "x"), idx.map_blocks(lambda b, i=i: table[b, i], dtype="f4"))
        for i, name in enumerate(names)
    }
    return xr.Dataset(data), names


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_blockwise(table, dates: int, size: int, chunk: int, queue) -> None:
    import dask

    import xr_physcube  # noqa: F401
    from xr_physcube.cli import ZARR_FORMAT  # the format the batch jobs write

    cube, _ = lazy_cube(table, dates, size, chunk)
    with tempfile.TemporaryDirectory() as tmp:
        result = cube.physics.retrieve(["lai", "ccc"])
        base = _peak_rss_mb()
        start = time.perf_counter()
        with dask.config.set(scheduler="threads", num_workers=2):
            result.to_zarr(f"{tmp}/out.zarr", mode="w", zarr_format=ZARR_FORMAT)
        elapsed = time.perf_counter() - start
    queue.put((elapsed, base, _peak_rss_mb()))


def run_in_memory(table, dates: int, size: int, chunk: int, queue) -> None:
    import torch

    from xr_physcube.inverse import load_pretrained

    cube, names = lazy_cube(table, dates, size, chunk)
    net = load_pretrained("pretrained-s2")
    base = _peak_rss_mb()
    x = np.stack([cube[n].values for n in names], axis=-1).reshape(-1, len(names))
    order = [names.index(n) for n in net.input_names]
    start = time.perf_counter()
    x = np.ascontiguousarray(x[:, order])
    mean = np.empty((x.shape[0], len(net.output_names)), np.float32)
    std = np.empty_like(mean)
    batch = 65_536  # the accessor's DEFAULT_BATCH: same work per network call
    for i in range(0, x.shape[0], batch):
        m, s = net.predict(torch.from_numpy(x[i : i + batch]))
        mean[i : i + batch], std[i : i + batch] = m.numpy(), s.numpy()
    elapsed = time.perf_counter() - start
    queue.put((elapsed, base, _peak_rss_mb()))


def _in_child(target, *args):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    while True:
        try:
            out = queue.get(timeout=5)
            break
        except Exception:  # queue.Empty: still running, or crashed
            if not proc.is_alive():
                raise RuntimeError(f"{target.__name__} failed (exit {proc.exitcode})") from None
    proc.join()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dates", type=int, default=10)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--chunk", type=int, default=512)
    args = parser.parse_args()
    n_pix = args.dates * args.size * args.size
    cube_mb = n_pix * 13 * 4 / 2**20
    chunk_mb = args.chunk**2 * 13 * 4 / 2**20
    print(
        f"cube: {args.dates} x {args.size} x {args.size} px, 10 bands + 3 angles, "
        f"{cube_mb:,.0f} MB as float32; chunk {args.chunk}x{args.chunk} = {chunk_mb:.1f} MB"
    )
    # Built in a child too: Linux keeps a process's peak RSS across fork/exec, so the parent
    # must stay small for the children's peak RSS to be their own.
    table = _in_child(_library_table)  # (4096, 13) realistic pixels
    t_block, base_b, rss_b = _in_child(run_blockwise, table, args.dates, args.size, args.chunk)
    t_mem, base_m, rss_m = _in_child(run_in_memory, table, args.dates, args.size, args.chunk)
    for label, t, base, rss in (
        ("blockwise (dask, to_zarr) ", t_block, base_b, rss_b),
        ("in-memory (numpy, batched)", t_mem, base_m, rss_m),
    ):
        print(
            f"{label}: {n_pix / t:12,.0f} pixels/s   peak RSS {rss:7,.0f} MB "
            f"(after imports {base:5,.0f} MB; work added {rss - base:7,.0f} MB)"
        )
    added = rss_b - base_b
    print(
        f"time blockwise / in-memory: {t_block / t_mem:.2f}x (target <= 1.5x); blockwise "
        f"work added {added / cube_mb:.2f} x the cube size = {added / chunk_mb:.1f} chunks"
    )


if __name__ == "__main__":
    main()
