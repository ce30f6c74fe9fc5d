"""Command line: ``xr-physcube demo`` (the main job on the embedded cube), ``retrieve``
(a batch job on a tile from a STAC API) and retraining.

xr-physcube demo [--out xr_physcube_demo] [--workers 0]
xr-physcube retrieve URL --bbox W S E N --time START/END --out tile.zarr
    [--method inverse | vae] [--bounds MINX MINY MAXX MAXY --epsg N] [--no-s1]
    [--workers N | --scheduler tcp://host:8786] [--overwrite] [--timeout S]
xr-physcube train-inverse s2|s1|s1_lai [--samples N] [--seed 0] [--out ./s2.pt | --replace-shipped]
xr-physcube train-vae pixel_hybrid|temporal_hybrid|... [--seed 0] [--steps N]
    [--out ./vae_<name>.pt | --replace-shipped]

User errors (a :class:`~xr_physcube.exceptions.PhyscubeError`, a failing STAC API, an
existing ``--out``) end with one line on stderr and exit code 1; anything else is a bug
and raises with its traceback.
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

    import xr_physcube.accessors  # noqa: F401  (registers .physics)
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


S2_PRODUCTS = ("lai", "fcover", "fapar", "ccc", "cwc")
"""What ``xr-physcube retrieve --method inverse`` computes from Sentinel-2 by default."""


def _load_tile(args: argparse.Namespace):
    """The S2 (+ S1) cube of the job, lazy."""
    from xr_physcube.io.stac import load_cube, load_s2

    s2_kwargs = dict(
        bounds=args.bounds,
        epsg=args.epsg,
        resolution=args.resolution,
        chunks=args.chunk,
        max_cloud_cover=args.max_cloud_cover,
        sign=args.sign,
    )
    if args.timeout is not None:
        s2_kwargs["timeout"] = args.timeout
    if args.no_s1:
        return load_s2(args.url, args.bbox, args.time, collection=args.s2_collection, **s2_kwargs)
    return load_cube(
        args.url,
        args.bbox,
        args.time,
        s2_collection=args.s2_collection,
        s1_collection=args.s1_collection,
        **s2_kwargs,
    )


def _retrieval(cube, args: argparse.Namespace):
    """The lazy products of the job: inverse networks, or the VAE's posterior."""
    import xarray as xr

    if args.method == "vae":
        return cube.vae.encode(args.vae_model)
    variables = list(args.variables or S2_PRODUCTS)
    products = [cube.physics.retrieve(variables, model="pretrained-s2")]
    if not args.no_s1:
        products.append(cube.physics.retrieve(["mv"], model="pretrained-s1"))
    return xr.merge(products)


def _write(result, store: Path, args: argparse.Namespace) -> None:
    """Compute ``result`` chunk by chunk into ``store``: threads, a LocalCluster or a
    running dask scheduler, with a progress bar."""
    if args.scheduler or args.workers:
        from dask.distributed import Client, LocalCluster, progress

        cluster = None
        if args.scheduler:
            client = Client(args.scheduler)
        else:
            cluster = LocalCluster(
                n_workers=args.workers, threads_per_worker=1, dashboard_address=None
            )
            client = Client(cluster)
        try:
            print(f"dask scheduler {client.scheduler.address} (dashboard {client.dashboard_link})")
            job = result.to_zarr(store, mode="w", zarr_format=ZARR_FORMAT, compute=False)
            future = client.compute(job)
            progress(future)
            future.result()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    else:
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            result.to_zarr(store, mode="w", zarr_format=ZARR_FORMAT)


def check_out(store: Path, overwrite: bool) -> None:
    """Refuse to write over an existing path, unless ``overwrite`` and it is a Zarr store
    (writing a store with ``mode="w"`` deletes everything in its folder first)."""
    if not store.exists():
        return
    if not overwrite:
        raise FileExistsError(f"--out {store} already exists; pass --overwrite to replace it")
    is_zarr = store.is_dir() and any((store / m).exists() for m in ("zarr.json", ".zgroup"))
    if not is_zarr and not (store.is_dir() and not any(store.iterdir())):
        raise FileExistsError(
            f"--out {store} exists and is not a Zarr store; --overwrite only replaces a "
            "Zarr store (or an empty folder)"
        )


def _retrieve(args: argparse.Namespace) -> int:
    """The retrieve job: load_cube/load_s2 -> retrieve or VAE -> Zarr."""
    import numpy as np
    import xarray as xr

    import xr_physcube.accessors  # noqa: F401  (registers .physics and .vae)

    store = Path(args.out)
    check_out(store, args.overwrite)
    cube = _load_tile(args)
    print(cube)
    result = _retrieval(cube, args)
    print(f"{args.method}: {len(result.__dask_graph__())} tasks -> {store}")
    start = time.perf_counter()
    _write(result, store, args)
    elapsed = time.perf_counter() - start
    n_pix = int(np.prod([cube.sizes[d] for d in ("time", "y", "x")]))
    print(f"done in {elapsed:.1f} s ({n_pix / elapsed:,.0f} pixel-dates/s)")
    written = xr.open_zarr(store)
    for name in (v for v in written.data_vars if not v.endswith("_std")):
        values = written[name].values
        valid = np.isfinite(values)
        mean = float(values[valid].mean()) if valid.any() else float("nan")
        units = written[name].attrs.get("units", "")
        print(f"  {name:7s} mean {mean:9.4g} {units:8s} (valid {valid.mean():.0%})")
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
    print(f"training the {args.name} network -> {out}")
    path = train_pretrained(args.name, n_samples=args.samples, seed=args.seed, out_path=out)
    print(f"saved {Path(path).resolve()}")
    return 0


def _train_vae(args: argparse.Namespace) -> int:
    from xr_physcube.vae.pretrained import pretrain

    out = train_out_path(args)
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
        "--samples", type=_positive_int, default=None, help="simulations (default: shipped)"
    )
    train.set_defaults(func=_train_inverse)
    vae = sub.add_parser("train-vae", help="rebuild a shipped VAE from its recipe")
    vae.add_argument("name", choices=sorted(RECIPES))
    vae.add_argument(
        "--samples", type=_positive_int, default=None, help="simulations (default: recipe)"
    )
    vae.add_argument("--steps", type=_positive_int, default=None, help="ELBO steps")
    vae.add_argument("--encoder-steps", type=_non_negative_int, default=None)
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
    demo = sub.add_parser("demo", help="retrieve LAI/CCC/CWC/soil moisture on the embedded cube")
    demo.add_argument("--out", default="xr_physcube_demo", help="output folder")
    demo.add_argument("--size", type=int, default=64, help="pixels per side")
    demo.add_argument("--chunk", type=int, default=32, help="dask chunk size (pixels)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--workers", type=int, default=0, help="run on a dask LocalCluster with N workers"
    )
    demo.set_defaults(func=_demo)
    _add_retrieve_parser(sub)
    _add_train_parsers(sub)
    return parser


def _add_retrieve_parser(sub) -> None:
    job = sub.add_parser(
        "retrieve",
        help="load a Sentinel-2 (+ Sentinel-1) tile from a STAC API, retrieve, write zarr",
        description="Batch job on one tile: load_cube (or load_s2 with --no-s1) from a STAC "
        "API, then physics.retrieve (or vae.encode with --method vae) chunk by chunk into "
        "a Zarr store.",
    )
    job.add_argument("url", help="STAC API URL, e.g. https://earth-search.aws.element84.com/v1")
    job.add_argument(
        "--bbox",
        type=float,
        nargs=4,
        required=True,
        metavar=("W", "S", "E", "N"),
        help="search area, degrees (WGS84)",
    )
    job.add_argument(
        "--time",
        required=True,
        type=stac_time,
        help="START/END, e.g. 2024-04-01/2024-07-31 ('..' for an open end)",
    )
    job.add_argument("--out", required=True, help="Zarr store to write (must not exist)")
    job.add_argument(
        "--overwrite", action="store_true", help="replace --out if it is an existing Zarr store"
    )
    job.add_argument(
        "--method",
        choices=("inverse", "vae"),
        default="inverse",
        help="inverse networks (default) or the physics-constrained VAE",
    )
    job.add_argument(
        "--variables",
        nargs="+",
        default=None,
        metavar="NAME",
        help=f"S2 products for --method inverse (default: {' '.join(S2_PRODUCTS)}); "
        "soil moisture mv is added from S1 unless --no-s1",
    )
    job.add_argument(
        "--vae-model",
        default=None,
        help="VAE checkpoint or shipped name (default: by number of dates)",
    )
    job.add_argument("--no-s1", action="store_true", help="Sentinel-2 only")
    job.add_argument(
        "--bounds",
        type=float,
        nargs=4,
        default=None,
        metavar=("MINX", "MINY", "MAXX", "MAXY"),
        help="output extent in the output CRS (default: the bbox)",
    )
    job.add_argument("--epsg", type=int, default=None, help="output CRS (default: the items')")
    job.add_argument("--resolution", type=float, default=10.0, help="pixel size, m")
    job.add_argument("--chunk", type=int, default=1024, help="dask chunk size (pixels)")
    job.add_argument("--max-cloud-cover", type=float, default=None, help="drop items above, %%")
    job.add_argument("--s2-collection", default="sentinel-2-l2a")
    job.add_argument("--s1-collection", default="sentinel-1-rtc")
    job.add_argument(
        "--sign",
        default=None,
        choices=("planetary_computer",),
        help="sign asset URLs (Planetary Computer; optional dependency)",
    )
    job.add_argument(
        "--timeout",
        type=_positive_float,
        default=None,
        help="seconds to wait for the STAC API to connect and to answer each request, and "
        "for image reads to connect or receive data (default: "
        "xr_physcube.io.stac.STAC_TIMEOUT_S, 30)",
    )
    where = job.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=_non_negative_int,
        default=0,
        help="run on a dask LocalCluster with N worker processes (default 0: dask threads)",
    )
    where.add_argument(
        "--scheduler",
        default=None,
        help="address of a running dask scheduler, e.g. tcp://10.0.0.1:8786",
    )
    job.set_defaults(func=_retrieve)


def stac_time(text: str) -> str:
    """``--time``: a STAC datetime interval START/END of ISO 8601 dates or times (YYYY,
    YYYY-MM, YYYY-MM-DD, YYYY-MM-DDThh:mm:ssZ …; '..' or nothing for an open end) or one;
    argparse turns the error into a usage message."""
    import datetime as dt
    import re

    parts = text.split("/")
    if len(parts) > 2 or all(p in ("..", "") for p in parts):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected START/END, e.g. 2024-04-01/2024-07-31"
        )
    spans = []  # (first instant, instant after the last) of each part, naive UTC
    for part in parts:
        if part in ("..", ""):  # an open end
            spans.append(None)
            continue
        # dashes of a reduced-precision date (0 year, 1 month, 2 day), None for a time
        period = part.count("-") if re.fullmatch(r"\d{4}(-\d{2}){0,2}", part) else None
        full = part if period is None else part + ("-01-01", "-01", "")[period]
        try:
            first = dt.datetime.fromisoformat(full)
        except ValueError as err:
            raise argparse.ArgumentTypeError(
                f"{part!r} in {text!r} is not an ISO 8601 date or time: {err}"
            ) from err
        first = first.replace(tzinfo=None) - (first.utcoffset() or dt.timedelta())
        if period is None:  # a date and time: an instant
            after = first + dt.timedelta(microseconds=1)
        elif period == 2:  # a day
            after = first + dt.timedelta(days=1)
        else:  # a month or a year
            month = first.month + (1 if period == 1 else 12)
            after = first.replace(year=first.year + (month - 1) // 12, month=(month - 1) % 12 + 1)
        spans.append((first, after))
    if len(spans) == 2 and None not in spans and spans[0][0] >= spans[1][1]:
        raise argparse.ArgumentTypeError(f"{text!r}: START is after END")
    return text


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more; got {value}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more; got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0.0:
        raise argparse.ArgumentTypeError(f"must be more than 0; got {text}")
    return value


def bbox_problem(bbox: list[float]) -> str | None:
    """Why ``--bbox W S E N`` (degrees) cannot be searched and stacked, or None."""
    w, s, e, n = bbox
    if not (
        -180.0 <= w <= 180.0 and -180.0 <= e <= 180.0 and -90.0 <= s <= 90.0 and -90.0 <= n <= 90.0
    ):
        return f"{bbox}: longitudes must be within -180..180 and latitudes within -90..90"
    if not (w < e and s < n):
        return f"{bbox}: expected W < E and S < N (a box across the antimeridian is not supported)"
    return None


def variables_problem(variables: list[str] | None, method: str) -> str | None:
    """Why ``--variables`` cannot be retrieved with ``--method``, or None."""
    if variables is None:
        return None
    if method != "inverse":
        return f"applies to --method inverse only (--method {method} returns all its parameters)"
    unknown = [v for v in variables if v not in S2_PRODUCTS]
    if unknown:
        return f"unknown {unknown}; choose from {' '.join(S2_PRODUCTS)}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "retrieve":
        if problem := bbox_problem(args.bbox):
            parser.error(f"argument --bbox: {problem}")
        if problem := variables_problem(args.variables, args.method):
            parser.error(f"argument --variables: {problem}")
    keep_freed_memory()  # a batch process: reuse freed temporaries (see xr_physcube.performance)
    return _report_user_errors(args)


def _report_user_errors(args: argparse.Namespace) -> int:
    """Run the command; a :class:`PhyscubeError`, a STAC API error or an existing output
    ends with one line on stderr and exit code 1. Anything else raises: a bug shows its
    traceback."""
    from pystac_client.exceptions import APIError

    from xr_physcube.exceptions import PhyscubeError

    try:
        return args.func(args)
    except (PhyscubeError, APIError, FileExistsError) as err:
        where = f"STAC API {args.url}: " if isinstance(err, APIError) else ""
        print(f"xr-physcube {args.command}: error: {where}{err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
