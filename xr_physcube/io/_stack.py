"""Stacking STAC items onto one lazy grid with stackstac: which asset holds which band
(one table per provider), the grid of a reference cube, GDAL read timeouts, and merging
the tiles of one pass. The second stage of the loaders in :mod:`xr_physcube.io.stac`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from xr_physcube._extras import require
from xr_physcube.exceptions import MetadataError, StacSearchError
from xr_physcube.io.georef import write_crs

# ----------------------------------------------------------------------------------------
# Provider conventions (one table each)
# ----------------------------------------------------------------------------------------

S2_ASSET_KEYS: dict[str, tuple[str, ...]] = {
    "B1": ("coastal", "B01", "B01_60m"),
    "B2": ("blue", "B02", "B02_10m"),
    "B3": ("green", "B03", "B03_10m"),
    "B4": ("red", "B04", "B04_10m"),
    "B5": ("rededge1", "B05", "B05_20m"),
    "B6": ("rededge2", "B06", "B06_20m"),
    "B7": ("rededge3", "B07", "B07_20m"),
    "B8": ("nir", "B08", "B08_10m"),
    "B8A": ("nir08", "B8A", "B8A_20m"),
    "B9": ("nir09", "B09", "B09_60m"),
    "B11": ("swir16", "B11", "B11_20m"),
    "B12": ("swir22", "B12", "B12_20m"),
    "SCL": ("scl", "SCL", "SCL_20m"),
}
"""Our band name -> asset keys tried in order: Earth Search v1 ("blue", "scl"),
Planetary Computer ("B02", "SCL"), Copernicus Data Space ("B02_10m", "SCL_20m")."""

S1_ASSET_KEYS: dict[str, tuple[str, ...]] = {
    "VV": ("vv", "VV", "VV_sigma0", "sigma0_vv"),
    "VH": ("vh", "VH", "VH_sigma0", "sigma0_vh"),
    "theta": ("incidence_angle", "local_incidence_angle", "incidence", "theta"),
}
"""Our S1 variable -> asset keys tried in order (Planetary Computer / Earth Search use
"vv", "vh"). ``theta`` is optional: a per-pixel incidence-angle asset."""
# ----------------------------------------------------------------------------------------
# Stacking
# ----------------------------------------------------------------------------------------

pystac = require("pystac", "loading cubes from a STAC API")


def resolve_assets(
    items: Sequence[pystac.Item], names: Sequence[str], table: Mapping[str, Sequence[str]]
) -> dict[str, str]:
    """Our name -> asset key present in every item; clear error naming what is missing."""
    common = set.intersection(*(set(it.assets) for it in items))
    out, missing = {}, []
    for name in names:
        key = next((k for k in table.get(name, (name,)) if k in common), None)
        if key is None:
            missing.append(name)
        else:
            out[name] = key
    if missing:
        tried = {m: list(table.get(m, (m,))) for m in missing}
        raise StacSearchError(
            f"asset(s) {missing} missing from the STAC items (tried keys {tried}); asset keys "
            f"present in all {len(items)} item(s): {sorted(common)}"
        )
    return out


def item_dict(item: pystac.Item) -> dict:
    """Item as a dict with ``proj:epsg`` filled from ``proj:code`` (projection ext. v2),
    which stackstac 0.5 does not read."""
    d = item.to_dict(include_self_link=False, transform_hrefs=False)
    blocks = [d["properties"], *d.get("assets", {}).values()]
    for block in blocks:
        code = block.get("proj:code")
        if "proj:epsg" not in block and isinstance(code, str) and code.upper().startswith("EPSG:"):
            block["proj:epsg"] = int(code.split(":")[1])
    return d


def stack_items(
    items: Sequence[pystac.Item],
    asset_keys: Mapping[str, str],
    *,
    bbox: Sequence[float] | None,
    epsg: int | None,
    resolution: float | None,
    bounds: Sequence[float] | None,
    chunks: int | tuple[int, int],
    resampling: str,
    timeout: float | None,
    engine: str = "stackstac",
    read_errors: str = "raise",
) -> xr.Dataset:
    """The items' assets as a lazy (time, y, x) float32 Dataset, one date per item in
    the items' order, NaN where no data, with its CRS written by rioxarray.

    ``engine``: "stackstac" (default) or "odc-stac" (maintained; same grid when
    ``bounds`` are given). ``read_errors``: "raise", or "nan" (GDAL retries, then NaN
    with a warning; :mod:`xr_physcube.io._reader`; odc-stac: ``fail_on_error=False``)."""
    if engine == "odc-stac":
        return _stack_odc(items, asset_keys, bbox=bbox, epsg=epsg, resolution=resolution,
                          bounds=bounds, chunks=chunks, resampling=resampling,
                          fail_on_error=read_errors == "raise")  # fmt: skip
    import stackstac
    from rasterio.enums import Resampling
    from stackstac.rio_reader import AutoParallelRioReader

    from xr_physcube.io._reader import NanOnFailureReader

    keys = list(asset_keys.values())
    arr = stackstac.stack(
        [item_dict(it) for it in items],
        assets=keys,
        epsg=epsg,
        resolution=resolution,
        bounds=tuple(bounds) if bounds is not None else None,
        bounds_latlon=tuple(bbox) if bounds is None and bbox is not None else None,
        resampling=Resampling[resampling],
        chunksize=chunks,
        dtype=np.dtype("float32"),
        fill_value=np.float32(np.nan),
        rescale=False,
        sortby_date=False,
        xy_coords="center",
        properties=False,
        band_coords=False,
        gdal_env=gdal_env(timeout, retry=read_errors == "nan"),
        reader=NanOnFailureReader if read_errors == "nan" else AutoParallelRioReader,
    )
    crs = f"EPSG:{int(arr.attrs['crs'].split(':')[-1])}" if "crs" in arr.attrs else None
    res = arr.attrs.get("resolution")
    arr = arr.drop_vars([c for c in arr.coords if c not in ("time", "band", "y", "x")])
    ds = arr.to_dataset("band").rename({v: k for k, v in asset_keys.items()})
    ds = ds.assign_coords(time=pd.DatetimeIndex([naive_utc(it.datetime) for it in items]))
    ds.attrs = {"resolution": float(res) if res is not None else None}
    return write_crs(ds, crs)


def _stack_odc(
    items, asset_keys, *, bbox, epsg, resolution, bounds, chunks, resampling, fail_on_error
):
    """:func:`stack_items` with odc-stac: one date per item (``groupby="id"``, items in
    time order), pixel centres on the grid of ``bounds`` (or of ``bbox``)."""
    import odc.stac

    times = [naive_utc(it.datetime) for it in items]
    if times != sorted(times):  # odc-stac orders its output by time
        raise MetadataError("odc-stac engine: items must come in time order (load_s2 sorts them)")
    keys = list(asset_keys.values())
    dicts = [item_dict(it) for it in items]
    if not epsg:  # the first item's, like stackstac
        blocks = [dicts[0]["properties"], *(dicts[0]["assets"][k] for k in keys)]
        epsg = next((b["proj:epsg"] for b in blocks if b.get("proj:epsg")), None)
    crs = f"EPSG:{epsg}" if epsg else None
    cy, cx = (chunks, chunks) if isinstance(chunks, int) else chunks
    grid: dict = {"crs": crs, "resolution": resolution}
    if bounds is not None:
        from odc.geo.geobox import GeoBox

        if crs is None:
            raise MetadataError("engine='odc-stac' with bounds needs epsg= or proj:epsg")
        grid = {"geobox": GeoBox.from_bbox(tuple(bounds), crs=crs, resolution=resolution)}
    elif bbox is not None:
        grid["bbox"] = tuple(bbox)
    ds = odc.stac.load(
        [pystac.Item.from_dict(d) for d in dicts],
        bands=keys,
        groupby="id",
        chunks={"time": 1, "y": cy, "x": cx},
        resampling=resampling,
        dtype="float32",
        nodata=np.float32(np.nan),
        fail_on_error=fail_on_error,
        **{k: v for k, v in grid.items() if v is not None},
    )
    if "latitude" in ds.dims:  # a geographic CRS
        ds = ds.rename({"latitude": "y", "longitude": "x"})
    ds = ds.rename({v: k for k, v in asset_keys.items()}).transpose("time", "y", "x")
    ds = ds.assign_coords(time=pd.DatetimeIndex(times))
    crs_text = str(ds.rio.crs)
    ds = ds.drop_vars([c for c in ds.coords if c not in ("time", "y", "x")])
    ds.attrs = {"resolution": float(resolution) if resolution else abs(float(ds.x[1] - ds.x[0]))}
    return write_crs(ds, crs_text)


def gdal_env(timeout: float | None, retry: bool = False):
    """stackstac's GDAL environment, with HTTP reads that give up after ``timeout`` s
    without a connection or without a byte (a mute data host), not a cap on slow ones,
    and with ``retry`` GDAL's retries of failed HTTP requests (:mod:`._reader`)."""
    import stackstac

    options: dict[str, str] = {}
    if timeout is not None:
        seconds = str(max(1, math.ceil(timeout)))  # GDAL takes whole seconds here
        options |= {
            "GDAL_HTTP_CONNECTTIMEOUT": seconds,
            "GDAL_HTTP_LOW_SPEED_TIME": seconds,
            "GDAL_HTTP_LOW_SPEED_LIMIT": "1",  # bytes/s
        }
    if retry:
        from xr_physcube.io._reader import retry_options

        options |= retry_options()
    env = stackstac.DEFAULT_GDAL_ENV
    return env.updated(always=options) if options else env


def naive_utc(t) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def solar_days(times, longitude: float) -> pd.DatetimeIndex:
    """Local (mean) solar day of UTC ``times`` at ``longitude`` (degrees east): UTC +
    longitude / 15 h, so that one overpass never straddles two days (odc-stac's
    ``groupby="solar_day"``)."""
    return (pd.DatetimeIndex(times) + pd.Timedelta(hours=longitude / 15.0)).normalize()


def mosaic_same_day(ds: xr.Dataset, longitude: float = 0.0) -> xr.Dataset:
    """Merge items acquired on the same local solar day at ``longitude`` (adjacent
    tiles/slices of one pass; :func:`solar_days`).

    Per pixel the first valid (non-NaN) value in time order wins; per-date numeric
    coordinates (angles) are averaged; the time is that of the first item.
    """
    days = solar_days(ds.time.values, longitude)
    if not days.has_duplicates:
        return ds
    parts = []
    for day in days.unique():
        idx = np.flatnonzero(days == day)
        sub = ds.isel(time=idx)
        first = sub.isel(time=0)
        for k in range(1, len(idx)):
            first = first.fillna(sub.isel(time=k))
        coords = {
            c: ("time", [sub[c].values.mean()], sub[c].attrs)
            for c in sub.coords
            if sub[c].dims == ("time",) and c != "time"
        }
        parts.append(
            first.drop_vars(list(coords), errors="ignore").expand_dims(time=[sub.time.values[0]])
        )
        parts[-1] = parts[-1].assign_coords(coords)
    out = xr.concat(parts, dim="time", combine_attrs="override")
    return out.assign_coords({c: out[c].astype(ds[c].dtype) for c in out.coords if c != "time"})
