"""S2 retrieval throughput per thread against ESA SNAP's biophysical networks, one run.

Both on the same 1 M pixels on one CPU thread, float32:
  (a) SNAP BV-NET (s2tbx 3_0 weights; ``../shared/peers/snap_bvnet.py``), its five
      networks (LAI, FAPAR, FCOVER, CAB, CW) batched into one 11 -> 25 -> 5 pass, the
      network output only (no thresholding or flags: the fastest SNAP can be);
  (b) ``InverseModel.predict`` of the shipped ``s2`` network: 8 variables, mean and
      standard deviation, NaN handling, as ``ds.physics.retrieve`` runs it.
Prints pixels/s and the ratio (b)/(a). Target (issue #18): >= 1.0x.

    python benchmarks/bench_retrieval_speed.py [--pixels 1000000] [--peers DIR]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # NumPy's BLAS on one thread too (before importing it)

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_real import SHARED, load_snap  # noqa: E402
from bench_sar_safy import best_time  # noqa: E402

from xr_physcube.inverse.pretrained import load_pretrained  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixels", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--peers", type=Path, default=SHARED / "peers")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    n = args.pixels
    bands = rng.uniform(0.01, 0.5, (n, 10))
    angles = rng.uniform([20.0, 0.0, 0.0], [60.0, 10.0, 180.0], (n, 3))  # tts, tto, psi
    ours_in = torch.as_tensor(np.column_stack([bands, angles]).astype(np.float32))
    net = load_pretrained("s2").eval()
    with torch.inference_mode():
        t_ours = best_time(lambda: net.predict(ours_in), args.repeat)
    print(f"torch {torch.__version__}, NumPy {np.__version__}, 1 thread, {n:,} pixels, float32")
    print(f"(b) xr_physcube s2 network, predict (8 variables, mean + std): "
          f"{n / t_ours:12,.0f} px/s")  # fmt: skip
    snap_module = load_snap(args.peers)
    if snap_module is None:
        return
    snap = snap_module.SnapBiophysical()
    cos = np.cos(np.deg2rad(angles))  # SNAP takes cos(tto), cos(tts), cos(psi)
    snap_in = np.column_stack([bands[:, 1:9], cos[:, 1], cos[:, 0], cos[:, 2]]).astype(np.float32)
    t_snap = best_time(lambda: snap.raw(snap_in), args.repeat)
    print(f"(a) SNAP BV-NET in NumPy (5 variables, network output only):     "
          f"{n / t_snap:12,.0f} px/s")  # fmt: skip
    ratio = t_snap / t_ours
    print(f"ratio (b)/(a) = {ratio:.2f}x   target >= 1.0x: {'met' if ratio >= 1.0 else 'MISSED'}")


if __name__ == "__main__":
    main()
