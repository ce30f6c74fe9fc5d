"""Benchmark of the physics-constrained VAE against the inverse networks, in one run:

1. Simulated test set with known truth, fair to both methods: drawn from the shared
   priors (:mod:`xr_physcube.inverse.priors`) with the inverse module's simulation and
   noise model (:func:`xr_physcube.vae.train.simulate_prior_pixels`, i.e.
   ``inverse.simulate.simulate_s1``), seed 20261125, never used in training (the VAE
   and the inverse networks were trained on seed 0). RMSE of LAI, Cab, Cw, Cm and soil
   moisture, VAE posterior means (shipped per-pixel models ``pixel`` and
   ``pixel_hybrid``, and any ``--extra`` checkpoints) vs the shipped S2 / S1 inverse
   networks, and each VAE's reconstruction RMSE per band.
2. Simulated time series (``simulate_prior_series``, same seed, 8 irregular dates, 25 %
   cloudy): the shipped temporal models (``temporal``, ``temporal_hybrid``) vs the
   per-pixel VAEs and the inverse networks applied date by date; cloud-free and cloudy
   pixel-dates scored separately.
3. Demo cube (truth never used in training): LAI, Cab, Cw, Cm, mv RMSE side by side for
   every shipped VAE, the default temporal model after fine-tuning on the cube's pixels
   (``ds.vae.fit``: negative ELBO, no truth; then the same with ``anchor=3000``
   simulations), and the inverse networks; on
   pixel-dates with S2 (cloud-free), S1 only (cloudy) and all. Reconstruction RMSE per
   band for each model. Then the default temporal model fine-tuned on the maize
   parcels alone, without and with the SAFY-consistency term.
4. Throughput of ``ds.vae.encode()`` on CPU (pixels/s, blockwise with dask), vs a
   NumPy-backed cube, for the accessor's two default models.

Run: ``python benchmarks/bench_vae.py [--n 5000] [--n-series 1000] [--tile 4]
[--finetune-steps 200]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr

import xr_physcube  # noqa: F401
from xr_physcube.cube.vae import VAEAccessor  # noqa: F401
from xr_physcube.io.demo import demo_scene
from xr_physcube.sensors.sentinel2 import BANDS
from xr_physcube.vae import load_pretrained
from xr_physcube.vae.model import OUTPUTS, PhysVAE
from xr_physcube.vae.pretrained import DEFAULT_PIXEL_MODEL, DEFAULT_TEMPORAL_MODEL
from xr_physcube.vae.simulate import simulate_prior_pixels, simulate_prior_series

VARS = ("lai", "cab", "cw", "cm", "mv")
TEST_SEED = 20261125


def rmse(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.sqrt(np.mean((a[ok] - b[ok]) ** 2))) if ok.any() else float("nan")


def inverse_predictions(obs: torch.Tensor, angles: torch.Tensor) -> dict[str, np.ndarray]:
    """Shipped inverse networks on the simulated test set: S2 net (bands + angles) for
    lai/cab/cw/cm, S1 net (VV, VH, theta, NDVI) for mv."""
    from xr_physcube.inverse import load_pretrained as load_inverse

    obs = obs.numpy()
    columns = {b: obs[:, i] for i, b in enumerate(BANDS)}
    columns["VV"], columns["VH"] = 10 ** (obs[:, 10] / 10), 10 ** (obs[:, 11] / 10)
    columns["ndvi"] = (columns["B8"] - columns["B4"]) / (columns["B8"] + columns["B4"])
    for i, a in enumerate(("tts", "tto", "psi", "theta")):
        columns[a] = angles[:, i].numpy()
    out: dict[str, np.ndarray] = {}
    for key in ("s2", "s1"):
        net = load_inverse(key)
        x = torch.as_tensor(np.stack([columns[n] for n in net.input_names], -1))
        with torch.no_grad():
            mean, _ = net.predict(x.float())
        for i, n in enumerate(net.output_names):
            if n in VARS and n not in out:
                out[n] = mean[:, i].numpy()
                out[f"{n}__net"] = key
    return out


def simulated(models: dict[str, PhysVAE], n: int) -> None:
    print(
        f"\n== Simulated test set: {n} pixels from xr_physcube.inverse.priors (shared priors, "
        f"inverse module's S2/S1 noise model), seed {TEST_SEED} (training: seed 0) =="
    )
    first = next(iter(models.values()))
    names = tuple(dict.fromkeys(k for m in models.values() for k in m.latent_names))
    sim = simulate_prior_pixels(n, names, seed=TEST_SEED, missing_s2=0.0,
                                missing_s1=0.0)  # fmt: skip
    truth = {k: sim.truth[:, i] for i, k in enumerate(names)}
    inv = inverse_predictions(sim.obs, sim.angles)
    results = {}
    for label, model in models.items():
        t0 = time.perf_counter()
        results[label] = model.infer(sim.obs, sim.angles)
        dt = time.perf_counter() - t0
        print(f"  {label}: infer {n / dt:,.0f} pixels/s (in memory)")
    head = "".join(f"{k[:24]:>26}" for k in models)
    print(f"\n  RMSE{'':<5}{'prior box':>17}{head}{'inverse net':>18}   (ratio = VAE/inverse)")
    for v in VARS:
        lo, hi = first.config.ranges[v]
        r_inv = rmse(inv[v], truth[v])
        cells = ""
        for label, (mean, _) in results.items():
            r = rmse(mean[:, models[label].latent_names.index(v)], truth[v])
            cells += f"{f'{r:.4g} ({r / r_inv:.2f})':>26}"
        print(f"  {v:<9}{f'[{lo:g}, {hi:g}]':>17}{cells}{r_inv:>13.4g} ({inv[v + '__net']})")
    for label, (mean, std) in results.items():
        own = models[label].latent_names
        z = {v: (mean[:, own.index(v)] - truth[v]) / std[:, own.index(v)] for v in VARS}
        print(f"  {label} calibration, std of (mean - truth)/posterior std (1 = calibrated):")
        print("   ", {v: round(float(z[v].std()), 2) for v in VARS})
    for label, (mean, _) in results.items():
        with torch.no_grad():
            recon = models[label].decode(mean, sim.angles)
        print(f"  {label} reconstruction RMSE per band (reflectance; S1 in dB):")
        print("   ", {o: round(rmse(recon[:, j], sim.obs[:, j]), 4) for j, o in enumerate(OUTPUTS)})


def demo(models: dict[str, PhysVAE], finetune_steps: int) -> None:
    print(
        "\n== Demo cube 64 x 64 x 4 dates (simulated scene; its truth is never used in training) =="
    )
    scene = demo_scene(64, seed=0, chunks=32)
    ds, truth = scene.cube, scene.truth
    s2_ok = np.isfinite(ds.B4.values)
    rows = {label: ds.vae.encode(m).compute() for label, m in models.items()}
    recon = {label: ds.vae.reconstruct(m).compute() for label, m in models.items()}
    for anchor in (None, 3000) if finetune_steps else ():
        tuned = load_pretrained(DEFAULT_TEMPORAL_MODEL)  # a fresh copy of the shipped model
        cube = demo_scene(64, seed=0, chunks=32).cube  # a fresh accessor
        t0 = time.perf_counter()
        cube.vae.fit(tuned, epochs=1000, max_steps=finetune_steps, batch_size=64,
                     anchor=anchor, progress=False)  # fmt: skip
        dt = time.perf_counter() - t0
        key = f"{DEFAULT_TEMPORAL_MODEL}+fit {finetune_steps}"
        key += f" anchor {anchor} ({dt:.0f} s)" if anchor else f" ({dt:.0f} s)"
        rows[key] = cube.vae.encode(tuned).compute()
        recon[key] = cube.vae.reconstruct(tuned).compute()
    inv = ds.physics.retrieve(["lai", "cab", "cw", "cm"]).compute()
    inv_mv = ds.physics.retrieve(["mv"], model="pretrained-s1").compute()
    rows["inverse nets (S2; S1 for mv)"] = inv.assign(mv=inv_mv.mv)
    subsets = (
        ("S2 observed (cloud-free) pixel-dates", s2_ok),
        ("cloudy pixel-dates (S1 only)", ~s2_ok),
        ("all pixel-dates", None),
    )
    for subset, mask in subsets:
        print(f"\n  RMSE vs truth, {subset}:")
        print(f"  {'method':<46}" + "".join(f"{v:>9}" for v in VARS))
        for name, lat in rows.items():
            vals = []
            for v in VARS:
                a, b = lat[v].values, truth[v].values
                vals.append(rmse(a[mask], b[mask]) if mask is not None else rmse(a, b))
            print(f"  {name:<46}" + "".join(f"{x:>9.4g}" for x in vals))
    print("  (the inverse S2 net gives NaN under clouds, so 'all' scores it on cloud-free pixels"
          " only; its S1 net needs NDVI, likewise)")  # fmt: skip
    print("\n  reconstruction RMSE per band on observed pixel-dates (reflectance; S1 in dB):")
    for name, rec in recon.items():
        res = {b: round(rmse(rec[b].values, ds[b].values), 4) for b in BANDS}
        for p in ("VV", "VH"):
            res[p + "_dB"] = round(
                rmse(10 * np.log10(rec[p].values), 10 * np.log10(ds[p].values)), 3
            )
        print(f"  {name}: {res}")


def demo_safy(steps: int) -> None:
    """Fine-tuning on the demo cube's maize parcels with the SAFY-consistency term."""
    from xr_physcube.io.demo import CROPS

    print(f"\n== Demo cube, maize parcels only: {DEFAULT_TEMPORAL_MODEL} fine-tuned {steps} "
          "steps (batch 64 series) on them, with SAFY consistency (maize parameters, shipped "
          "Toulouse climate; the demo's LAI is double-logistic, not SAFY) ==")  # fmt: skip
    print(f"  {'method':<46}{'LAI cloud-free':>16}{'LAI cloudy':>12}")
    for label, kw in (
        ("shipped, no fine-tuning", None),
        ("fit, anchor=3000", dict(anchor=3000)),
        ("fit, anchor=3000, safy=True", dict(anchor=3000, safy=True)),
    ):
        scene = demo_scene(64, seed=0, chunks=32)
        maize = (scene.truth.crop == list(CROPS).index("maize")).values
        cube = scene.cube.where(maize)  # other parcels masked (NaN)
        model = load_pretrained(DEFAULT_TEMPORAL_MODEL)
        if kw is not None:
            cube.vae.fit(model, epochs=1000, max_steps=steps, batch_size=64, progress=False,
                         **kw)  # fmt: skip
        lai = cube.vae.encode(model).lai.values
        clear = np.isfinite(scene.cube.B4.values)
        truth = scene.truth.lai.values
        cells = [rmse(lai[m & maize], truth[m & maize]) for m in (clear, ~clear)]
        print(f"  {label:<46}{cells[0]:>16.4g}{cells[1]:>12.4g}")


def simulated_series(temporal: dict[str, PhysVAE], pixel: dict[str, PhysVAE], n: int) -> None:
    """Temporal VAEs vs per-date retrievals on simulated time series with known truth."""
    if not temporal:
        return
    print(
        f"\n== Simulated time series: {n} pixels x 8 irregular dates "
        f"(xr_physcube.vae.train.simulate_prior_series, seed {TEST_SEED}; training: seed 0), "
        "25 % of dates cloudy (S1 only), some dates missing =="
    )
    names = tuple(dict.fromkeys(k for m in temporal.values() for k in m.latent_names))
    sim = simulate_prior_series(n, names, n_dates=8, seed=TEST_SEED)
    flat_obs, flat_ang = sim.obs.reshape(-1, sim.obs.shape[-1]), sim.angles.reshape(-1, 4)
    truth = {k: sim.truth[..., i].reshape(-1).numpy() for i, k in enumerate(names)}
    s2_ok = torch.isfinite(flat_obs[:, 0]).numpy()
    seen = torch.isfinite(flat_obs).any(-1).numpy()  # dates with S2 or S1
    preds = {}
    for label, m in temporal.items():
        with torch.no_grad():
            mean, _ = m.infer(sim.obs, sim.angles, sim.doy)
        own = m.latent_names
        preds[label] = {v: mean[..., own.index(v)].reshape(-1).numpy() for v in VARS}
    for label, m in pixel.items():
        with torch.no_grad():
            mean, _ = m.infer(flat_obs[seen], flat_ang[seen])
        own = m.latent_names
        preds[label + " (per date)"] = {}
        for v in VARS:
            full = np.full(len(seen), np.nan)
            full[seen] = mean[:, own.index(v)].numpy()
            preds[label + " (per date)"][v] = full
    inv = inverse_predictions(flat_obs, flat_ang)
    preds["inverse nets (per date)"] = {v: inv[v] for v in VARS}
    for subset, mask in (("cloud-free pixel-dates", s2_ok), ("cloudy pixel-dates (S1 only)",
                                                             seen & ~s2_ok)):  # fmt: skip
        print(f"\n  RMSE vs truth, {subset} ({int(mask.sum())}):")
        print(f"  {'method':<46}" + "".join(f"{v:>9}" for v in VARS))
        for label, p in preds.items():
            print(f"  {label:<46}" + "".join(f"{rmse(p[v][mask], truth[v][mask]):>9.4g}"
                                           for v in VARS))  # fmt: skip
    print("  (the inverse S2 net has no answer under clouds; its S1 net needs NDVI, likewise)")


def throughput(models: dict[str, PhysVAE], tile: int) -> None:
    print(f"\n== encode throughput on CPU ({torch.get_num_threads()} threads) ==")
    base = demo_scene(64, seed=0, chunks=None).cube
    big = xr.concat([xr.concat([base] * tile, dim="x")] * tile, dim="y")
    big = big.assign_coords(x=np.arange(big.sizes["x"]), y=np.arange(big.sizes["y"]))
    n_pix = big.sizes["time"] * big.sizes["y"] * big.sizes["x"]
    lazy = big.chunk({"time": 1, "y": 128, "x": 128})
    for label, model in models.items():
        lat = lazy.vae.encode(model)
        t0 = time.perf_counter()
        lat.compute()
        dt_lazy = time.perf_counter() - t0
        t0 = time.perf_counter()
        big.vae.encode(model)  # NumPy-backed: computed at once, one block
        dt_eager = time.perf_counter() - t0
        print(
            f"  {label}, {n_pix:,} pixel-dates: ds.vae.encode() blockwise (dask, chunks "
            f"128x128): {n_pix / dt_lazy:,.0f} pixels/s; NumPy-backed cube: "
            f"{n_pix / dt_eager:,.0f} pixels/s; ratio dask/numpy {dt_eager / dt_lazy:.2f}"
        )


SHIPPED = ("pixel", "pixel_hybrid", "temporal", "temporal_hybrid")
"""Shipped VAEs compared (``weights/vae_<name>.pt``); missing files are skipped."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--n-series", type=int, default=1000)
    parser.add_argument("--tile", type=int, default=4)
    parser.add_argument("--finetune-steps", type=int, default=200)
    parser.add_argument("--extra", action="append", default=[],
                        help="another VAE checkpoint to compare (repeatable)")  # fmt: skip
    args = parser.parse_args()
    torch.manual_seed(0)
    models: dict[str, PhysVAE] = {}
    for name in SHIPPED:
        try:
            models[f"VAE {name}"] = load_pretrained(name)
        except ValueError as err:
            print(f"VAE {name} unavailable:", err)
    for path in args.extra:
        models[f"VAE {Path(path).stem}"[:40]] = PhysVAE.load(path)
    for label, m in models.items():
        print(f"{label}: {m.meta.get('recipe', '?')} | {m.meta.get('objective', '?')}")
    pixel_models = {k: m for k, m in models.items() if not m.config.temporal}
    temporal_models = {k: m for k, m in models.items() if m.config.temporal}
    simulated(pixel_models, args.n)
    simulated_series(temporal_models, pixel_models, args.n_series)
    demo(models, args.finetune_steps)
    if args.finetune_steps:
        demo_safy(args.finetune_steps)
    defaults = (f"VAE {DEFAULT_PIXEL_MODEL}", f"VAE {DEFAULT_TEMPORAL_MODEL}")
    throughput({k: models[k] for k in defaults if k in models}, args.tile)


if __name__ == "__main__":
    main()
