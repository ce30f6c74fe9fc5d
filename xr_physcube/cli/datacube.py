"""``xr-physcube datacube``: the multi-modal data cube of one tile (a STAC API -> the S2
cube and the S1 cube on the same grid, each on its own dates -> ``ds.vae.datacube`` on a
regular time grid -> a Zarr store), like ``retrieve``."""

from __future__ import annotations

import argparse
from pathlib import Path

from xr_physcube.cli.common import positive_int
from xr_physcube.cli.retrieve import add_tile_arguments, check_out, run_tile_job, s2_kwargs
from xr_physcube.cube.datacube import MEMORY_BUDGET


def _load_modalities(args: argparse.Namespace):
    """(s2, s1) of the tile, lazy; the absent one None. S1 is stacked on S2's grid."""
    from xr_physcube.io.stac import load_s1, load_s2

    s2 = s1 = None
    if not args.no_s2:
        s2 = load_s2(
            args.url, args.bbox, args.time, collection=args.s2_collection, **s2_kwargs(args)
        )
    if not args.no_s1:
        grid = s2_kwargs(args)
        del grid["max_cloud_cover"]  # an S2 filter
        if s2 is not None:  # S2's grid, whatever bounds/epsg/resolution/chunks said
            shared = ("sign", "timeout", "engine", "read_errors")
            grid = {k: grid[k] for k in shared if k in grid} | {"like": s2}
        s1 = load_s1(args.url, args.bbox, args.time, collection=args.s1_collection, **grid)
    return s2, s1


def _datacube(args: argparse.Namespace) -> int:
    """The datacube job: load_s2 / load_s1(like=s2) -> vae.datacube -> Zarr."""
    import xr_physcube.accessors  # noqa: F401  (registers .vae)

    store = Path(args.out)
    check_out(store, args.overwrite, args.resume, args.format)
    s2, s1 = _load_modalities(args)
    for name, cube in (("S2", s2), ("S1", s1)):
        if cube is not None:
            print(f"{name}: {cube.sizes['time']} dates, {cube.sizes['y']}x{cube.sizes['x']} px")
    first = s2 if s2 is not None else s1
    result = first.vae.datacube(
        s1=s1 if s2 is not None else None,
        freq=args.freq,
        start=args.start,
        end=args.end,
        model=args.model,
        device=args.device,
        memory_budget=args.memory_budget * 2**20,
    )
    print(f"grid: {result.sizes['time']} dates every {args.freq}")
    run_tile_job(result, store, args, "datacube")
    return 0


def add_datacube_parser(sub) -> None:
    job = sub.add_parser(
        "datacube",
        help="S2 and S1 of a tile on their own dates -> physical variables on a regular "
        "time grid, to zarr",
        description="Batch job on one tile: load_s2 and load_s1(like=s2) from a STAC API, "
        "then vae.datacube (posterior mean and std of LAI, Cab, ..., soil moisture on a "
        "regular time grid) region by region into a Zarr store (resumable with --resume).",
    )
    add_tile_arguments(job)
    job.add_argument("--freq", default="5D", help="grid spacing, a pandas frequency (5D)")
    job.add_argument("--start", default=None, help="first grid date (default: first acquisition)")
    job.add_argument("--end", default=None, help="last grid date (default: last acquisition)")
    only = job.add_mutually_exclusive_group()
    only.add_argument("--no-s1", action="store_true", help="Sentinel-2 only")
    only.add_argument("--no-s2", action="store_true", help="Sentinel-1 only")
    job.add_argument(
        "--model", default=None, help="data-cube VAE checkpoint (default: the shipped one)"
    )
    job.add_argument("--device", default=None, help="torch device (default: CUDA if present)")
    job.add_argument(
        "--memory-budget",
        type=positive_int,
        default=MEMORY_BUDGET // 2**20,
        help="peak MiB per dask task; spatial chunks are sized to fit "
        f"(default {MEMORY_BUDGET // 2**20})",
    )
    job.set_defaults(func=_datacube)
