"""S2 LAI under band noise the networks were not trained with, against SNAP, in one run.

Test set: an independent PROSAIL implementation (PyPI ``prosail`` 2.0.5, PROSPECT-D +
4SAIL, Campbell leaf angles) run on parameters and geometry drawn from the S2 Toolbox
ATBD-like priors (:data:`xr_physcube.inverse.priors.S2_PRIORS`, ``S2_GEOMETRY``),
convolved with the S2A spectral responses; then, per band and sample independently,
``r' = r (1 + m ε) + a ε'`` with ``m`` = 1 % and ``a`` = 0.01 (``--mult``, ``--add``).
Methods: SNAP BV-NET (``../shared/peers/snap_bvnet.py``, S2A network), the default
``ds.physics.retrieve(["lai"])`` and ``ds.vae.encode(model="pixel_hybrid")``, on a 1-D
cube of the samples. Printed: LAI RMSE and R² without and with the noise, and each
method's RMSE as a ratio of SNAP's on the same samples (< 1: better than SNAP).

    python benchmarks/bench_noise.py [--n 3000] [--seed 7] [--mult 0.01] [--add 0.01]
                                     [--peers DIR]

The SNAP rows are skipped (with a message) when ``--peers`` (default ``../shared/peers``)
does not hold ``snap_bvnet.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr

import xr_physcube  # noqa: F401  (registers the accessors)
from xr_physcube.inverse.priors import S2_GEOMETRY, S2_PRIORS
from xr_physcube.sensors.sentinel2 import BANDS, srf_weights

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_real import SHARED, load_snap  # noqa: E402  (one SNAP loader for the benchmarks)


def independent_prosail(n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Parameters and S2A band reflectances (n, 10) from PyPI ``prosail``."""
    import prosail

    rng = np.random.default_rng(seed)
    p = S2_PRIORS.sample(n, rng)
    p.update(S2_GEOMETRY.sample(n, rng))
    w = srf_weights("S2A", BANDS, torch.float64, None, 1).numpy()  # (2101, 10), unit sums
    refl = np.empty((n, len(BANDS)))
    for i in range(n):
        spectrum = prosail.run_prosail(
            n=p["N"][i], cab=p["cab"][i], car=p["car"][i], cbrown=p["cbrown"][i],
            cw=p["cw"][i], cm=p["cm"][i], lai=p["lai"][i], lidfa=p["ala"][i],
            hspot=p["hspot"][i], tts=p["tts"][i], tto=p["tto"][i], psi=p["psi"][i],
            psoil=p["psoil"][i], rsoil=p["rsoil"][i], typelidf=2, prospect_version="D",
            ant=0.0,
        )  # fmt: skip
        refl[i] = spectrum @ w
    return p, refl


def with_noise(refl: np.ndarray, mult: float, add: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return refl * (1 + mult * rng.standard_normal(refl.shape)) + add * rng.standard_normal(
        refl.shape
    )


def cube(p: dict[str, np.ndarray], refl: np.ndarray) -> xr.Dataset:
    data = {b: ("x", refl[:, i].astype(np.float32)) for i, b in enumerate(BANDS)}
    data.update({a: ("x", p[a].astype(np.float32)) for a in ("tts", "tto", "psi")})
    return xr.Dataset(data)


def methods(snap) -> dict:
    out = {}
    if snap is not None:

        def snap_lai(p, refl):
            bands = {b: refl[:, BANDS.index(b)] for b in snap.BANDS}
            x = snap.snap_inputs(bands, p["tts"], p["tto"], p["psi"])
            return snap.SnapNet.load("LAI", "S2A", root=snap.AUXDATA)(x)[0]

        out["SNAP BV-NET (peer)"] = snap_lai
    out["physics.retrieve (default)"] = lambda p, r: (
        cube(p, r).physics.retrieve(["lai"], std=False).lai.values
    )
    out["vae.encode pixel_hybrid"] = lambda p, r: (
        cube(p, r).vae.encode(model="pixel_hybrid").lai.values
    )
    return out


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--mult", type=float, default=0.01)
    parser.add_argument("--add", type=float, default=0.01)
    parser.add_argument("--peers", type=Path, default=SHARED / "peers")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    p, clean = independent_prosail(args.n, args.seed)
    noisy = with_noise(clean, args.mult, args.add, args.seed + 1)
    print(
        f"{args.n} independent PROSAIL (prosail 2.0.5) samples, S2A SRF; noise: "
        f"{args.mult:.0%} multiplicative + {args.add:g} additive, independent per band"
    )
    results: dict[str, dict[str, float]] = {}
    for name, fn in methods(load_snap(args.peers)).items():
        row = {}
        for label, refl in (("clean", clean), ("noisy", noisy)):
            err = np.asarray(fn(p, refl), float) - p["lai"]
            row[f"rmse_{label}"] = float(np.sqrt(np.nanmean(err**2)))
            row[f"r2_{label}"] = float(1 - np.nanmean(err**2) / np.var(p["lai"]))
        results[name] = row
    peer = results.get("SNAP BV-NET (peer)")
    print("| method | LAI RMSE clean | R² clean | LAI RMSE noisy | R² noisy | noisy / SNAP |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        ratio = f"{r['rmse_noisy'] / peer['rmse_noisy']:.2f}x" if peer else "–"
        print(
            f"| {name} | {r['rmse_clean']:.3f} | {r['r2_clean']:.2f} | {r['rmse_noisy']:.3f} "
            f"| {r['r2_noisy']:.2f} | {ratio} |"
        )
    print(f"[{time.perf_counter() - start:.1f} s]")
    return results


if __name__ == "__main__":
    main()
