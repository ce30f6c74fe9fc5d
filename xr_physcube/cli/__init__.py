"""xr-physcube: the demo, tile jobs (retrieve, datacube, calibrate-safy) and retraining.

``xr-physcube demo`` runs the main job on the embedded cube; ``retrieve``, ``datacube``
and ``calibrate-safy`` are batch jobs on a tile (from a STAC API, or a Zarr of LAI),
resumable.

xr-physcube demo [--out xr_physcube_demo] [--workers 0]
xr-physcube retrieve URL --bbox W S E N --time START/END --out tile.zarr
    [--method inverse | vae] [--bounds MINX MINY MAXX MAXY --epsg N] [--no-s1]
    [--workers N | --scheduler tcp://host:8786] [--overwrite | --resume] [--timeout S]
xr-physcube datacube URL --bbox W S E N --time START/END --out cube.zarr
    [--freq 5D] [--start DATE --end DATE] [--no-s1 | --no-s2] [--model FILE]
    [tile options of retrieve]
xr-physcube calibrate-safy LAI.zarr --weather W.csv|W.zarr --out maps.zarr
    [--crop maize | winter_wheat] [--sowing DATE] [--trajectory] [--overwrite | --resume]
    [--workers N | --scheduler tcp://host:8786]
xr-physcube train-inverse s2|s1|s1_lai [--samples N] [--seed 0] [--out ./s2.pt | --replace-shipped]
xr-physcube train-vae pixel_hybrid|temporal_hybrid|... [--seed 0] [--steps N]
    [--out ./vae_<name>.pt | --replace-shipped]

User errors (a :class:`~xr_physcube.exceptions.PhyscubeError`, a failing STAC API, an
existing ``--out``) end with one line on stderr and exit code 1; anything else is a bug
and raises with its traceback. No command replaces what is not its own previous output
(:mod:`xr_physcube.cli.outputs`: the demo's marked stores, a checkpoint of the kind a
training writes).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from xr_physcube.cli.calibrate_safy import add_calibrate_safy_parser
from xr_physcube.cli.common import ZARR_FORMAT, non_negative_int, positive_int
from xr_physcube.cli.datacube import add_datacube_parser
from xr_physcube.cli.outputs import MARKER, check_train_out, prepare_demo_out
from xr_physcube.cli.retrieve import (
    S2_PRODUCTS,
    add_retrieve_parser,
    bbox_problem,
    check_out,
    variables_problem,
)
from xr_physcube.performance import keep_freed_memory

__all__ = ["S2_PRODUCTS", "ZARR_FORMAT", "build_parser", "check_out", "main", "train_out_path"]


def _decimals(value: float) -> int:
    """Decimals for printing ``value``: 3, or more so that at least 2 significant digits show."""
    if not math.isfinite(value) or value <= 0.0:
        return 3
    return max(3, 1 - math.floor(math.log10(value)))


def _demo(args: argparse.Namespace) -> int:
    from xr_physcube._extras import require

    require("matplotlib", "xr-physcube demo's figures").use("Agg")
    import numpy as np
    import xarray as xr

    import xr_physcube.accessors  # noqa: F401  (registers .physics)
    from xr_physcube.io.demo import demo_scene
    from xr_physcube.io.store import open_store, write_store
    from xr_physcube.plotting import plot_retrieval

    out = Path(args.out)
    prepare_demo_out(out)  # refuses to replace anything but its own previous output
    print(f"building the embedded demo cube ({args.size}x{args.size} px, seed {args.seed}) ...")
    scene = demo_scene(size=args.size, seed=args.seed, chunks=args.chunk)
    cube = scene.cube
    print(cube)
    retrieved = cube.physics.retrieve(["lai", "fcover", "ccc", "cwc"], model="pretrained-s2")
    s1 = cube.physics.retrieve(["mv"], model="pretrained-s1")
    result = xr.merge([retrieved, s1]).assign_attrs({MARKER: "xr-physcube demo"})
    store = out / "retrieval.zarr"
    print(f"retrieving (lazy graph of {len(result.__dask_graph__())} tasks) -> {store}")
    start = time.perf_counter()
    if args.workers:
        from xr_physcube._extras import require

        require("distributed", "--workers")
        from dask.distributed import Client, LocalCluster

        with (
            LocalCluster(n_workers=args.workers, threads_per_worker=1) as cluster,
            Client(cluster) as client,
        ):
            write_store(result, store, client=client)
    else:
        write_store(result, store)
    elapsed = time.perf_counter() - start
    result = open_store(store).load()
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
    return _demo_datacube(args, out)


def _demo_datacube(args: argparse.Namespace, out: Path) -> int:
    """The data cube on the demo season: S2 and S1 on their own dates -> a regular
    5-day grid, scored against the daily truth."""
    import numpy as np

    from xr_physcube.io.demo_season import demo_season
    from xr_physcube.io.store import open_store, write_store
    from xr_physcube.plotting import plot_datacube

    print(f"building the demo season ({args.size}x{args.size} px) ...")
    season = demo_season(size=args.size, seed=args.seed, chunks=args.chunk)
    lost = float(season.s2.B4.isnull().mean())
    print(
        f"  S2: {season.s2.sizes['time']} dates ({lost:.0%} of pixel-dates cloudy), "
        f"S1: {season.s1.sizes['time']} dates on their own days"
    )
    cube = season.s2.vae.datacube(s1=season.s1, freq="5D")
    cube = cube.assign_attrs({MARKER: "xr-physcube demo"})
    store = out / "datacube.zarr"
    print(f"data cube on a regular 5-day grid ({cube.sizes['time']} dates) -> {store}")
    start = time.perf_counter()
    write_store(cube, store)
    elapsed = time.perf_counter() - start
    cube = open_store(store).load()
    n = cube.sizes["time"] * cube.sizes["y"] * cube.sizes["x"]
    print(f"done in {elapsed:.1f} s ({n / elapsed:,.0f} grid pixel-dates/s)")
    truth = season.truth.sel(time=cube.time)
    print("RMSE on the grid against the daily truth:")
    for name in ("lai", "cab", "mv"):
        rmse = float(np.sqrt(np.nanmean(((cube[name] - truth[name]) ** 2).values)))
        print(f"  {name:4s} RMSE {rmse:8.{_decimals(rmse)}f} {cube[name].attrs.get('units', '')}")
    png = plot_datacube(cube, season.s2, season.s1, out / "datacube.png", truth=season.truth)
    print(f"figure: {png}")
    return 0


def train_out_path(args: argparse.Namespace) -> Path:
    """Where ``train-inverse``/``train-vae`` write: ``--out``, the shipped file with
    ``--replace-shipped``, else ``./<file name of the shipped weights>`` in the current
    directory (the shipped weights stay untouched)."""
    if args.command == "train-vae":
        from xr_physcube.vae.pretrained import WEIGHTS_DIR

        shipped = WEIGHTS_DIR / f"vae_{args.name}.pt"
    else:
        from xr_physcube.inverse.pretrained import WEIGHTS_DIR, network_spec

        shipped = WEIGHTS_DIR / f"{network_spec(args.name).name}.pt"
    if args.replace_shipped:
        return shipped
    return Path(args.out) if args.out else Path.cwd() / shipped.name


def _train_inverse(args: argparse.Namespace) -> int:
    from xr_physcube.inverse.pretrained import train_pretrained

    out = train_out_path(args)
    check_train_out(out, "InverseModel")
    print(f"training the {args.name} network -> {out}")
    path = train_pretrained(args.name, n_samples=args.samples, seed=args.seed, out_path=out)
    print(f"saved {Path(path).resolve()}")
    return 0


def _train_vae(args: argparse.Namespace) -> int:
    from xr_physcube.vae.pretrained import pretrain

    out = train_out_path(args)
    check_train_out(out, "PhysVAE")
    print(f"pre-training the {args.name} VAE -> {out}")
    model = pretrain(
        args.name,
        out,
        seed=args.seed,
        supervised_weight=args.supervised_weight,
        steps=args.steps,
        n_sim=args.samples,
        encoder_steps=args.encoder_steps,
    )
    print(model.meta)
    print(f"saved {out.resolve()}")
    return 0


def _add_train_parsers(sub) -> None:
    """``train-inverse`` and ``train-vae``, their names from the registries."""
    from xr_physcube.inverse.pretrained import NETWORKS
    from xr_physcube.vae.pretrained import RECIPES

    train = sub.add_parser("train-inverse", help="retrain a shipped inverse network")
    train.add_argument("name", choices=sorted(NETWORKS))
    train.add_argument(
        "--samples", type=positive_int, default=None, help="simulations (default: shipped)"
    )
    train.set_defaults(func=_train_inverse)
    vae = sub.add_parser("train-vae", help="rebuild a shipped VAE from its recipe")
    vae.add_argument("name", choices=sorted(RECIPES))
    vae.add_argument(
        "--samples", type=positive_int, default=None, help="simulations (default: recipe)"
    )
    vae.add_argument("--steps", type=positive_int, default=None, help="ELBO steps")
    vae.add_argument("--encoder-steps", type=non_negative_int, default=None)
    vae.add_argument("--supervised-weight", type=float, default=None)
    vae.set_defaults(func=_train_vae)
    for parser, shipped in ((train, "<name>.pt, e.g. ./s2.pt"), (vae, "vae_<name>.pt")):
        parser.add_argument("--seed", type=int, default=0)
        where = parser.add_mutually_exclusive_group()
        where.add_argument(
            "--out", default=None, help=f"weights file to write (default: ./{shipped})"
        )
        where.add_argument(
            "--replace-shipped",
            action="store_true",
            help="overwrite the weights shipped in the installed package (what the "
            "accessors load by default)",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xr-physcube", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="retrieve LAI/CCC/CWC/soil moisture on the embedded cube, then the data cube"
    )
    demo.add_argument("--out", default="xr_physcube_demo", help="output folder")
    demo.add_argument("--size", type=positive_int, default=64, help="pixels per side (≥ 2)")
    demo.add_argument("--chunk", type=positive_int, default=32, help="dask chunk size (pixels)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--workers",
        type=non_negative_int,
        default=0,
        help="run on a dask LocalCluster with N workers",
    )
    demo.set_defaults(func=_demo)
    add_retrieve_parser(sub)
    add_datacube_parser(sub)
    add_calibrate_safy_parser(sub)
    _add_train_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("retrieve", "datacube") and (problem := bbox_problem(args.bbox)):
        parser.error(f"argument --bbox: {problem}")
    if args.command == "retrieve" and (problem := variables_problem(args.variables, args.method)):
        parser.error(f"argument --variables: {problem}")
    keep_freed_memory()  # a batch process: reuse freed temporaries (see xr_physcube.performance)
    return _report_user_errors(args)


def _report_user_errors(args: argparse.Namespace) -> int:
    """Run the command; a :class:`PhyscubeError`, a STAC API error or an existing output
    ends with one line on stderr and exit code 1. Anything else raises: a bug shows its
    traceback."""
    from xr_physcube.exceptions import PhyscubeError

    try:
        from pystac_client.exceptions import APIError
    except ImportError:  # no stac extra: no STAC API error can happen

        class APIError(Exception):  # noqa: N818  (pystac-client's name)
            pass

    try:
        return args.func(args)
    except (PhyscubeError, APIError, FileExistsError) as err:
        where = f"STAC API {args.url}: " if isinstance(err, APIError) else ""
        print(f"xr-physcube {args.command}: error: {where}{err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
