"""Inverse networks vs the SNAP BV-NET design on a held-out simulated test set.

For each shipped network (S2: 10 bands + angles; S1: VV, VH, theta, NDVI):

* simulates a test set with a seed different from the training seed (never seen in
  training);
* re-simulates the network's own training set (same n and seed, from its metadata) and
  trains the BV-NET baseline on it (one hidden layer of 5 tanh neurons per variable,
  Weiss & Baret 2016), with the same inputs and normalisation;
* prints RMSE and R² per variable for both, their ratio, and the fraction of truths
  inside the predicted mean ± 1σ (calibrated Gaussian: 0.683);
* times retrieval of 1 M pixels on CPU (pixels/s), ours and the baseline.

Run: ``python benchmarks/bench_inverse.py [--n-test 20000] [--n-train N] [--skip-s1]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from xr_physcube.inverse import load_pretrained
from xr_physcube.inverse.pretrained import network_spec
from xr_physcube.inverse.pretrained import training_data as simulate_for
from xr_physcube.inverse.train import (
    arrays,
    fit_bvnet,
    predict_bvnet,
)


def scores(pred: torch.Tensor, truth: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    err = (pred - truth).double()
    rmse = err.pow(2).mean(0).sqrt()
    r2 = 1.0 - err.pow(2).mean(0) / truth.double().var(0, unbiased=False)
    return rmse.numpy(), r2.numpy()


def throughput(fn, x: torch.Tensor, batch: int, repeats: int = 3) -> float:
    fn(x[:batch])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(x), batch):
            fn(x[i : i + batch])
        best = min(best, time.perf_counter() - start)
    return len(x) / best


def bench(name: str, n_test: int, n_train: int | None, seed_test: int, n_pixels: int) -> None:
    net = load_pretrained(name)
    spec = network_spec(name)
    meta = net.metadata
    train_seed, n_train = int(meta["seed"]), int(n_train or meta["n_samples"])
    if seed_test == train_seed:
        raise SystemExit("the test seed must differ from the training seed")
    print(f"\n=== {net.name}: {list(net.input_names)} -> {list(net.output_names)}")
    print(
        f"shipped net: hidden {list(net.hidden)}, trained on {meta['n_samples']} simulations "
        f"(seed {train_seed}), {meta.get('epochs_run')} epochs"
    )
    t0 = time.perf_counter()
    test = simulate_for(spec, n_test, seed_test, progress=False)
    print(f"test set: {n_test} simulations, seed {seed_test} ({time.perf_counter() - t0:.0f} s)")
    x_test, y_test = arrays(test, net.input_names), arrays(test, net.output_names)

    t0 = time.perf_counter()
    train = simulate_for(spec, n_train, train_seed, progress=False)
    x_train, y_train = arrays(train, net.input_names), arrays(train, net.output_names)
    del train
    t1 = time.perf_counter()
    baseline = fit_bvnet(net, x_train, y_train, seed=train_seed)
    print(
        f"BV-NET baseline: same {n_train} training simulations (seed {train_seed}), "
        f"simulated in {t1 - t0:.0f} s, trained in {time.perf_counter() - t1:.0f} s"
    )

    mean, std = net.predict(x_test)
    base = predict_bvnet(baseline, net, x_test)
    ours_rmse, ours_r2 = scores(mean, y_test)
    bv_rmse, bv_r2 = scores(base, y_test)
    inside = ((mean - y_test).abs() <= std).float().mean(0).numpy()
    header = (
        f"{'variable':<9}{'units':>9}{'RMSE ours':>12}{'RMSE BV-NET':>13}{'ratio':>7}"
        f"{'R2 ours':>9}{'R2 BV-NET':>11}{'in ±1σ':>8}  verdict"
    )
    print(header)
    for i, var in enumerate(net.output_names):
        units = net.output_attrs[var]["units"]
        better = ours_rmse[i] < bv_rmse[i]
        calibrated = 0.6 <= inside[i] <= 0.76
        verdict = ("beats" if better else "LOSES") + (", calibrated" if calibrated else ", MISCAL")
        print(
            f"{var:<9}{units:>9}{ours_rmse[i]:>12.4g}{bv_rmse[i]:>13.4g}"
            f"{ours_rmse[i] / bv_rmse[i]:>7.3f}{ours_r2[i]:>9.3f}{bv_r2[i]:>11.3f}"
            f"{inside[i]:>8.3f}  {verdict}"
        )
    wins = int((ours_rmse < bv_rmse).sum())
    cal = int(((inside >= 0.6) & (inside <= 0.76)).sum())
    print(f"ours beats BV-NET on {wins}/{len(ours_rmse)} variables; calibrated on {cal}")

    reps = -(-n_pixels // len(x_test))
    pixels = x_test.repeat(reps, 1)[:n_pixels].contiguous()
    ours_pps = throughput(net.predict, pixels, 65_536)
    bv_pps = throughput(lambda x: predict_bvnet(baseline, net, x), pixels, 65_536)
    print(
        f"throughput on {n_pixels:,} pixels, CPU, {torch.get_num_threads()} torch threads, "
        f"batches of 65,536: ours {ours_pps:,.0f} px/s (mean + std), "
        f"BV-NET {bv_pps:,.0f} px/s (mean only); ratio {ours_pps / bv_pps:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-test", type=int, default=20_000)
    parser.add_argument("--n-train", type=int, default=None, help="default: as shipped")
    parser.add_argument("--seed-test", type=int, default=12345)
    parser.add_argument("--pixels", type=int, default=1_000_000)
    parser.add_argument("--skip-s1", action="store_true")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name in ("s2",) if args.skip_s1 else ("s2", "s1"):
        try:
            load_pretrained(name)
        except FileNotFoundError as err:
            print(f"\n=== {name}: no shipped weights ({err})")
            continue
        bench(name, args.n_test, args.n_train, args.seed_test, args.pixels)


if __name__ == "__main__":
    main()
