"""Throughput of the Water Cloud Model and SAFY: PyTorch (ours) vs a NumPy reference, one run.

Prints pixels/second for
  (a) WCM (Oh 2004 soil, LAI descriptor, VV+VH) on --n-wcm pixels (default 1,000,000):
      NumPy vectorised reference vs xr_physcube (torch, CPU), and the ratio;
  (b) SAFY on --n-safy pixels x --days days (default 10,000 x 200): NumPy reference
      (loop over days, vectorised over pixels, the same algorithm) vs xr_physcube, ratio.
Also a pure-Python per-pixel SAFY loop on --n-scalar pixels, for scale.

    python benchmarks/bench_sar_safy.py [--dtype float32] [--repeat 3] [--threads 1]

Torch runs with ``--threads`` intra-op threads (default 1, the same resources as NumPy,
whose element-wise operations are single-threaded). On a busy shared machine more torch
threads can be *slower* (OpenMP threads wait for a loaded core): try ``--threads 2``.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from xr_physcube.models.safy import SAFY_PARAMETERS, safy, shipped_climate
from xr_physcube.models.sar import WCM_COEFFICIENTS, water_cloud_backscatter
from xr_physcube.sensors.sentinel1 import WAVENUMBER_CM


def wcm_numpy(mv, hrms, theta, lai, c=WCM_COEFFICIENTS["lai"]):
    ks, th = WAVENUMBER_CM * hrms, np.deg2rad(theta)
    cos_t = np.cos(th)
    vh_s = 0.11 * mv**0.7 * cos_t**2.2 * (1 - np.exp(-0.32 * ks**1.8))
    q = 0.095 * (0.13 + np.sin(1.5 * th)) ** 1.4 * (1 - np.exp(-1.3 * ks**0.9))
    out = []
    for pol, soil in (("vv", vh_s / q), ("vh", vh_s)):
        tau2 = np.exp(-2 * c[f"b_{pol}"] * lai / cos_t)
        out.append(c[f"a_{pol}"] * lai ** c[f"e_{pol}"] * cos_t * (1 - tau2) + tau2 * soil)
    return out


def safy_numpy(temp, rg, p):
    """Same algorithm as xr_physcube.models.safy (hard emergence), vectorised over pixels."""
    n_pix, n_days = temp.shape
    lai0 = p["ms0"] * p["sla"]
    g = np.zeros(n_pix)
    d = np.zeros(n_pix)
    s = np.zeros(n_pix)
    ended = np.zeros(n_pix, bool)
    glai, dam = np.empty((n_pix, n_days)), np.empty((n_pix, n_days))
    for t in range(n_days):
        emerged = t >= p["d0"]
        first = t == np.floor(p["d0"])
        ended |= (s > p["stt"]) & (g < lai0) & ~first
        alive = emerged & ~ended
        T = temp[:, t]
        x = np.where(p["topt"] >= T, (p["topt"] - T) / (p["topt"] - p["tmin"]),
                     (T - p["topt"]) / (p["tmax"] - p["topt"]))  # fmt: skip
        ft = np.maximum(1 - x ** p["beta"], 0)
        s = s + alive * np.maximum(T - p["tmin"], 0)
        ddam = p["elue"] * p["eps_c"] * rg[:, t] * (1 - np.exp(-p["k"] * g)) * ft
        pl = np.maximum(1 - p["pla"] * np.exp(p["plb"] * s), 0)
        sen = np.clip((s - p["stt"]) / p["rs"], 0, 1)
        g = np.where(first, lai0, alive * (g + ddam * pl * p["sla"] - g * sen))
        d = np.where(first, p["ms0"], d + alive * ddam)
        glai[:, t], dam[:, t] = g, d
    return glai, dam


def safy_scalar(temp, rg, p):
    g = d = s = 0.0
    out = []
    lai0 = p["ms0"] * p["sla"]
    for t in range(len(temp)):
        if t == int(p["d0"]):
            g, d, s = lai0, p["ms0"], max(temp[t] - p["tmin"], 0.0)
        elif t > p["d0"]:
            T = temp[t]
            span = p["topt"] - p["tmin"] if p["topt"] >= T else p["tmax"] - p["topt"]
            ft = max(1 - (abs(T - p["topt"]) / span) ** p["beta"], 0.0)
            s += max(T - p["tmin"], 0.0)
            ddam = p["elue"] * p["eps_c"] * rg[t] * (1 - math.exp(-p["k"] * g)) * ft
            pl = max(1 - p["pla"] * math.exp(p["plb"] * s), 0.0)
            g += ddam * pl * p["sla"] - g * min(max((s - p["stt"]) / p["rs"], 0.0), 1.0)
            d += ddam
        out.append(g)
    return out, d


def best_time(fn, repeat):
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-wcm", type=int, default=1_000_000)
    parser.add_argument("--n-safy", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=200)
    parser.add_argument("--n-scalar", type=int, default=50)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--no-compile", action="store_true", help="skip the compile=True row")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    npdtype = np.dtype(args.dtype)
    rng = np.random.default_rng(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, dtype {args.dtype}")

    n = args.n_wcm
    mv, hrms = rng.uniform(0.05, 0.4, n), rng.uniform(0.5, 3, n)
    theta, lai = rng.uniform(29.1, 46, n), rng.uniform(0, 6, n)
    arrays = [x.astype(npdtype) for x in (mv, hrms, theta, lai)]
    tens = [torch.as_tensor(x) for x in arrays]
    t_np = best_time(lambda: wcm_numpy(*arrays), args.repeat)
    with torch.no_grad():
        t_torch = best_time(
            lambda: water_cloud_backscatter(tens[0], tens[1], tens[2], lai=tens[3]), args.repeat
        )
        t_noval = best_time(
            lambda: water_cloud_backscatter(tens[0], tens[1], tens[2], lai=tens[3], validate=False),
            args.repeat,
        )
    print(f"(a) WCM+Oh VV/VH, {n:,} pixels: NumPy {n / t_np:14,.0f} px/s | "
          f"xr_physcube {n / t_torch:14,.0f} px/s | ratio {t_np / t_torch:5.2f}x")  # fmt: skip
    print(f"    xr_physcube with validate=False: {n / t_noval:14,.0f} px/s | "
          f"ratio {t_np / t_noval:5.2f}x")  # fmt: skip
    if not args.no_compile:
        with torch.no_grad():
            start = time.perf_counter()
            water_cloud_backscatter(tens[0], tens[1], tens[2], lai=tens[3], compile=True)
            t_first = time.perf_counter() - start
            t_comp = best_time(
                lambda: water_cloud_backscatter(
                    tens[0], tens[1], tens[2], lai=tens[3], compile=True
                ),
                args.repeat,
            )
        print(f"    xr_physcube compile=True: {n / t_comp:14,.0f} px/s | "
              f"ratio {t_np / t_comp:5.2f}x (first call, compiling: {t_first:.1f} s)")  # fmt: skip

    clim = shipped_climate()
    start = 90  # 1 April
    days = slice(start, start + args.days)
    m = args.n_safy
    temp = clim.temperature[days] + rng.normal(0, 1.0, (m, 1))
    rg = clim.radiation[days] * rng.uniform(0.9, 1.1, (m, 1))
    p = SAFY_PARAMETERS.defaults()
    p["d0"] = 125.0 - start
    p_np = {k: np.full(m, v) for k, v in p.items()}
    p_np["elue"] = rng.uniform(2.5, 3.5, m)
    t_np = best_time(lambda: safy_numpy(temp, rg, p_np), args.repeat)
    temp_t, rg_t = torch.as_tensor(temp, dtype=dtype), torch.as_tensor(rg, dtype=dtype)
    p_t = {k: torch.as_tensor(v, dtype=dtype) for k, v in p_np.items()}
    with torch.no_grad():
        t_torch = best_time(lambda: safy(temp_t, rg_t, **p_t, emergence_width=0.5), args.repeat)
    work = m * args.days
    print(f"(b) SAFY {m:,} px x {args.days} days: NumPy {m / t_np:12,.0f} px/s "
          f"({work / t_np:,.0f} px-days/s) | xr_physcube {m / t_torch:12,.0f} px/s "
          f"({work / t_torch:,.0f} px-days/s) | ratio {t_np / t_torch:5.2f}x")  # fmt: skip
    k = args.n_scalar
    t_sc = best_time(
        lambda: [safy_scalar(temp[i], rg[i], {**p, "elue": p_np["elue"][i]}) for i in range(k)], 1
    )
    print(f"    pure-Python per-pixel SAFY loop ({k} px): {k / t_sc:12,.0f} px/s "
          f"-> xr_physcube is {t_sc / k * m / t_torch:6.0f}x faster")  # fmt: skip
    ref = safy_numpy(temp[:50], rg[:50], {k2: v[:50] for k2, v in p_np.items()})[1][:, -1]
    p50 = {k2: v[:50].double() for k2, v in p_t.items()}
    ours = safy(temp_t[:50].double(), rg_t[:50].double(), **p50, emergence_width=1e-3)
    ours = ours.biomass[:, -1].numpy()
    print(f"    check: max |final biomass NumPy - ours| = {np.abs(ref - ours).max():.2e} g/m2")


if __name__ == "__main__":
    main()
