"""PROSAIL throughput: the ``prosail`` reference package vs xr_physcube, same machine, one run.

Prints spectra/second for
  (a) ``prosail.run_prosail`` called once per parameter set (the reference),
  (b) our batched PROSAIL on 10,000 parameter sets, full 400–2500 nm spectra,
  (c) the same reduced to the 10 Sentinel-2 bands,
and the ratios (b)/(a), (c)/(a). Issue target: (b) >= 50x (a) on CPU.

    python benchmarks/bench_prosail.py [--n 10000] [--n-ref 200] [--dtype float32]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from xr_physcube.models.prosail import PROSAIL_PARAMETERS, Prosail, ProsailParameters
from xr_physcube.sensors.sentinel2 import Sentinel2Bands


def random_parameters(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {k: rng.uniform(s.lower, s.upper, n) for k, s in PROSAIL_PARAMETERS.items()}
    out["psi"] = out["psi"] / 2.0  # the reference does not fold psi > 180
    return out


def time_reference(p: dict[str, np.ndarray], n: int) -> float:
    import prosail

    def one(i: int):
        return prosail.run_prosail(
            p["N"][i],
            p["cab"][i],
            p["car"][i],
            p["cbrown"][i],
            p["cw"][i],
            p["cm"][i],
            p["lai"][i],
            p["ala"][i],
            p["hspot"][i],
            p["tts"][i],
            p["tto"][i],
            p["psi"][i],
            ant=p["anth"][i],
            prospect_version="D",
            typelidf=2,
            rsoil=p["rsoil"][i],
            psoil=p["psoil"][i],
        )

    one(0)  # numba JIT warm-up
    start = time.perf_counter()
    for i in range(n):
        one(i)
    return n / (time.perf_counter() - start)


def time_ours(model: Prosail, p: dict[str, np.ndarray], dtype: torch.dtype, repeat: int) -> float:
    params = ProsailParameters(**{k: torch.as_tensor(v, dtype=dtype) for k, v in p.items()})
    with torch.no_grad():
        model.run(params, validate=True)  # warm-up
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            model.run(params, validate=True)
            best = min(best, time.perf_counter() - start)
    return len(p["lai"]) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="parameter sets for ours")
    parser.add_argument("--n-ref", type=int, default=200, help="parameter sets for the reference")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    p = random_parameters(args.n)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, dtype {args.dtype}")
    ref = time_reference(p, args.n_ref)
    full = time_ours(Prosail(), p, dtype, args.repeat)
    bands = time_ours(Prosail(sensor=Sentinel2Bands()), p, dtype, args.repeat)
    print(f"(a) prosail.run_prosail, per set ({args.n_ref} sets): {ref:12,.0f} spectra/s")
    print(
        f"(b) xr_physcube batched, full spectra ({args.n} sets): {full:12,.0f} spectra/s"
        f"   ratio (b)/(a) = {full / ref:6.1f}x"
    )
    print(
        f"(c) xr_physcube batched, S2 bands ({args.n} sets):     {bands:12,.0f} spectra/s"
        f"   ratio (c)/(a) = {bands / ref:6.1f}x"
    )
    print("target: (b)/(a) >= 50x")


if __name__ == "__main__":
    main()
