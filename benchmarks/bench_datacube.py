"""The multi-modal data cube on held-out simulated seasons, against per-date baselines.

Seasons never seen in training (``--seed``; PROSAIL at 1 nm, the model's decoder runs
at 5 nm) with S2 every 5 days (``--clouds`` of the acquisitions lost, persistent) and
S1 every 6 days on two orbits. Scored on the regular 5-day grid against the daily truth:

* LAI RMSE on (a) grid dates with a clear S2 within ±2 days, (b) grid dates ≥ 10 days
  from any clear S2;
* soil moisture RMSE on (c) grid dates without an S1 acquisition.

Baselines, in the same run, on the same pixels:

* ``inverse+interp``: the shipped S2 inverse network per clear date, linearly
  interpolated (held constant beyond the first/last clear date); soil moisture: the
  shipped ``s1_lai`` network per S1 date (with that interpolated LAI), interpolated;
* ``vae-pixel+interp``: the shipped per-pixel VAE (``pixel_hybrid``) on each clear S2
  date (LAI) and each S1 date (mv), interpolated;
* ``whittaker``: a Whittaker smoother (Eilers 2003, *A perfect smoother*, Anal. Chem.
  75:3631–3636; second differences, λ = ``--lam`` on the daily axis) of the per-date
  inverse LAI.

Context rows (not baselines): the data cube with every S1 acquisition masked (what S1
adds in the gaps), and the noise-free true LAI at the clear S2 dates linearly
interpolated (what a perfect per-date S2 retrieval plus interpolation would give: the
gap error S2 alone cannot remove without a model of the trajectory).

Also printed: throughput of ``ds.vae.datacube`` (grid pixel-dates per second) and the
peak RSS of a process running one task of the default memory budget.

    python benchmarks/bench_datacube.py [--pixels 2000] [--seed 424242] [--clouds 0.4]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from _rss import fresh_python

from xr_physcube.cube.datacube import MEMORY_BUDGET
from xr_physcube.inverse.pretrained import load_pretrained as load_inverse
from xr_physcube.sensors.sentinel1 import db_to_linear
from xr_physcube.vae.datacube import DataCubeVAE, SeriesBatch
from xr_physcube.vae.pretrained import load_pretrained as load_vae
from xr_physcube.vae.seasons import SimulatedSeasons, simulate_seasons

GRID_STEP_DAYS = 5


def interp_rows(days: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Per row, linear interpolation of the finite ``values`` (n, T) at ``days`` (T,) on
    ``query`` (Q,), constant outside; NaN for rows without any finite value."""
    out = np.full((values.shape[0], query.size), np.nan)
    for i, row in enumerate(values):
        ok = np.isfinite(row)
        if ok.any():
            out[i] = np.interp(query, days[ok], row[ok])
    return out


def whittaker_rows(days: np.ndarray, values: np.ndarray, n_days: int, lam: float):
    """Whittaker smoother (second differences) of ``values`` (n, T) at integer ``days``
    on the daily axis 0..n_days-1; weights 1 at finite values, 0 elsewhere."""
    d2 = np.diff(np.eye(n_days), 2, axis=0)
    penalty = lam * d2.T @ d2
    out = np.full((values.shape[0], n_days), np.nan)
    for i, row in enumerate(values):
        ok = np.isfinite(row)
        if ok.sum() < 2:
            continue
        w = np.zeros(n_days)
        y = np.zeros(n_days)
        w[days[ok]] = 1.0
        y[days[ok]] = row[ok]
        out[i] = np.linalg.solve(np.diag(w) + penalty, w * y)
    return out


def per_date_inverse(s: SimulatedSeasons):
    """Per-date LAI of the S2 network on clear dates (n, T2), and per-S1-date mv of the
    ``s1_lai`` network with that LAI interpolated to the S1 dates (n, T1)."""
    net = load_inverse("s2")
    x = np.concatenate([s.s2_observed(), s.s2_angles], -1)
    mean, _ = net.predict_numpy(x)
    lai = mean[..., net.output_names.index("lai")]
    lai_at_s1 = interp_rows(s.s2_day, lai, s.s1_day)
    s1net = load_inverse("s1_lai")
    lin = db_to_linear(s.s1_db)
    cols = {"VV": lin[..., 0], "VH": lin[..., 1], "theta": s.s1_theta, "lai": lai_at_s1}
    mv, _ = s1net.predict_numpy(np.stack([cols[k] for k in s1net.input_names], -1))
    return lai, mv[..., 0]


def per_date_vae(s: SimulatedSeasons):
    """The per-pixel VAE on each clear S2 date (S2 only) -> LAI, and on each S1 date
    (S1 only) -> mv."""
    vae = load_vae("pixel_hybrid")
    f = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
    nan2 = np.full((*s.s2.shape[:2], 2), np.nan, np.float32)
    obs2 = np.concatenate([s.s2_observed(), nan2], -1)
    ang2 = np.concatenate([s.s2_angles, np.full((*s.s2.shape[:2], 1), 38.0, np.float32)], -1)
    m2, _ = vae.infer(f(obs2), f(ang2))
    obs1 = np.concatenate([np.full((*s.s1_db.shape[:2], 10), np.nan, np.float32), s.s1_db], -1)
    ang1 = np.zeros((*s.s1_db.shape[:2], 4), np.float32)
    ang1[..., 0], ang1[..., 3] = 40.0, s.s1_theta
    m1, _ = vae.infer(f(obs1), f(ang1))
    names = vae.latent_names
    lai = np.where(np.isfinite(obs2[..., 0]), m2[..., names.index("lai")].numpy(), np.nan)
    return lai, m1[..., names.index("mv")].numpy()


def datacube(s: SimulatedSeasons, grid: np.ndarray, batch: int = 512, with_s1: bool = True):
    """The data-cube VAE on every pixel: LAI and mv (n, Q) on the grid days; with
    ``with_s1=False`` every S1 acquisition is masked (what S1 adds)."""
    model = DataCubeVAE.load()
    s1_db = s.s1_db if with_s1 else np.full_like(s.s1_db, np.nan)
    start = float(s.doy[0]) - 1.0
    f = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
    lai, mv = [], []
    names = model.latent_names
    for i in range(0, len(s), batch):
        sl = slice(i, i + batch)
        series = SeriesBatch(
            f(s.s2_observed()[sl]), f(s.s2_angles[sl]), f(start + s.s2_day[None]),
            f(s1_db[sl]), f(s.s1_theta[sl]), f(start + s.s1_day[None]),
        )  # fmt: skip
        mean, _ = model.infer_series(series, f(start + grid[None]))
        lai.append(mean[..., names.index("lai")].numpy())
        mv.append(mean[..., names.index("mv")].numpy())
    return np.concatenate(lai), np.concatenate(mv)


def clear_truth_lai(s: SimulatedSeasons) -> np.ndarray:
    """The true LAI on the clear S2 dates (n, T2), NaN where cloudy: what a perfect
    per-date S2 retrieval would give."""
    return np.where(s.s2_cloudy, np.nan, s.truth["lai"][:, s.s2_day])


def rmse(err: np.ndarray, mask: np.ndarray) -> float:
    e = err[mask & np.isfinite(err)]
    return float(np.sqrt(np.mean(e**2))) if e.size else float("nan")


def throughput_and_memory(size: int, workdir: str) -> tuple[float, float, float]:
    """``ds.vae.datacube`` on a ``size``² demo season (written to NetCDF first) in a fresh
    process, synchronous scheduler (one task at a time): grid pixel-dates/s, peak RSS
    (sampled every 5 ms) above the RSS just before computing (MiB), and that RSS."""
    write = f"""
from xr_physcube.io.demo_season import demo_season
d = demo_season(size={size}, chunks=None)
d.s2.to_netcdf(r"{workdir}/s2.nc"); d.s1.to_netcdf(r"{workdir}/s1.nc")
"""
    run = f"""
import time, dask, xarray as xr
import xr_physcube.accessors
from xr_physcube.vae.datacube import DataCubeVAE
from _rss import PeakRSS
DataCubeVAE.load()
s2 = xr.open_dataset(r"{workdir}/s2.nc", chunks={{}})
s1 = xr.open_dataset(r"{workdir}/s1.nc", chunks={{}})
cube = s2.vae.datacube(s1=s1)
t = time.perf_counter()
with PeakRSS(0.005) as rss, dask.config.set(scheduler="synchronous"):
    out = cube.compute()
dt = time.perf_counter() - t
print(out.lai.size / dt, rss.base / 2**20, rss.peak / 2**20)
"""
    subprocess.run([sys.executable, "-c", write], check=True)
    rate, base, peak = (float(v) for v in fresh_python(run).split()[-3:])
    return rate, peak - base, base


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pixels", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=424242)
    ap.add_argument("--clouds", type=float, default=0.4)
    ap.add_argument("--lam", type=float, default=200.0)
    ap.add_argument("--memory-size", type=int, default=64, help="demo side for the RSS run")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    s = simulate_seasons(args.pixels, args.seed, cloud_fraction=args.clouds)
    n_days = s.truth["lai"].shape[1]
    grid = np.arange(0, n_days, GRID_STEP_DAYS)
    print(f"{len(s)} held-out seasons ({n_days} days, S2 {len(s.s2_day)} dates, "
          f"{s.s2_cloudy.mean():.0%} cloudy; S1 {len(s.s1_day)} dates), "
          f"simulated in {time.perf_counter() - t0:.0f} s")  # fmt: skip
    lai_true, mv_true = s.truth["lai"][:, grid], s.truth["mv"][:, grid]
    dist = np.full((len(s), grid.size), np.inf)
    for j, day in enumerate(s.s2_day):
        clear = ~s.s2_cloudy[:, j : j + 1]
        dist = np.where(clear, np.minimum(dist, np.abs(grid[None] - day)), dist)
    near, far = dist <= 2, dist >= 10
    no_s1 = np.broadcast_to(~np.isin(grid, s.s1_day), dist.shape)
    print(f"grid dates: (a) clear S2 within ±2 d: {near.mean():.0%}, (b) ≥ 10 d from a "
          f"clear S2: {far.mean():.0%}, (c) no S1 that day: {no_s1[0].mean():.0%}")  # fmt: skip

    t = time.perf_counter()
    dc_lai, dc_mv = datacube(s, grid)
    dc_time = time.perf_counter() - t
    inv_lai, inv_mv = per_date_inverse(s)
    vae_lai, vae_mv = per_date_vae(s)
    methods = {
        "datacube VAE": (dc_lai, dc_mv),
        "inverse+interp": (
            interp_rows(s.s2_day, inv_lai, grid),
            interp_rows(s.s1_day, inv_mv, grid),
        ),
        "vae-pixel+interp": (
            interp_rows(s.s2_day, vae_lai, grid),
            interp_rows(s.s1_day, vae_mv, grid),
        ),
        "whittaker": (whittaker_rows(s.s2_day, inv_lai, n_days, args.lam)[:, grid], None),
    }
    print(f"\n{'method':18s} {'LAI (a)':>8s} {'LAI (b)':>8s} {'(b)/(a)':>8s} {'mv (c)':>8s}")
    scores = {}
    for name, (lai, mv) in methods.items():
        a, b = rmse(lai - lai_true, near), rmse(lai - lai_true, far)
        c = rmse(mv - mv_true, no_s1) if mv is not None else float("nan")
        scores[name] = (a, b, c)
        print(f"{name:18s} {a:8.3f} {b:8.3f} {b / a:8.2f} {c:8.4f}")
    context = {
        "datacube, no S1": datacube(s, grid, with_s1=False)[0],
        "truth interp": interp_rows(s.s2_day, clear_truth_lai(s), grid),
    }
    print("context (not baselines): the data cube with every S1 acquisition masked, and the")
    print("noise-free daily truth at the clear S2 dates, linearly interpolated (S2 alone)")
    for name, lai in context.items():
        a, b = rmse(lai - lai_true, near), rmse(lai - lai_true, far)
        print(f"{name:18s} {a:8.3f} {b:8.3f} {b / a:8.2f} {'–':>8s}")
    a, b, c = scores["datacube VAE"]
    best_b = min(v[1] for k, v in scores.items() if k != "datacube VAE")
    print(f"\ntarget LAI (b)/(a) ≤ 1.3: {b / a:.2f}; LAI (b) vs best baseline: "
          f"{b / best_b:.2f}x (target < 1); mv (c) vs inverse+interp: "
          f"{c / scores['inverse+interp'][2]:.2f}x (target < 1)")  # fmt: skip
    n_pd = dc_lai.size
    print(f"datacube VAE (torch, batches of 512 pixels): {n_pd / dc_time:,.0f} grid pixel-dates/s")
    with tempfile.TemporaryDirectory() as tmp:
        rate, peak, base = throughput_and_memory(args.memory_size, tmp)
    print(
        f"ds.vae.datacube on a {args.memory_size}² demo season (NetCDF, synchronous): "
        f"{rate:,.0f} grid pixel-dates/s; peak RSS {peak:.0f} MiB above the "
        f"{base:.0f} MiB after imports (budget per task {MEMORY_BUDGET / 2**20:.0f} MiB)"
    )
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"benchmark process peak RSS {peak_mib:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
