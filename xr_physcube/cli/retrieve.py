"""``xr-physcube retrieve``: the batch job on one tile (a STAC API -> the S2 (+ S1) cube
-> inverse networks or the VAE -> a Zarr store, on dask threads, a LocalCluster or a
running scheduler)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from xr_physcube.cli.common import non_negative_int, positive_float, stac_time

S2_PRODUCTS = ("lai", "fcover", "fapar", "ccc", "cwc")
"""What ``xr-physcube retrieve --method inverse`` computes from Sentinel-2 by default."""


def s2_kwargs(args: argparse.Namespace) -> dict:
    """The loader keywords of the tile options (:func:`add_tile_arguments`)."""
    kwargs = dict(
        bounds=args.bounds,
        epsg=args.epsg,
        resolution=args.resolution,
        chunks=args.chunk,
        max_cloud_cover=args.max_cloud_cover,
        sign=args.sign,
        engine=args.engine,
        read_errors=args.read_errors,
    )
    if args.timeout is not None:
        kwargs["timeout"] = args.timeout
    return kwargs


def _load_tile(args: argparse.Namespace):
    """The S2 (+ S1) cube of the job, lazy."""
    from xr_physcube.io.stac import load_cube, load_s2

    if args.no_s1:
        return load_s2(
            args.url, args.bbox, args.time, collection=args.s2_collection, **s2_kwargs(args)
        )
    return load_cube(
        args.url,
        args.bbox,
        args.time,
        s2_collection=args.s2_collection,
        s1_collection=args.s1_collection,
        **s2_kwargs(args),
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


def write_job(result, store: Path, args: argparse.Namespace) -> None:
    """Compute ``result`` region by region into ``store`` (resumably, see
    :mod:`xr_physcube.io.store`): dask threads, a LocalCluster or a running scheduler,
    with a progress bar."""
    from xr_physcube.io.store import write_store

    if not (args.scheduler or args.workers):
        write_store(result, store, resume=args.resume)
        return
    from xr_physcube._extras import require

    require("distributed", "--workers / --scheduler")
    from dask.distributed import Client, LocalCluster

    cluster = None
    if args.scheduler:
        client = Client(args.scheduler)
    else:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None)
        client = Client(cluster)
    try:
        print(f"dask scheduler {client.scheduler.address} (dashboard {client.dashboard_link})")
        write_store(result, store, resume=args.resume, client=client)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def check_out(store: Path, overwrite: bool, resume: bool = False, fmt: str = "zarr") -> None:
    """Refuse ``--out`` unless it is free, or a store of an earlier job and ``overwrite``
    (replace it) or ``resume`` (finish an interrupted one); a user's folder or Zarr store
    is never replaced."""
    from xr_physcube.io.geotiff import is_cog_folder
    from xr_physcube.io.store import check_replaceable

    if fmt == "cog":
        if resume:
            raise FileExistsError("--resume applies to --format zarr only")
        if store.exists() and not (overwrite and is_cog_folder(store)):
            raise FileExistsError(
                f"--out {store} exists; --overwrite replaces only a COG folder of a job"
            )
        return
    try:
        check_replaceable(store, overwrite, resume)
    except FileExistsError as err:
        raise FileExistsError(f"--out {err}") from None


def run_tile_job(result, store: Path, args: argparse.Namespace, label: str) -> None:
    """Write the job and print its speed and the mean of each written variable."""
    import numpy as np

    from xr_physcube.io.store import open_store

    print(f"{label}: {len(result.__dask_graph__())} tasks -> {store}")
    start = time.perf_counter()
    if args.format == "cog":
        from xr_physcube.io.geotiff import write_cogs

        paths = write_cogs(result, store, overwrite=args.overwrite)
        print(f"done in {time.perf_counter() - start:.1f} s: {len(paths)} COGs in {store}")
        return
    write_job(result, store, args)
    elapsed = time.perf_counter() - start
    n_pix = int(np.prod([result.sizes[d] for d in ("time", "y", "x")]))
    print(f"done in {elapsed:.1f} s ({n_pix / elapsed:,.0f} pixel-dates/s)")
    written = open_store(store)
    for name in (v for v in written.data_vars if not v.endswith("_std")):
        values = written[name].values
        valid = np.isfinite(values)
        mean = float(values[valid].mean()) if valid.any() else float("nan")
        units = written[name].attrs.get("units", "")
        print(f"  {name:7s} mean {mean:9.4g} {units:8s} (valid {valid.mean():.0%})")


def _retrieve(args: argparse.Namespace) -> int:
    """The retrieve job: load_cube/load_s2 -> retrieve or VAE -> Zarr."""
    import xr_physcube.accessors  # noqa: F401  (registers .physics and .vae)

    store = Path(args.out)
    check_out(store, args.overwrite, args.resume, args.format)
    cube = _load_tile(args)
    print(cube)
    run_tile_job(_retrieval(cube, args), store, args, args.method)
    return 0


def add_tile_arguments(job: argparse.ArgumentParser) -> None:
    """The options every tile job shares: where to search, the output grid, the store,
    and where to compute."""
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
    job.add_argument(
        "--out", required=True, help="Zarr store (or COG folder) to write (must not exist)"
    )
    job.add_argument(
        "--format",
        choices=("zarr", "cog"),
        default="zarr",
        help="zarr (default: one store, region by region, resumable) or cog (one "
        "Cloud-Optimized GeoTIFF per variable, dates as bands; each variable computed whole)",
    )
    again = job.add_mutually_exclusive_group()
    again.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --out if it is a store an earlier xr-physcube job wrote",
    )
    again.add_argument(
        "--resume",
        action="store_true",
        help="finish the interrupted job that wrote --out (same arguments): only the "
        "regions not yet written are computed",
    )
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
        "--engine",
        choices=("stackstac", "odc-stac"),
        default="stackstac",
        help="how items are stacked into a cube (default stackstac; odc-stac gives the "
        "same cube and needs the odc-stac extra)",
    )
    job.add_argument(
        "--read-errors",
        choices=("nan", "raise"),
        default="nan",
        help="an image read that still fails after 3 tries: NaN with a warning (default, "
        "the job goes on) or raise",
    )
    job.add_argument(
        "--timeout",
        type=positive_float,
        default=None,
        help="seconds to wait for the STAC API to connect and to answer each request, and "
        "for image reads to connect or receive data (default: "
        "xr_physcube.io.stac.STAC_TIMEOUT_S, 30)",
    )
    add_dask_arguments(job)


def add_dask_arguments(job: argparse.ArgumentParser) -> None:
    """``--workers N`` (a LocalCluster) or ``--scheduler ADDRESS``, for :func:`write_job`."""
    where = job.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=non_negative_int,
        default=0,
        help="run on a dask LocalCluster with N worker processes (default 0: dask threads)",
    )
    where.add_argument(
        "--scheduler",
        default=None,
        help="address of a running dask scheduler, e.g. tcp://10.0.0.1:8786",
    )


def add_retrieve_parser(sub) -> None:
    job = sub.add_parser(
        "retrieve",
        help="load a Sentinel-2 (+ Sentinel-1) tile from a STAC API, retrieve, write zarr",
        description="Batch job on one tile: load_cube (or load_s2 with --no-s1) from a STAC "
        "API, then physics.retrieve (or vae.encode with --method vae) region by region into "
        "a Zarr store (resumable with --resume).",
    )
    add_tile_arguments(job)
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
    job.set_defaults(func=_retrieve)


def bbox_problem(bbox: list[float]) -> str | None:
    """Why ``--bbox W S E N`` (degrees) cannot be searched and stacked, or None (the
    loaders' check, :func:`~xr_physcube.validation.check_bbox`)."""
    from xr_physcube.exceptions import InvalidArgumentError
    from xr_physcube.validation import check_bbox

    try:
        check_bbox(bbox)
    except InvalidArgumentError as err:
        return str(err)
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
