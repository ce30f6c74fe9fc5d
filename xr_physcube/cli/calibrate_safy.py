"""``xr-physcube calibrate-safy``: biomass and yield maps from a Zarr of LAI (SAFY
calibrated per pixel, ``ds.physics.calibrate_safy``), written to a Zarr store.

xr-physcube calibrate-safy LAI.zarr --weather WEATHER --out maps.zarr
    [--crop maize|winter_wheat] [--sowing DATE] [--harvest DATE] [--lai lai] [--trajectory]
    [--steps 2] [--starts 1] [--grid-size 2048] [--overwrite | --resume]

``WEATHER`` is a Zarr store or a CSV file (a ``date`` or ``time`` column, then the
``--temperature`` (°C, daily mean) and ``--radiation`` (MJ m⁻² day⁻¹) columns) on a
regular daily axis covering the LAI dates.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from xr_physcube.cli.common import non_negative_int, positive_int
from xr_physcube.cli.retrieve import add_dask_arguments


def _open_weather(path: Path, temperature: str, radiation: str):
    import pandas as pd
    import xarray as xr

    from xr_physcube.exceptions import InvalidArgumentError, MissingVariableError

    if not path.exists():
        raise InvalidArgumentError(f"--weather {path} does not exist")
    if path.suffix.lower() != ".csv":
        return xr.open_zarr(path).load()
    table = pd.read_csv(path)
    when = next((c for c in ("time", "date") if c in table.columns), None)
    missing = [c for c in (temperature, radiation) if c not in table.columns]
    if when is None or missing:
        raise MissingVariableError(
            f"--weather {path}: needs a 'date' (or 'time') column and {temperature!r}, "
            f"{radiation!r}; has {list(table.columns)}"
        )
    return xr.Dataset(
        {
            temperature: ("time", table[temperature].to_numpy(float)),
            radiation: ("time", table[radiation].to_numpy(float)),
        },
        coords={"time": pd.to_datetime(table[when]).to_numpy()},
    )


def _calibrate_safy(args: argparse.Namespace) -> int:
    import numpy as np

    import xr_physcube.accessors  # noqa: F401  (registers .physics)
    from xr_physcube.cli.retrieve import check_out, write_job
    from xr_physcube.exceptions import InvalidArgumentError
    from xr_physcube.io.store import open_store

    store = Path(args.out)
    check_out(store, args.overwrite, args.resume)
    if not Path(args.lai_store).exists():
        raise InvalidArgumentError(f"LAI store {args.lai_store} does not exist")
    cube = open_store(args.lai_store)  # an interrupted job's store is refused
    weather = _open_weather(Path(args.weather), args.temperature, args.radiation)
    result = cube.physics.calibrate_safy(
        args.lai,
        weather,
        args.crop,
        sowing=args.sowing,
        harvest=args.harvest,
        trajectory=args.trajectory,
        temperature=args.temperature,
        radiation=args.radiation,
        steps=args.steps,
        starts=args.starts,
        grid_size=args.grid_size,
    )
    print(
        f"calibrate-safy ({result.attrs['crop']}): {len(result.__dask_graph__())} tasks -> {store}"
    )
    start = time.perf_counter()
    write_job(result, store, args)  # region by region, threads or a dask cluster
    elapsed = time.perf_counter() - start
    written = open_store(store)
    n_pix = int(written.biomass_final.size)
    print(f"done in {elapsed:.1f} s ({n_pix / elapsed:,.0f} pixels/s)")
    for name in ("biomass_final", "yield", "rmse"):
        values = written[name].values
        valid = np.isfinite(values)
        mean = float(values[valid].mean()) if valid.any() else float("nan")
        print(
            f"  {name:13s} mean {mean:9.4g} {written[name].attrs.get('units', ''):7s} "
            f"(valid {valid.mean():.0%})"
        )
    return 0


def add_calibrate_safy_parser(sub) -> None:
    """Register the ``calibrate-safy`` subcommand on the subparsers ``sub``."""
    job = sub.add_parser(
        "calibrate-safy", help="biomass and yield maps from a Zarr of LAI (SAFY per pixel)"
    )
    job.add_argument("lai_store", help="Zarr store with an LAI (time, y, x) variable")
    job.add_argument("--weather", required=True, help="daily weather: a Zarr store or a CSV")
    job.add_argument("--out", required=True, help="Zarr store to write (must not exist)")
    job.add_argument("--crop", default="maize", help="maize or winter_wheat (default maize)")
    job.add_argument("--sowing", default=None, help="sowing date, e.g. 2024-04-15")
    job.add_argument("--harvest", default=None, help="harvest date (default: last weather day)")
    job.add_argument("--lai", default="lai", help="name of the LAI variable")
    job.add_argument("--temperature", default="temperature", help="weather variable, degC")
    job.add_argument("--radiation", default="radiation", help="weather variable, MJ m-2 d-1")
    job.add_argument("--trajectory", action="store_true", help="also write daily biomass")
    job.add_argument("--steps", type=non_negative_int, default=2, help="gradient (LM) steps")
    job.add_argument("--starts", type=positive_int, default=1, help="grid starts refined")
    job.add_argument("--grid-size", type=positive_int, default=2048, help="coarse-grid size")
    again = job.add_mutually_exclusive_group()
    again.add_argument("--overwrite", action="store_true", help="replace a store of a job")
    again.add_argument("--resume", action="store_true", help="finish an interrupted job")
    add_dask_arguments(job)
    job.set_defaults(func=_calibrate_safy)
