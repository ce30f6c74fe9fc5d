"""The GPU path, measured: CUDA throughput of PROSAIL (full spectra and the S2 band mode),
the S2 retrieval network and the VAE encoder, each with and without the host<->device
transfers, next to the same work on this machine's CPU in the same run.

One command on a machine with an NVIDIA GPU (nothing to configure):

    python benchmarks/bench_gpu.py [--n 200000] [--pixels 2000000]

Without CUDA it says so and measures nothing (exit code 0), so CI can run it.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from xr_physcube.inverse.pretrained import load_pretrained
from xr_physcube.models.prosail import PROSAIL_PARAMETERS, Prosail, ProsailParameters
from xr_physcube.sensors.sentinel2 import BAND_MODE_STEP, Sentinel2Bands
from xr_physcube.vae.pretrained import load_pretrained as load_vae


def _timed(fn, device: torch.device, repeat: int = 3) -> float:
    """Best wall time of ``fn()`` over ``repeat`` runs after a warm-up (synchronised)."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


def prosail_inputs(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    specs = PROSAIL_PARAMETERS.items()
    return {k: rng.uniform(s.lower, s.upper, n).astype(np.float32) for k, s in specs}


def bench_prosail(n: int, device: torch.device) -> list[tuple[str, float, float]]:
    """(label, sets/s on device, sets/s with transfers) for full spectra and band mode."""
    host = prosail_inputs(n)
    resident = ProsailParameters(**{k: torch.as_tensor(v, device=device) for k, v in host.items()})
    rows = []
    for label, model in (
        ("PROSAIL full spectra", Prosail(validate=False, chunk_size=65_536)),
        (
            "PROSAIL band mode (BAND_MODE_STEP)",
            Prosail(
                sensor=Sentinel2Bands(band_step=BAND_MODE_STEP), validate=False, chunk_size=65_536
            ),
        ),  # fmt: skip
    ):
        model = model.to(device)

        def on_device(model=model):
            with torch.no_grad():
                return model(resident).reflectance

        def with_transfers(model=model):
            params = {k: torch.as_tensor(v).to(device) for k, v in host.items()}
            with torch.no_grad():
                model(ProsailParameters(**params)).reflectance.cpu()

        rows.append((label, n / _timed(on_device, device), n / _timed(with_transfers, device)))
    return rows


def bench_networks(pixels: int, device: torch.device) -> list[tuple[str, float, float]]:
    """(label, pixels/s on device, with transfers) of the S2 network and the VAE encoder."""
    rng = np.random.default_rng(1)
    rows = []
    net = load_pretrained("s2").to(device).eval()
    x = np.column_stack(
        [rng.uniform(0.01, 0.5, (pixels, 10)), rng.uniform([20, 0, 0], [60, 10, 180], (pixels, 3))]
    ).astype(np.float32)
    resident = torch.as_tensor(x, device=device)

    def predict(t=resident):
        with torch.no_grad():
            net.predict(t)

    def predict_host():
        with torch.no_grad():
            mean, std = net.predict(torch.as_tensor(x).to(device))
            mean.cpu(), std.cpu()

    rows.append(("S2 retrieval network", pixels / _timed(predict, device),
                 pixels / _timed(predict_host, device)))  # fmt: skip
    vae = load_vae("pixel_hybrid").to(device).eval()
    width = vae.encoder.net[0].in_features if hasattr(vae.encoder, "net") else None
    obs = torch.as_tensor(rng.uniform(0.01, 0.5, (pixels, width or 16)).astype(np.float32))

    obs_on_device = obs.to(device)

    def encode():
        with torch.no_grad():
            return vae.encoder(obs_on_device)

    def encode_host():
        with torch.no_grad():
            [o.cpu() for o in vae.encoder(obs.to(device)) if torch.is_tensor(o)]

    rows.append(("VAE pixel encoder", pixels / _timed(encode, device),
                 pixels / _timed(encode_host, device)))  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="PROSAIL parameter sets")
    parser.add_argument("--pixels", type=int, default=2_000_000, help="network rows")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing measured (run this on a machine with an NVIDIA GPU)")
        return
    gpu, cpu = torch.device("cuda"), torch.device("cpu")
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(gpu)}, "
          f"CPU {torch.get_num_threads()} threads")  # fmt: skip
    n_cpu, px_cpu = max(1, args.n // 20), max(1, args.pixels // 10)
    rows_gpu = bench_prosail(args.n, gpu) + bench_networks(args.pixels, gpu)
    rows_cpu = bench_prosail(n_cpu, cpu) + bench_networks(px_cpu, cpu)
    print(f"{'work':34s} {'GPU /s':>14s} {'GPU+transfers /s':>17s} {'CPU /s':>12s} {'ratio':>7s}")
    for (label, on_gpu, moved), (_, on_cpu, _) in zip(rows_gpu, rows_cpu, strict=True):
        print(f"{label:34s} {on_gpu:14,.0f} {moved:17,.0f} {on_cpu:12,.0f} {moved / on_cpu:6.1f}x")


if __name__ == "__main__":
    main()
