"""Peak memory of the two largest single allocations a job makes, against their budget.

1. ``InverseModel.predict`` (the shipped S2 network) on ``--rows`` rows (default 10
   million) at once. It runs ``PREDICT_BATCH`` rows at a time into preallocated outputs,
   so the peak above the inputs is the outputs plus one batch's temporaries; budget:
   outputs + :data:`PREDICT_TEMP_BUDGET`. For comparison, one pass over ``--one-shot``
   rows (``batch_size`` = rows: the behaviour before batching) and the same rows batched.
2. One task of a temporal ``ds.vae.encode`` (``temporal_hybrid``) of a ``--size``² ×
   ``--dates`` cube given as ONE spatial chunk: the method splits it into tasks under
   ``MEMORY_BUDGET`` (256 MiB). Measured: the first task alone (its peak above the
   in-memory cube), all tasks one after the other (synchronous scheduler, outputs reduced
   at once: allocator retention and the scheduler's order add to a task's peak), and the
   one chunk as a single task (``memory_budget`` unlimited, the behaviour before).

Each measurement runs in a fresh process; RSS sampled every 2 ms (``_rss.PeakRSS``).

    python benchmarks/bench_memory.py [--rows 10000000] [--one-shot 2000000]
        [--size 512] [--dates 20]
"""

from __future__ import annotations

import argparse
import sys

from _rss import MIB, fresh_python

PREDICT_TEMP_BUDGET = 256 * MIB
"""Budget of ``predict``'s temporaries beyond its outputs (bytes)."""

PREDICT = """
import numpy as np, torch
from _rss import PeakRSS
from xr_physcube.inverse.pretrained import load_pretrained
net = load_pretrained("s2")
rng = np.random.default_rng(0)
row = np.array([0.03, 0.05, 0.04, 0.08, 0.2, 0.25, 0.3, 0.32, 0.2, 0.1, 35.0, 5.0, 100.0])
x = np.empty(({rows}, 13), np.float32)
for i in range(0, {rows}, 1_000_000):
    part = x[i : i + 1_000_000]
    part[:] = row * rng.uniform(0.8, 1.2, (len(part), 1)).astype(np.float32)
x = torch.from_numpy(x)
net.predict(x[:1000])
with PeakRSS() as rss:
    mean, std = net.predict(x, batch_size={batch})
print(rss.above, mean.nbytes + std.nbytes, bool(torch.isfinite(mean).all()))
"""

ENCODE = """
import dask, numpy as np, pandas as pd, xarray as xr
import xr_physcube  # noqa: F401
from _rss import PeakRSS
from xr_physcube.cube.vae import temporal_task_size
from xr_physcube.sensors.sentinel2 import BANDS
from xr_physcube.vae.pretrained import load_pretrained
n, t = {size}, {dates}
net = load_pretrained("temporal_hybrid")
rng = np.random.default_rng(0)
shape = (t, n, n)
data = {{b: rng.uniform(0.02, 0.4, shape).astype(np.float32) for b in BANDS}}
data |= {{p: rng.uniform(0.01, 0.1, shape).astype(np.float32) for p in ("VV", "VH")}}
cube = xr.Dataset(
    {{k: (("time", "y", "x"), v) for k, v in data.items()}},
    coords={{
        "time": pd.date_range("2024-04-01", periods=t, freq="5D"),
        "tts": ("time", np.linspace(30, 45, t)), "tto": ("time", np.full(t, 5.0)),
        "psi": ("time", np.full(t, 100.0)), "theta": ("time", np.full(t, 38.0)),
    }},
).chunk({{"time": -1, "y": n, "x": n}})  # one chunk: the whole cube
pixels, series = temporal_task_size(t, net, {budget})
out = cube.vae.encode(net, memory_budget={budget})
_, ys, xs = out.lai.data.chunks
if {one_task}:  # the first spatial chunk: one encode task
    out = out.isel(y=slice(0, ys[0]), x=slice(0, xs[0]))
with PeakRSS() as rss, dask.config.set(scheduler="synchronous"):
    out.sum(("y", "x")).compute()
print(rss.above, ys[0] * xs[0], series, cube.nbytes)
"""


def _predict(rows: int, batch: int | None) -> tuple[float, float, bool]:
    """(peak MiB above the inputs, output MiB, all finite) of predict in a fresh process."""
    from xr_physcube.inverse.nets import PREDICT_BATCH

    code = PREDICT.format(rows=rows, batch=batch or PREDICT_BATCH)
    above, out_bytes, finite = fresh_python(code).split()[-3:]
    return int(above) / MIB, int(out_bytes) / MIB, finite == "True"


def _encode(size: int, dates: int, budget: int, one_task: bool) -> tuple[float, int, int, float]:
    """(peak MiB, pixels per task, series per call, cube MiB) of one task or all."""
    code = ENCODE.format(size=size, dates=dates, budget=budget, one_task=one_task)
    above, pixels, series, cube = fresh_python(code).split()[-4:]
    return int(above) / MIB, int(pixels), int(series), int(cube) / MIB


def main(argv: list[str] | None = None) -> int:
    from xr_physcube.cube.datacube import MEMORY_BUDGET

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--one-shot", type=int, default=2_000_000, help="rows of the comparison")
    ap.add_argument("--size", type=int, default=512, help="side of the encoded cube (pixels)")
    ap.add_argument("--dates", type=int, default=20)
    args = ap.parse_args(argv)

    peak, out, finite = _predict(args.rows, None)
    budget = out + PREDICT_TEMP_BUDGET / MIB
    print(
        f"predict on {args.rows:,} rows: peak RSS {peak:,.0f} MiB above the inputs "
        f"(budget: outputs {out:,.0f} MiB + {PREDICT_TEMP_BUDGET / MIB:.0f} MiB = "
        f"{budget:,.0f} MiB), peak / budget ratio {peak / budget:.2f}x, "
        f"{'within' if peak <= budget else 'OVER'} budget; outputs finite: {finite}"
    )
    one, out1, _ = _predict(args.one_shot, args.one_shot)
    batched, _, _ = _predict(args.one_shot, None)
    print(
        f"predict on {args.one_shot:,} rows: one pass {one - out1:,.0f} MiB of temporaries, "
        f"batched {batched - out1:,.0f} MiB (outputs {out1:,.0f} MiB); batched / one pass "
        f"ratio {max(batched, 1e-3) / max(one, 1e-3):.2f}x of the peak"
    )

    task, pixels, series, cube = _encode(args.size, args.dates, MEMORY_BUDGET, True)
    run, _, _, _ = _encode(args.size, args.dates, MEMORY_BUDGET, False)
    whole, _, _, _ = _encode(args.size, args.dates, 2**62, True)
    verdict = "within" if task <= MEMORY_BUDGET / MIB else "OVER"
    print(
        f"temporal encode of a {args.size}x{args.size}x{args.dates} cube ({cube:,.0f} MiB, one "
        f"chunk): tasks of {pixels:,} pixels, {series:,} series per call; peak RSS of one task "
        f"{task:,.0f} MiB (budget {MEMORY_BUDGET / MIB:.0f} MiB), peak / budget ratio "
        f"{task / (MEMORY_BUDGET / MIB):.2f}x, {verdict} budget"
    )
    print(
        f"  all tasks one after the other: peak {run:,.0f} MiB; the whole chunk as one task "
        f"(no budget, as before): {whole:,.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
