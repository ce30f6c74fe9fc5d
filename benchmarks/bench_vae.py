"""Benchmark of the physics-constrained VAE (shipped per-pixel model), in one run:

1. Simulated test set with known truth (seed never used in training): RMSE of the
   VAE posterior means for LAI, Cab, Cw, Cm and soil moisture, side by side with the
   inverse networks of ``xr_physcube.inverse`` (``load_pretrained("s2")``/``("s1")``)
   when they are available; reconstruction RMSE per band.
2. Demo cube: reconstruction RMSE per band on observed pixels, LAI/mv RMSE vs truth.
3. Throughput of ``ds.vae.encode()`` on CPU (pixels/s, blockwise with dask), vs the raw
   in-memory ``PhysVAE.infer`` on the same pixels.

Run: ``python benchmarks/bench_vae.py [--n 5000] [--tile 4]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import xarray as xr

import xr_physcube  # noqa: F401
from xr_physcube.io.demo import demo_scene
from xr_physcube.sensors.sentinel2 import BANDS
from xr_physcube.vae import load_pretrained, simulate_pixels
from xr_physcube.vae.accessor import VAEAccessor  # noqa: F401
from xr_physcube.vae.model import OUTPUTS

VARS = ("lai", "cab", "cw", "cm", "mv")


def rmse(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.sqrt(np.mean((a[ok] - b[ok]) ** 2)))


def inverse_predictions(sim, names) -> dict[str, np.ndarray]:
    """Predictions of the inverse networks on the simulated test set, if they exist."""
    try:
        from xr_physcube.inverse import load_pretrained as load_inverse
    except ImportError as err:
        print(f"  inverse networks unavailable ({err}); comparison pending")
        return {}
    obs = sim.obs.numpy()
    columns = {b: obs[:, i] for i, b in enumerate(BANDS)}
    columns["VV"], columns["VH"] = 10 ** (obs[:, 10] / 10), 10 ** (obs[:, 11] / 10)
    columns["VV_db"], columns["VH_db"] = obs[:, 10], obs[:, 11]
    columns["ndvi"] = (columns["B8"] - columns["B4"]) / (columns["B8"] + columns["B4"])
    for i, a in enumerate(("tts", "tto", "psi", "theta")):
        columns[a] = sim.angles[:, i].numpy()
    truth = {n: sim.truth[:, i].numpy() for i, n in enumerate(names)}
    out: dict[str, np.ndarray] = {}
    for key in ("s2", "s1"):
        try:
            net = load_inverse(key)
        except Exception as err:  # noqa: BLE001
            print(f"  inverse network {key!r} unavailable: {err}")
            continue
        inputs = []
        for n in net.input_names:
            if n in columns:
                inputs.append(columns[n])
            elif n in truth:  # ancillary inputs (e.g. LAI for the S1 net) given as truth
                inputs.append(truth[n])
            else:
                inputs = None
                print(f"  inverse {key!r}: input {n!r} not available in the simulation")
                break
        if inputs is None:
            continue
        x = torch.as_tensor(np.stack(inputs, -1), dtype=torch.float32)
        with torch.no_grad():
            mean, _ = net.predict(x)
        for i, n in enumerate(net.output_names):
            if n in VARS and n not in out:
                out[n] = mean[:, i].numpy()
                out[f"{n}__net"] = key
        print(f"  inverse {key!r}: inputs {list(net.input_names)}")
    return out


def simulated(model, n: int) -> None:
    print(f"\n== Simulated test set: {n} pixels, seed 12345 (training used seed 0) ==")
    sim = simulate_pixels(n, model.config.ranges, seed=12345, missing_s2=0.0, missing_s1=0.0)
    names = sim.names
    t0 = time.perf_counter()
    mean, std = model.infer(sim.obs, sim.angles)
    dt = time.perf_counter() - t0
    print(f"  VAE infer: {n / dt:,.0f} pixels/s (in memory)")
    inv = inverse_predictions(sim, names)
    print(f"\n  {'variable':<9}{'range':>16}{'VAE RMSE':>11}{'inverse RMSE':>14}{'ratio':>8}")
    for v in VARS:
        i = names.index(v)
        lo, hi = model.config.ranges[v]
        r_vae = rmse(mean[:, i], sim.truth[:, i])
        if v in inv:
            r_inv = rmse(inv[v], sim.truth[:, i])
            print(
                f"  {v:<9}{f'[{lo:g}, {hi:g}]':>16}{r_vae:>11.4g}"
                f"{r_inv:>10.4g} ({inv[v + '__net']}){r_vae / r_inv:>8.2f}"
            )
        else:
            print(f"  {v:<9}{f'[{lo:g}, {hi:g}]':>16}{r_vae:>11.4g}{'pending':>14}")
    z = (mean - sim.truth) / std
    print("  calibration: std of (mean - truth)/posterior std per variable (1 = calibrated):")
    print("   ", {v: round(float(z[:, names.index(v)].std()), 2) for v in VARS})
    with torch.no_grad():
        recon = model.decode(mean, sim.angles)
    print("\n  reconstruction RMSE per band (reflectance; S1 in dB):")
    print("   ", {o: round(rmse(recon[:, j], sim.obs[:, j]), 4) for j, o in enumerate(OUTPUTS)})


def demo(model) -> None:
    print("\n== Demo cube 64 x 64 x 4 dates (simulated scene, truth not used by the VAE) ==")
    scene = demo_scene(64, seed=0, chunks=32)
    ds = scene.cube
    rec = ds.vae.reconstruct(model).compute()
    lat = ds.vae.encode(model).compute()
    res = {}
    for b in BANDS:
        res[b] = round(rmse(rec[b].values, ds[b].values), 4)
    for p in ("VV", "VH"):
        res[p + "_dB"] = round(rmse(10 * np.log10(rec[p].values), 10 * np.log10(ds[p].values)), 3)
    print("  reconstruction RMSE per band (observed pixels):", res)
    print(
        "  retrieval RMSE vs truth: "
        + ", ".join(f"{v} {rmse(lat[v].values, scene.truth[v].values):.4g}" for v in VARS)
    )


def throughput(model, tile: int) -> None:
    print(f"\n== encode throughput on CPU ({torch.get_num_threads()} threads) ==")
    base = demo_scene(64, seed=0, chunks=None).cube
    big = xr.concat([xr.concat([base] * tile, dim="x")] * tile, dim="y")
    big = big.assign_coords(x=np.arange(big.sizes["x"]), y=np.arange(big.sizes["y"]))
    n_pix = big.sizes["time"] * big.sizes["y"] * big.sizes["x"]
    lazy = big.chunk({"time": 1, "y": 128, "x": 128})
    lat = lazy.vae.encode(model)
    t0 = time.perf_counter()
    lat.compute()
    dt_lazy = time.perf_counter() - t0
    t0 = time.perf_counter()
    big.vae.encode(model)  # NumPy-backed: computed at once, one block
    dt_eager = time.perf_counter() - t0
    print(f"  {n_pix:,} pixel-dates: ds.vae.encode() blockwise (dask, chunks 128x128): "
          f"{n_pix / dt_lazy:,.0f} pixels/s; NumPy-backed cube: {n_pix / dt_eager:,.0f} pixels/s; "
          f"ratio dask/numpy {dt_eager / dt_lazy:.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--tile", type=int, default=4)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = load_pretrained()
    print("VAE:", model.meta.get("recipe", "?"), "| latents", list(model.latent_names))
    simulated(model, args.n)
    demo(model)
    throughput(model, args.tile)


if __name__ == "__main__":
    main()
