"""Command line: ``xr-physcube demo`` (the main job on the embedded cube) and retraining.

xr-physcube demo [--out xr_physcube_demo] [--workers 0]
xr-physcube train-inverse s2 [--samples 300000] [--seed 0] [--out weights.pt]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from xr_physcube.performance import keep_freed_memory


def _demo(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    import xarray as xr
    from dask.diagnostics import ProgressBar

    import xr_physcube  # noqa: F401  (registers .physics)
    from xr_physcube.io.demo import demo_scene
    from xr_physcube.plotting import plot_retrieval

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"building the embedded demo cube ({args.size}x{args.size} px, seed {args.seed}) ...")
    scene = demo_scene(size=args.size, seed=args.seed, chunks=args.chunk)
    cube = scene.cube
    print(cube)
    retrieved = cube.physics.retrieve(["lai", "fcover", "ccc", "cwc"], model="pretrained-s2")
    s1 = cube.physics.retrieve(["mv"], model="pretrained-s1")
    result = xr.merge([retrieved, s1])
    store = out / "retrieval.zarr"
    print(f"retrieving (lazy graph of {len(result.__dask_graph__())} tasks) -> {store}")
    start = time.perf_counter()
    if args.workers:
        from dask.distributed import Client, LocalCluster

        with LocalCluster(n_workers=args.workers, threads_per_worker=1) as cluster, Client(cluster):
            result.to_zarr(store, mode="w")
    else:
        with ProgressBar():
            result.to_zarr(store, mode="w")
    elapsed = time.perf_counter() - start
    result = xr.open_zarr(store).load()
    n_pix = int(np.prod([cube.sizes[d] for d in ("time", "y", "x")]))
    print(f"done in {elapsed:.1f} s ({n_pix / elapsed:,.0f} pixel-dates/s)")

    truth = scene.truth
    print("RMSE against the simulation truth (valid pixels):")
    for name, true in (("lai", truth.lai), ("ccc", truth.lai * truth.cab), ("mv", truth.mv)):
        err = (result[name] - true).values
        rmse = float(np.sqrt(np.nanmean(err**2)))
        cover = float(np.isfinite(result[name].values).mean())
        print(
            f"  {name:4s} RMSE {rmse:8.3f} {result[name].attrs.get('units', '')}"
            f"  (valid {cover:.0%})"
        )
    png = plot_retrieval(result, truth, cube, out / "lai_map.png")
    print(f"figure: {png}")
    return 0


def _train_inverse(args: argparse.Namespace) -> int:
    from xr_physcube.inverse.train import train_pretrained

    path = train_pretrained(args.name, n_samples=args.samples, seed=args.seed, out_path=args.out)
    print(f"saved {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xr-physcube", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="retrieve LAI/CCC/CWC/soil moisture on the embedded cube")
    demo.add_argument("--out", default="xr_physcube_demo", help="output folder")
    demo.add_argument("--size", type=int, default=64, help="pixels per side")
    demo.add_argument("--chunk", type=int, default=32, help="dask chunk size (pixels)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--workers", type=int, default=0, help="run on a dask LocalCluster with N workers"
    )
    demo.set_defaults(func=_demo)
    train = sub.add_parser("train-inverse", help="retrain a shipped inverse network")
    train.add_argument("name", choices=["s2", "s1"])
    train.add_argument("--samples", type=int, default=None, help="simulations (default: shipped)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", default=None, help="weights file (default: the shipped one)")
    train.set_defaults(func=_train_inverse)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    keep_freed_memory()  # a batch process: reuse freed temporaries (see xr_physcube.performance)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
