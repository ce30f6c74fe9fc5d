"""``benchmarks/bench_noise.py`` at a small size: independent PROSAIL + independent band
noise, SNAP against the default retrieval and the VAE."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_noise.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_noise", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_noise_scores_every_method(capsys):
    bench = _bench()
    results = bench.main(["--n", "150", "--seed", "3"])
    printed = capsys.readouterr().out
    assert {"physics.retrieve (default)", "vae.encode pixel_hybrid"} <= set(results)
    for name, r in results.items():
        assert all(math.isfinite(v) for v in r.values()), name
        assert r["rmse_noisy"] > 0 and f"| {name} |" in printed
    if (bench.SHARED / "peers" / "snap_bvnet.py").exists():
        assert "SNAP BV-NET (peer)" in results and "x |" in printed


def test_noise_is_independent_per_band_and_of_the_given_size():
    import numpy as np

    bench = _bench()
    refl = np.full((20_000, 10), 0.2)
    noisy = bench.with_noise(refl, 0.01, 0.01, seed=0)
    res = noisy - refl
    assert abs(res.std() - math.hypot(0.01 * 0.2, 0.01)) < 2e-4
    assert abs(np.corrcoef(res[:, 0], res[:, 5])[0, 1]) < 0.03
