"""Load Sentinel-2 L2A and Sentinel-1 cubes from any STAC API into dask-backed Datasets.

Items are searched with ``pystac-client`` and stacked lazily with ``stackstac`` onto one
grid (dims ``time, y, x``; one variable per band; pixel-centre coordinates). Nothing is
read before ``.compute()`` / ``.to_zarr()``.

Sentinel-2 (:func:`load_s2`)
    Bands are named as :data:`xr_physcube.sensors.sentinel2.BANDS` ("B2" … "B12") and
    converted from L2A digital numbers to surface reflectance with the ESA rule
    ``(DN + BOA_ADD_OFFSET) / 10000`` (offset -1000 from processing baseline 04.00, 0
    before; :func:`~xr_physcube.sensors.sentinel2.boa_offset`), per item, read from
    ``s2:processing_baseline``; DN 0 is no data (NaN). Items flagged
    ``earthsearch:boa_offset_applied: true`` (Earth Search harmonised archive) get no
    offset. Pixels whose scene classification (SCL) is in
    :data:`~xr_physcube.sensors.sentinel2.SCL_INVALID` (no data, defective, cloud
    shadow, clouds, cirrus) are set to NaN; ``SCL`` is kept as a variable.
    Angles become per-date coordinates ``tts`` (sun zenith), ``tto`` (view zenith) and
    ``psi`` (relative azimuth, 0 = backscatter/hot spot, folded to 0–180°), in degrees,
    from item properties (see :data:`SUN_ZENITH_KEYS` …). Fallback where absent (with a
    :class:`UserWarning` naming the items): the sun position computed from the item
    datetime at the bbox centre (NOAA solar-position equations, Spencer 1971), view
    zenith 0° (nadir) and, without a view azimuth, ``psi`` = 0°. With
    ``angles="granule"`` they are instead per-pixel variables interpolated from the 5 km
    angle grids of each item's tile metadata XML (:mod:`xr_physcube.io._angles`).

Sentinel-1 (:func:`load_s1`)
    ``VV`` and ``VH`` backscatter (the assets must be calibrated backscatter, e.g.
    Planetary Computer ``sentinel-1-rtc``; DN-valued GRD assets are not converted) in
    linear power (default) or dB, and the incidence angle ``theta`` (deg): a per-pixel
    variable from an incidence-angle asset when the items have one, else a per-date
    coordinate from ``view:incidence_angle``, else the IW mid-swath value
    (mean of :data:`~xr_physcube.sensors.sentinel1.IW_INCIDENCE_RANGE_DEG`) with a warning.

:func:`merge_cubes` puts an S1 cube on the grid and dates of an S2 cube (nearest S1
acquisition within a tolerance) to give one multi-modal cube.

Planetary Computer assets need signed URLs: pass ``sign="planetary_computer"`` (needs
the optional ``planetary-computer`` package) or any ``modifier`` callable accepted by
``pystac_client.Client.open``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from xml.etree.ElementTree import ParseError as ET_ParseError

import numpy as np
import pandas as pd
import pystac
import xarray as xr

from xr_physcube.sensors.sentinel1 import (
    IW_INCIDENCE_RANGE_DEG,
    POLARISATIONS,
    check_polarisations,
    db_to_linear,
    linear_to_db,
)
from xr_physcube.sensors.sentinel2 import (
    BANDS,
    NODATA_DN,
    QUANTIFICATION_VALUE,
    SCL_INVALID,
    boa_offset,
    check_bands,
)

__all__ = [
    "S1_ASSET_KEYS",
    "S2_ASSET_KEYS",
    "STAC_TIMEOUT_S",
    "StacSearchError",
    "load_cube",
    "load_s1",
    "load_s2",
    "merge_cubes",
    "search_items",
    "solar_position",
]

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

SUN_ZENITH_KEYS = ("s2:mean_solar_zenith", "sun_zenith")
"""Item properties giving the sun zenith (deg) directly; ``view:sun_elevation`` (STAC
view extension, tts = 90 - elevation) is tried first."""
SUN_AZIMUTH_KEYS = ("view:sun_azimuth", "s2:mean_solar_azimuth", "sun_azimuth")
VIEW_ZENITH_KEYS = (
    "view:incidence_angle",
    "s2:mean_incidence_zenith_angle_b8",
    "s2:mean_view_zenith",
    "view:off_nadir",
)
"""Item properties giving the view zenith (deg), in this order (``view:off_nadir`` is the
angle at the sensor, a close approximation for S2's narrow field of view)."""
VIEW_AZIMUTH_KEYS = ("view:azimuth", "s2:mean_incidence_azimuth_angle_b8", "s2:mean_view_azimuth")
GRANULE_METADATA_KEYS = ("granule_metadata", "granule-metadata", "MTD_TL", "metadata")
"""Asset keys of the tile metadata XML (``MTD_TL.xml``) tried in order for
``load_s2(..., angles="granule")``: Earth Search v1, Planetary Computer, others."""
S1_INCIDENCE_KEYS = ("view:incidence_angle", "s1:incidence_angle", "sar:incidence_angle")

STAC_TIMEOUT_S = 30.0
"""Default limit (s) on connecting to a STAC API and on each wait for its answer, so a
wrong host or a server that accepts but never answers fails instead of hanging. A read
that times out is not retried; a failed connection is retried up to 3 times. The same
limit applies to the data reads (GDAL, when chunks are computed: no connection, or no
byte received, for that long) and to tile metadata XML downloads."""

S1_DEFAULT_INCIDENCE_DEG = 0.5 * (IW_INCIDENCE_RANGE_DEG[0] + IW_INCIDENCE_RANGE_DEG[1])
"""Fallback S1 incidence angle: IW mid-swath (29.1 + 46.0) / 2 = 37.55 deg."""


class StacSearchError(LookupError):
    """A STAC search found no item, or the items lack the assets asked for."""


# ----------------------------------------------------------------------------------------
# Search
# ----------------------------------------------------------------------------------------


def _open_client(
    catalog_or_url,
    sign: str | None,
    modifier: Callable | None,
    timeout: float | None = STAC_TIMEOUT_S,
):
    from pystac_client import Client
    from pystac_client.stac_api_io import StacApiIO
    from urllib3.util.retry import Retry

    if sign is not None:
        if sign != "planetary_computer":
            raise ValueError(f"sign must be None or 'planetary_computer'; got {sign!r}")
        try:
            import planetary_computer
        except ImportError as err:
            raise ImportError(
                "sign='planetary_computer' needs the optional 'planetary-computer' package "
                "(pip install 'xr_physcube[planetary-computer]')"
            ) from err
        modifier = planetary_computer.sign_inplace
    if isinstance(catalog_or_url, Client):
        if modifier is not None:
            catalog_or_url.modifier = modifier
        return catalog_or_url
    if isinstance(catalog_or_url, str):
        # pystac-client's default (5 retries of anything) waits 6 x timeout on a mute server
        retry = Retry(total=3, read=0, backoff_factor=0.5)
        stac_io = StacApiIO(timeout=timeout, max_retries=retry)
        return Client.open(catalog_or_url, modifier=modifier, stac_io=stac_io, timeout=timeout)
    raise TypeError(
        "catalog_or_url must be a STAC API URL, a pystac_client.Client, or a list of "
        f"pystac.Item; got {type(catalog_or_url).__name__}"
    )


def search_items(
    catalog_or_url,
    collection: str,
    bbox: Sequence[float] | None,
    time: str | Sequence[Any],
    *,
    query: Mapping[str, Any] | None = None,
    max_items: int | None = None,
    sign: str | None = None,
    modifier: Callable | None = None,
    timeout: float | None = STAC_TIMEOUT_S,
) -> list[pystac.Item]:
    """Search one collection; items sorted by datetime. Raises :class:`StacSearchError` if empty.

    ``catalog_or_url`` may also be an iterable of ``pystac.Item`` (no search; filtered by
    nothing but returned sorted). ``time`` is a STAC datetime ("2024-05-01/2024-05-31")
    or a (start, end) pair. ``timeout`` (s) limits the connection to a STAC API given
    by URL and each wait for its answer (None: wait forever); a ``Client`` keeps its own.
    """
    if not isinstance(catalog_or_url, str) and isinstance(catalog_or_url, Iterable):
        items = list(catalog_or_url)
        if not all(isinstance(i, pystac.Item) for i in items):
            raise TypeError("an iterable catalog_or_url must hold pystac.Item objects")
    else:
        client = _open_client(catalog_or_url, sign, modifier, timeout)
        datetime = time if isinstance(time, str) else "/".join(_iso(t) for t in time)
        search = client.search(
            collections=[collection],
            bbox=list(bbox) if bbox is not None else None,
            datetime=datetime,
            query=dict(query) if query else None,
            max_items=max_items,
        )
        items = list(search.items())
    if not items:
        raise StacSearchError(
            f"no STAC item in collection {collection!r} for "
            f"bbox={list(bbox) if bbox is not None else None} and time={time!r}"
        )
    return sorted(items, key=lambda it: it.datetime or pd.Timestamp(0, tz="UTC"))


def _iso(t) -> str:
    ts = pd.Timestamp(t)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------------------
# Stacking
# ----------------------------------------------------------------------------------------


def _resolve_assets(
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


def _item_dict(item: pystac.Item) -> dict:
    """Item as a dict with ``proj:epsg`` filled from ``proj:code`` (projection ext. v2),
    which stackstac 0.5 does not read."""
    d = item.to_dict(include_self_link=False, transform_hrefs=False)
    blocks = [d["properties"], *d.get("assets", {}).values()]
    for block in blocks:
        code = block.get("proj:code")
        if "proj:epsg" not in block and isinstance(code, str) and code.upper().startswith("EPSG:"):
            block["proj:epsg"] = int(code.split(":")[1])
    return d


def _stack(
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
) -> xr.Dataset:
    import stackstac
    from rasterio.enums import Resampling

    keys = list(asset_keys.values())
    arr = stackstac.stack(
        [_item_dict(it) for it in items],
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
        gdal_env=_gdal_env(timeout),
    )
    crs = f"EPSG:{int(arr.attrs['crs'].split(':')[-1])}" if "crs" in arr.attrs else None
    res = arr.attrs.get("resolution")
    arr = arr.drop_vars([c for c in arr.coords if c not in ("time", "band", "y", "x")])
    ds = arr.to_dataset("band").rename({v: k for k, v in asset_keys.items()})
    ds = ds.assign_coords(time=pd.DatetimeIndex([_naive_utc(it.datetime) for it in items]))
    ds.attrs = {"crs": crs, "resolution": float(res) if res is not None else None}
    return ds


def _gdal_env(timeout: float | None):
    """stackstac's GDAL environment, with HTTP reads that give up after ``timeout`` s
    without a connection or without a byte (a mute data host), not a cap on slow ones."""
    import stackstac

    if timeout is None:
        return stackstac.DEFAULT_GDAL_ENV
    seconds = str(max(1, math.ceil(timeout)))  # GDAL takes whole seconds here
    limits = {
        "GDAL_HTTP_CONNECTTIMEOUT": seconds,
        "GDAL_HTTP_LOW_SPEED_TIME": seconds,
        "GDAL_HTTP_LOW_SPEED_LIMIT": "1",  # bytes/s
    }
    return stackstac.DEFAULT_GDAL_ENV.updated(always=limits)


def _naive_utc(t) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def _grid_from(like: xr.Dataset) -> tuple[int, float, tuple[float, float, float, float]]:
    """(epsg, resolution, bounds) of a cube made by this module (to load on its grid)."""
    crs, res = like.attrs.get("crs"), like.attrs.get("resolution")
    if not crs or not res:
        raise ValueError("like= needs a cube with 'crs' and 'resolution' attrs (from load_s2)")
    x, y, h = like.x.values, like.y.values, float(res) / 2
    bounds = (x.min() - h, y.min() - h, x.max() + h, y.max() + h)
    return int(str(crs).split(":")[-1]), float(res), tuple(float(b) for b in bounds)


# ----------------------------------------------------------------------------------------
# Angles
# ----------------------------------------------------------------------------------------


def solar_position(time, lon: float, lat: float) -> tuple[np.ndarray, np.ndarray]:
    """Sun zenith and azimuth (deg, azimuth clockwise from north) at UTC ``time``.

    NOAA Global Monitoring Laboratory "General Solar Position Calculations": Fourier
    series for the declination and the equation of time of Spencer, J. W. (1971),
    *Fourier series representation of the position of the sun*, Search 2(5), 172.
    Accuracy ~0.1–0.2°, ample for the sun-angle fallback; no refraction.
    """
    t = pd.DatetimeIndex(np.atleast_1d(pd.to_datetime(time)))
    t = t.tz_convert("UTC").tz_localize(None) if t.tz is not None else t
    hours = t.hour + t.minute / 60.0 + t.second / 3600.0
    gamma = 2.0 * np.pi / 365.0 * (t.dayofyear - 1 + (hours - 12.0) / 24.0)
    gamma = np.asarray(gamma, dtype=float)
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * np.cos(gamma)
        - 0.032077 * np.sin(gamma)
        - 0.014615 * np.cos(2 * gamma)
        - 0.040849 * np.sin(2 * gamma)
    )
    decl = (
        0.006918
        - 0.399912 * np.cos(gamma)
        + 0.070257 * np.sin(gamma)
        - 0.006758 * np.cos(2 * gamma)
        + 0.000907 * np.sin(2 * gamma)
        - 0.002697 * np.cos(3 * gamma)
        + 0.00148 * np.sin(3 * gamma)
    )
    true_solar_min = np.asarray(hours, dtype=float) * 60.0 + eqtime + 4.0 * lon
    ha = np.radians(true_solar_min / 4.0 - 180.0)
    phi = np.radians(lat)
    cos_z = np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(ha)
    zenith = np.degrees(np.arccos(np.clip(cos_z, -1.0, 1.0)))
    azimuth = np.degrees(
        np.arctan2(np.sin(ha), np.cos(ha) * np.sin(phi) - np.tan(decl) * np.cos(phi))
    )
    return zenith, (azimuth + 180.0) % 360.0


def _first(props: Mapping[str, Any], keys: Sequence[str]) -> float | None:
    for k in keys:
        v = props.get(k)
        if v is not None:
            return float(v)
    return None


def _relative_azimuth(sun_az: float, view_az: float) -> float:
    d = abs(sun_az - view_az) % 360.0
    return 360.0 - d if d > 180.0 else d


def _s2_angles(items: Sequence[pystac.Item], centre: tuple[float, float]) -> dict[str, np.ndarray]:
    tts, tto, psi, fallback = [], [], [], {}
    for it in items:
        p = it.properties
        used = []
        elev = p.get("view:sun_elevation")
        sz = 90.0 - float(elev) if elev is not None else _first(p, SUN_ZENITH_KEYS)
        sa = _first(p, SUN_AZIMUTH_KEYS)
        if sz is None or sa is None:
            z, a = solar_position(it.datetime, *centre)
            sz = float(z[0]) if sz is None else sz
            sa = float(a[0]) if sa is None else sa
            used.append("sun position computed from datetime and bbox centre")
        vz = _first(p, VIEW_ZENITH_KEYS)
        if vz is None:
            vz = 0.0
            used.append("view zenith 0 (nadir) assumed")
        va = _first(p, VIEW_AZIMUTH_KEYS)
        if va is None:
            used.append("relative azimuth 0 assumed")
        tts.append(sz)
        tto.append(vz)
        psi.append(0.0 if va is None else _relative_azimuth(sa, va))
        if used:
            fallback[it.id] = used
    if fallback:
        warnings.warn(
            f"sun/view angle metadata missing from STAC item(s), fallback used: {fallback}",
            UserWarning,
            stacklevel=3,
        )
    return {"tts": np.array(tts), "tto": np.array(tto), "psi": np.array(psi)}


def _bbox_centre(items: Sequence[pystac.Item], bbox) -> tuple[float, float]:
    if bbox is not None:
        return (0.5 * (bbox[0] + bbox[2]), 0.5 * (bbox[1] + bbox[3]))
    b = items[0].bbox
    return (0.5 * (b[0] + b[2]), 0.5 * (b[1] + b[3]))


def _mosaic_same_day(ds: xr.Dataset) -> xr.Dataset:
    """Merge items acquired on the same UTC day (adjacent tiles/slices of one pass).

    Per pixel the first valid (non-NaN) value in time order wins; per-date numeric
    coordinates (angles) are averaged; the time is that of the first item.
    """
    days = pd.DatetimeIndex(ds.time.values).normalize()
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


def _granule_angles(
    ds: xr.Dataset,
    items: Sequence[pystac.Item],
    key: str,
    template: xr.DataArray,
    timeout: float | None,
) -> xr.Dataset:
    """Per-pixel ``tts``/``tto``/``psi`` variables (lazy) from each item's tile metadata."""
    import dask.array as dsa

    from xr_physcube.io._angles import parse_tile_angles, pixel_angles, read_text

    tiles = []
    for it in items:
        href = it.assets[key].href
        try:
            tile = parse_tile_angles(read_text(href, timeout), view_band="B8")
        except (OSError, ValueError, ET_ParseError) as err:
            raise ValueError(
                f"cannot read angle grids of item {it.id!r} from {href}: {err}"
            ) from err
        crs = f"EPSG:{tile.epsg}"
        if ds.attrs.get("crs") and crs != ds.attrs["crs"]:
            raise ValueError(
                f"item {it.id!r}: tile angle grids are in {crs} but the cube is in "
                f"{ds.attrs['crs']}; load with epsg={tile.epsg} or angles='metadata'"
            )
        tiles.append(tile)
    x, y = ds.x.values, ds.y.values

    def block(name: str, block_info=None) -> np.ndarray:
        (t0, t1), (y0, y1), (x0, x1) = block_info[None]["array-location"]
        out = [pixel_angles(tiles[t], x[x0:x1], y[y0:y1])[name] for t in range(t0, t1)]
        return np.stack(out)

    data = template.data
    long = {"tts": "sun zenith", "tto": "view zenith (B8)", "psi": "relative azimuth"}
    out = {}
    for name in ("tts", "tto", "psi"):
        arr = dsa.map_blocks(
            block, name, chunks=data.chunks, dtype=np.float32, meta=np.array((), np.float32)
        )
        attrs = {"long_name": long[name], "units": "deg", "source": "tile metadata grids"}
        # NaN outside the item's footprint, so same-day mosaics take the right tile's angles
        out[name] = xr.DataArray(
            arr, dims=template.dims, coords=template.coords, attrs=attrs
        ).where(template.notnull())
    return ds.assign(out)


# ----------------------------------------------------------------------------------------
# Public loaders
# ----------------------------------------------------------------------------------------


def load_s2(
    catalog_or_url,
    bbox: Sequence[float] | None,
    time: str | Sequence[Any],
    *,
    collection: str = "sentinel-2-l2a",
    bands: Sequence[str] = BANDS,
    mask: bool = True,
    scl_invalid: Sequence[int] = SCL_INVALID,
    max_cloud_cover: float | None = None,
    epsg: int | None = None,
    resolution: float = 10.0,
    bounds: Sequence[float] | None = None,
    chunks: int | tuple[int, int] = 1024,
    resampling: str = "nearest",
    mosaic: bool = True,
    angles: str = "metadata",
    query: Mapping[str, Any] | None = None,
    sign: str | None = None,
    modifier: Callable | None = None,
    timeout: float | None = STAC_TIMEOUT_S,
) -> xr.Dataset:
    """Sentinel-2 L2A surface reflectance cube (lazy, dims time, y, x).

    Args:
        catalog_or_url: STAC API URL, ``pystac_client.Client`` or list of ``pystac.Item``.
        bbox: (west, south, east, north) in degrees (WGS84): search area and, unless
            ``bounds`` is given, output extent.
        time: "start/end" STAC datetime or (start, end).
        collection: STAC collection id.
        bands: band names from :data:`~xr_physcube.sensors.sentinel2.BANDS` (or B1, B9).
        mask: set pixels whose SCL class is in ``scl_invalid`` to NaN.
        max_cloud_cover: drop items with ``eo:cloud_cover`` above this (%).
        epsg: output CRS; default the items' (must then be the same for all items).
        resolution: output pixel size (CRS units, m); 20/60 m bands are resampled.
        bounds: output extent (minx, miny, maxx, maxy) in the output CRS.
        chunks: dask chunk size in y/x (int or (cy, cx)); one date per chunk.
        resampling: rasterio resampling name for all bands ("nearest", "bilinear", ...);
            SCL is always nearest.
        mosaic: merge items of the same UTC day (adjacent tiles): first valid pixel in
            time order after masking; per-date angle coordinates averaged (per-pixel
            ``angles="granule"`` variables: first valid pixel, like the bands).
        angles: "metadata": per-date coordinates ``tts``/``tto``/``psi`` from item
            properties (fallback in the module doc); "granule": per-pixel lazy variables
            ``(time, y, x)`` interpolated from the 5 km angle grids of each item's tile
            metadata XML (asset :data:`GRANULE_METADATA_KEYS`; view angles of B8;
            :mod:`xr_physcube.io._angles`), NaN outside the item's footprint. The XML is
            read at load time (one small file per item); the cube must be in the
            tile's CRS.
        query: STAC API ``query`` extension filter passed to the search.
        sign: "planetary_computer" to sign asset URLs (optional dependency).
        modifier: any ``pystac_client`` modifier callable (alternative to ``sign``).
        timeout: seconds to wait for the STAC API to connect and to answer each request,
            and for data reads to connect or receive a byte (:data:`STAC_TIMEOUT_S` by
            default; None: forever).

    Returns:
        Dataset with float32 reflectance variables named after ``bands``, ``SCL`` (float,
        NaN = no data), angles ``tts``, ``tto``, ``psi`` (deg; per-date coordinates, or
        per-pixel variables with ``angles="granule"``) and
        ``boa_offset`` (DN), attrs ``crs``, ``resolution``, ``collection``, ``items``.
    """
    bands = check_bands(list(bands))
    if angles not in ("metadata", "granule"):
        raise ValueError(f"angles must be 'metadata' or 'granule'; got {angles!r}")
    items = search_items(
        catalog_or_url,
        collection,
        bbox,
        time,
        query=query,
        sign=sign,
        modifier=modifier,
        timeout=timeout,
    )
    if max_cloud_cover is not None:
        items = [it for it in items if it.properties.get("eo:cloud_cover", 0) <= max_cloud_cover]
        if not items:
            raise StacSearchError(
                f"no STAC item in collection {collection!r} for bbox={bbox} and time={time!r} "
                f"with eo:cloud_cover <= {max_cloud_cover}"
            )
    names = [*bands, "SCL"] if mask else list(bands)
    table = {**S2_ASSET_KEYS, "granule_metadata": GRANULE_METADATA_KEYS}
    if angles == "granule":
        names.append("granule_metadata")
    keys = _resolve_assets(items, names, table)
    grid = dict(
        bbox=bbox, epsg=epsg, resolution=resolution, bounds=bounds, chunks=chunks, timeout=timeout
    )
    ds = _stack(items, {b: keys[b] for b in bands}, resampling=resampling, **grid)
    offsets = np.array(
        [
            0.0
            if it.properties.get("earthsearch:boa_offset_applied")
            else boa_offset(it.properties.get("s2:processing_baseline"))
            for it in items
        ],
        dtype=np.float32,
    )
    offset = xr.DataArray(offsets, dims="time")
    for b in bands:
        dn = ds[b]
        refl = ((dn + offset) / np.float32(QUANTIFICATION_VALUE)).astype(np.float32)
        ds[b] = refl.where(dn != NODATA_DN)
        ds[b].attrs = {"long_name": f"Sentinel-2 {b} surface reflectance", "units": "1"}
    if angles == "granule":
        ds = _granule_angles(
            ds, items, keys["granule_metadata"], template=ds[bands[0]], timeout=timeout
        )
    if mask:
        scl = _stack(items, {"SCL": keys["SCL"]}, resampling="nearest", **grid)["SCL"]
        scl = scl.where(scl != 0)
        invalid = scl.isnull() | scl.isin(list(scl_invalid))
        for b in bands:
            ds[b] = ds[b].where(~invalid)
        ds["SCL"] = scl
        ds["SCL"].attrs = {"long_name": "L2A scene classification", "masked": str(scl_invalid)}
    if angles == "metadata":
        per_date = _s2_angles(items, _bbox_centre(items, bbox))
        units = {"tts": "sun zenith", "tto": "view zenith", "psi": "relative azimuth"}
        ds = ds.assign_coords(
            {k: ("time", v, {"long_name": units[k], "units": "deg"}) for k, v in per_date.items()}
        )
    ds = ds.assign_coords(boa_offset=("time", offsets, {"units": "DN"}))
    ds.attrs.update(collection=collection, items=[it.id for it in items], sensor="Sentinel-2")
    return _mosaic_same_day(ds) if mosaic else ds


def load_s1(
    catalog_or_url,
    bbox: Sequence[float] | None,
    time: str | Sequence[Any],
    *,
    collection: str = "sentinel-1-rtc",
    polarisations: Sequence[str] = POLARISATIONS,
    db: bool = False,
    assets_in_db: bool = False,
    orbit_state: str | None = None,
    epsg: int | None = None,
    resolution: float = 10.0,
    bounds: Sequence[float] | None = None,
    like: xr.Dataset | None = None,
    chunks: int | tuple[int, int] | None = None,
    resampling: str = "bilinear",
    mosaic: bool = True,
    query: Mapping[str, Any] | None = None,
    sign: str | None = None,
    modifier: Callable | None = None,
    timeout: float | None = STAC_TIMEOUT_S,
) -> xr.Dataset:
    """Sentinel-1 backscatter cube (lazy, dims time, y, x): ``VV``, ``VH`` and ``theta``.

    Args:
        catalog_or_url, bbox, time, query, sign, modifier, timeout: as in :func:`load_s2`.
        collection: STAC collection of calibrated backscatter (e.g. "sentinel-1-rtc").
        polarisations: subset of :data:`~xr_physcube.sensors.sentinel1.POLARISATIONS`.
        db: return backscatter in dB (``10 log10``) instead of linear power.
        assets_in_db: the assets hold dB values (converted to linear first).
        orbit_state: keep only "ascending" or "descending" items (``sat:orbit_state``;
            any case).
        epsg, resolution, bounds, chunks: output grid as in :func:`load_s2` (chunks
            default 1024, or those of ``like``).
        like: a cube from :func:`load_s2`: use its CRS, resolution, extent and chunks.
        resampling: rasterio resampling for backscatter (bilinear averages linear power,
            or dB values with ``assets_in_db``: the conversion follows the resampling).
        mosaic: merge slices of the same UTC day (first valid pixel in time order).

    Returns:
        Dataset with float32 ``VV``/``VH`` (units "m2/m2" or "dB") and ``theta`` (deg), a
        per-pixel variable or a per-date coordinate (see module doc); attrs as S2.
    """
    pols = check_polarisations(list(polarisations))
    if orbit_state is not None:
        if str(orbit_state).lower() not in ("ascending", "descending"):
            raise ValueError(
                f"orbit_state must be 'ascending' or 'descending'; got {orbit_state!r}"
            )
        orbit_state = str(orbit_state).lower()
    items = search_items(
        catalog_or_url,
        collection,
        bbox,
        time,
        query=query,
        sign=sign,
        modifier=modifier,
        timeout=timeout,
    )
    if orbit_state is not None:
        items = [it for it in items if it.properties.get("sat:orbit_state") == orbit_state]
        if not items:
            raise StacSearchError(
                f"no {orbit_state} STAC item in collection {collection!r} for bbox={bbox} "
                f"and time={time!r}"
            )
    if like is not None:
        epsg, resolution, bounds = _grid_from(like)
        if chunks is None and like.chunks:
            chunks = (like.chunksizes["y"][0], like.chunksizes["x"][0])
    chunks = 1024 if chunks is None else chunks
    keys = _resolve_assets(items, pols, S1_ASSET_KEYS)
    grid = dict(
        bbox=bbox, epsg=epsg, resolution=resolution, bounds=bounds, chunks=chunks, timeout=timeout
    )
    ds = _stack(items, keys, resampling=resampling, **grid)
    for p in pols:
        da = ds[p]
        if assets_in_db and not db:
            da = xr.apply_ufunc(db_to_linear, da, dask="parallelized", output_dtypes=[np.float32])
        elif db and not assets_in_db:
            da = xr.apply_ufunc(linear_to_db, da, dask="parallelized", output_dtypes=[np.float32])
        ds[p] = da.astype(np.float32)
        ds[p].attrs = {"long_name": f"sigma0 {p}", "units": "dB" if db else "m2/m2"}
    common = set.intersection(*(set(it.assets) for it in items))
    inc_key = next((k for k in S1_ASSET_KEYS["theta"] if k in common), None)
    attrs = {"long_name": "incidence angle", "units": "deg"}
    if inc_key is not None:
        ds["theta"] = _stack(items, {"theta": inc_key}, resampling="bilinear", **grid)["theta"]
        ds["theta"].attrs = attrs
    else:
        theta = [_first(it.properties, S1_INCIDENCE_KEYS) for it in items]
        missing = [it.id for it, t in zip(items, theta, strict=True) if t is None]
        if missing:
            warnings.warn(
                f"no incidence angle in STAC item(s) {missing}: IW mid-swath "
                f"{S1_DEFAULT_INCIDENCE_DEG:.2f} deg assumed",
                UserWarning,
                stacklevel=2,
            )
        theta = [S1_DEFAULT_INCIDENCE_DEG if t is None else t for t in theta]
        ds = ds.assign_coords(theta=("time", np.array(theta), attrs))
    ds.attrs.update(collection=collection, items=[it.id for it in items], sensor="Sentinel-1")
    return _mosaic_same_day(ds) if mosaic else ds


def merge_cubes(s2: xr.Dataset, s1: xr.Dataset, tolerance: str | pd.Timedelta = "3D") -> xr.Dataset:
    """One multi-modal cube on the S2 grid and dates.

    Each S2 date gets the nearest S1 acquisition within ``tolerance`` (a pandas
    timedelta string, e.g. "3D"); S1 variables are NaN on dates with none. The same S1
    acquisition may serve several S2 dates. The S1 date used is kept as the coordinate
    ``s1_time`` (NaT where none). Space: both cubes must share the CRS; S1 pixels are
    taken at the nearest S2 pixel centre (within one S1 pixel), so load S1 with
    ``load_s1(..., like=s2)`` to have the exact S2 grid.
    """
    if s2.attrs.get("crs") and s1.attrs.get("crs") and s2.attrs["crs"] != s1.attrs["crs"]:
        raise ValueError(
            f"S1 cube CRS {s1.attrs['crs']} differs from S2 {s2.attrs['crs']}; "
            "load S1 with load_s1(..., like=s2)"
        )
    same = (
        s1.sizes["x"] == s2.sizes["x"]
        and s1.sizes["y"] == s2.sizes["y"]
        and np.allclose(s1.x.values, s2.x.values)
        and np.allclose(s1.y.values, s2.y.values)
    )
    if not same:
        res = float(s1.attrs.get("resolution") or abs(float(s1.x[1] - s1.x[0])))
        s1 = s1.sel(x=s2.x.values, y=s2.y.values, method="nearest", tolerance=res)
    s1 = s1.assign_coords(x=s2.x, y=s2.y)
    s1 = s1.assign_coords(s1_time=("time", s1.time.values))
    tol = pd.Timedelta(tolerance)
    s1 = s1.sortby("time").reindex(time=s2.time, method="nearest", tolerance=tol)
    out = xr.merge([s2, s1], compat="override", join="left", combine_attrs="override")
    out.attrs = {
        **s2.attrs,
        "s1_collection": s1.attrs.get("collection"),
        "s1_items": s1.attrs.get("items"),
        "merge_tolerance": str(tol),
    }
    return out


def load_cube(
    catalog_or_url,
    bbox: Sequence[float] | None,
    time: str | Sequence[Any],
    *,
    s2_collection: str = "sentinel-2-l2a",
    s1_collection: str = "sentinel-1-rtc",
    tolerance: str | pd.Timedelta = "3D",
    s1_kwargs: Mapping[str, Any] | None = None,
    **s2_kwargs: Any,
) -> xr.Dataset:
    """S2 + S1 multi-modal cube: :func:`load_s2`, then :func:`load_s1` on its grid
    (``like=s2``), then :func:`merge_cubes` (nearest S1 date within ``tolerance``).

    ``s2_kwargs`` go to :func:`load_s2` (``bands``, ``resolution``, ``bounds``,
    ``chunks``, ``sign`` …); ``s1_kwargs`` to :func:`load_s1` (``db``,
    ``orbit_state`` …). ``sign``/``modifier``/``timeout`` are passed to both searches.
    """
    s2 = load_s2(catalog_or_url, bbox, time, collection=s2_collection, **s2_kwargs)
    # signing applies to both; S2 filters (query, max_cloud_cover) do not apply to S1
    s1_kw = {k: s2_kwargs[k] for k in ("sign", "modifier", "timeout") if k in s2_kwargs}
    s1_kw.update(s1_kwargs or {})
    s1 = load_s1(catalog_or_url, bbox, time, collection=s1_collection, like=s2, **s1_kw)
    return merge_cubes(s2, s1, tolerance=tolerance)
