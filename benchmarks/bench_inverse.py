"""Shipped inverse networks vs the BV-NET baseline on held-out simulations, plus throughput.

BV-NET (SNAP biophysical processor design: one hidden layer of 5 tanh neurons per
variable) is trained here on the *same* simulations as the shipped network (same
generator, seed and size, read from the weights' metadata); both are scored on a fresh
test set drawn with a seed never used in training. Printed per variable: RMSE and R² of
both, and the fraction of truths within ±1σ of our prediction (calibration; a Gaussian
gives 0.683, target 0.60–0.76). Then retrieval pixels/second on 1 M pixels on CPU.

    python benchmarks/bench_inverse.py [--n-test 20000] [--n-train N] [--networks s2 s1]
"""

from __future__ import annotations

import argparse
import time

import torch

from xr_physcube.inverse import load_pretrained
from xr_physcube.inverse.train import NETWORKS, arrays, fit_bvnet, simulate_for

TEST_SEED = 12345


def score(pred: torch.Tensor, truth: torch.Tensor) -> tuple[float, float]:
    mse = float((pred - truth).pow(2).mean())
    return mse**0.5, 1.0 - mse / float(truth.var())


def compare(name: str, n_test: int, n_train: int | None) -> None:
    net = load_pretrained(name)
    spec = NETWORKS[name]
    n_train = n_train or net.metadata["n_samples"]
    seed = net.metadata["seed"]
    print(
        f"\n== {name}: shipped net {net.hidden} trained on {net.metadata['n_samples']:,} "
        f"simulations (seed {seed}); BV-NET on {n_train:,} of the same; test {n_test:,} "
        f"(seed {TEST_SEED})"
    )
    train = simulate_for(spec, n_train, seed, progress=True)
    x_train, y_train = arrays(train, spec.inputs), arrays(train, spec.outputs)
    bvnet = fit_bvnet(net, x_train, y_train, seed=seed)
    test = simulate_for(spec, n_test, TEST_SEED, progress=True)
    x, y = arrays(test, spec.inputs), arrays(test, spec.outputs)
    mean, std = net.predict(x)
    with torch.no_grad():
        z = (net.features(x) - net.x_mean) / net.x_std
        base = bvnet(z) * net.y_std + net.y_mean
    print(
        f"{'variable':9s} {'RMSE ours':>11s} {'RMSE BV-NET':>12s} {'R2 ours':>8s} "
        f"{'R2 BV-NET':>9s} {'in +-1sd':>8s}  better?"
    )
    for i, var in enumerate(spec.outputs):
        r_ours, r2_ours = score(mean[:, i], y[:, i])
        r_base, r2_base = score(base[:, i], y[:, i])
        inside = float(((mean[:, i] - y[:, i]).abs() <= std[:, i]).float().mean())
        print(
            f"{var:9s} {r_ours:11.4g} {r_base:12.4g} {r2_ours:8.3f} {r2_base:9.3f} "
            f"{inside:8.2f}  {'yes' if r_ours < r_base else 'NO'}"
        )


def throughput(n: int = 1_000_000) -> None:
    net = load_pretrained("s2")
    x = torch.rand(n, len(net.input_names)) * 0.4
    x[:, -3:] = torch.rand(n, 3) * 60.0
    net.predict(x[:1000])
    start = time.perf_counter()
    for i in range(0, n, 262_144):
        net.predict(x[i : i + 262_144])
    elapsed = time.perf_counter() - start
    print(
        f"\nS2 retrieval on {n:,} pixels, CPU, {torch.get_num_threads()} threads: "
        f"{n / elapsed:,.0f} pixels/s (target >= 1,000,000)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-test", type=int, default=20_000)
    parser.add_argument("--n-train", type=int, default=None, help="BV-NET training size")
    parser.add_argument("--networks", nargs="+", default=["s2", "s1"])
    args = parser.parse_args()
    for name in args.networks:
        compare(name, args.n_test, args.n_train)
    throughput()


if __name__ == "__main__":
    main()
