"""Command line: ``xr-physcube demo`` (the main job on the embedded cube) and retraining.

xr-physcube demo [--out xr_physcube_demo] [--workers 0]
xr-physcube train-inverse s2 [--samples 300000] [--seed 0] [--out ./s2.pt | --replace-shipped]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from xr_physcube.performance import keep_freed_memory

# The demo's store is Zarr v2 with consolidated metadata: every Zarr reader (zarr-python 2
# and 3, xarray's default ``open_zarr``, GDAL) opens it in one metadata read and nothing
# warns. Consolidated metadata is not part of the Zarr v3 specification (zarr-python 3 warns
# when writing it), and a v3 store without it makes ``xr.open_zarr`` warn when reading.
ZARR_FORMAT = 2


def _decimals(value: float) -> int:
    """Decimals for printing ``value``: 3, or more so that at least 2 significant digits show."""
    if not math.isfinite(value) or value <= 0.0:
        return 3
    return max(3, 1 - math.floor(math.log10(value)))


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
            result.to_zarr(store, mode="w", zarr_format=ZARR_FORMAT)
    else:
        with ProgressBar():
            result.to_zarr(store, mode="w", zarr_format=ZARR_FORMAT)
    elapsed = time.perf_counter() - start
    result = xr.open_zarr(store).load()
    n_pix = int(np.prod([cube.sizes[d] for d in ("time", "y", "x")]))
    print(f"done in {elapsed:.1f} s ({n_pix / elapsed:,.0f} pixel-dates/s)")

    truth = scene.truth
    print("RMSE against the simulation truth (valid pixels):")
    truths = {
        "lai": truth.lai,
        "ccc": truth.lai * truth.cab,
        "cwc": truth.lai * truth.cw,
        "mv": truth.mv,
    }
    for name, true in truths.items():
        err = (result[name] - true).values
        rmse = float(np.sqrt(np.nanmean(err**2)))
        cover = float(np.isfinite(result[name].values).mean())
        print(
            f"  {name:4s} RMSE {rmse:8.{_decimals(rmse)}f} {result[name].attrs.get('units', '')}"
            f"  (valid {cover:.0%})"
        )
    png = plot_retrieval(result, truth, cube, out / "lai_map.png")
    print(f"figure: {png}")
    return 0


def train_out_path(args: argparse.Namespace) -> Path:
    """Where ``train-inverse`` writes: ``--out``, the shipped file with ``--replace-shipped``,
    else ``./<name>.pt`` in the current directory (the shipped weights stay untouched)."""
    if args.replace_shipped:
        from xr_physcube.inverse.train import WEIGHTS_DIR, network_spec

        return WEIGHTS_DIR / f"{network_spec(args.name).name}.pt"
    return Path(args.out) if args.out else Path.cwd() / f"{args.name}.pt"


def _train_inverse(args: argparse.Namespace) -> int:
    from xr_physcube.inverse.train import train_pretrained

    out = train_out_path(args)
    print(f"training the {args.name} network -> {out}")
    path = train_pretrained(args.name, n_samples=args.samples, seed=args.seed, out_path=out)
    print(f"saved {Path(path).resolve()}")
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
    where = train.add_mutually_exclusive_group()
    where.add_argument(
        "--out", default=None, help="weights file to write (default: ./<name>.pt, e.g. ./s2.pt)"
    )
    where.add_argument(
        "--replace-shipped",
        action="store_true",
        help="overwrite the weights shipped in the installed package (used by "
        "physics.retrieve(model='pretrained-<name>'))",
    )
    train.set_defaults(func=_train_inverse)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    keep_freed_memory()  # a batch process: reuse freed temporaries (see xr_physcube.performance)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
