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
    from item properties (see :data:`xr_physcube.io.geometry.SUN_ZENITH_KEYS` …).
    Fallback where absent (with a :class:`UserWarning` naming the items): the sun
    position computed from the item datetime at the bbox centre (NOAA solar-position
    equations, Spencer 1971), view zenith 0° (nadir) and, without a view azimuth,
    ``psi`` = 0°. With
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

The stages live in their own modules: search (:mod:`xr_physcube.io._search`), stacking
(:mod:`xr_physcube.io._stack`) and geometry (:mod:`xr_physcube.io.geometry`).

Planetary Computer assets need signed URLs: pass ``sign="planetary_computer"`` (needs
the optional ``planetary-computer`` package) or any ``modifier`` callable accepted by
``pystac_client.Client.open``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xr_physcube.exceptions import (
    InvalidArgumentError,
    StacSearchError,
)
from xr_physcube.io._search import STAC_TIMEOUT_S, check_grid_options, search_items
from xr_physcube.io._stack import (
    S1_ASSET_KEYS,
    S2_ASSET_KEYS,
    mosaic_same_day,
    resolve_assets,
    stack_items,
)
from xr_physcube.io.geometry import (
    GRANULE_METADATA_KEYS,
    S1_DEFAULT_INCIDENCE_DEG,
    S1_INCIDENCE_KEYS,
    bbox_centre,
    first_property,
    granule_angles,
    item_angles,
    solar_position,
)
from xr_physcube.io.georef import grid_from
from xr_physcube.sensors.sentinel1 import (
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
    engine: str = "stackstac",
    read_errors: str = "raise",
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
        engine: "stackstac" (default) or "odc-stac" (maintained by the Open Data Cube
            project; the ``odc-stac`` extra): the same cube on the same ``bounds``.
        read_errors: "raise" (default), or "nan": a failed asset read is retried
            (3 tries, 0.5 s then 1 s apart) and then gives NaN with a
            :class:`~xr_physcube.exceptions.ReadFailureWarning`, so a tile job survives
            a flaky image host (odc-stac: no retry, ``fail_on_error=False``).
        resampling: rasterio resampling name for all bands ("nearest", "bilinear", ...);
            SCL is always nearest.
        mosaic: merge items of the same local solar day (adjacent tiles of one pass;
            UTC + longitude / 15 h at the bbox centre): first valid pixel in time order
            after masking; per-date angle coordinates averaged (per-pixel
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
    check_grid_options(resolution, chunks, timeout)
    if angles not in ("metadata", "granule"):
        raise InvalidArgumentError(f"angles must be 'metadata' or 'granule'; got {angles!r}")
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
    keys = resolve_assets(items, names, table)
    grid = dict(
        bbox=bbox, epsg=epsg, resolution=resolution, bounds=bounds, chunks=chunks,
        timeout=timeout, engine=check_engine(engine),
        read_errors=check_read_errors(read_errors),
    )  # fmt: skip
    ds = stack_items(items, {b: keys[b] for b in bands}, resampling=resampling, **grid)
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
        ds = granule_angles(
            ds, items, keys["granule_metadata"], template=ds[bands[0]], timeout=timeout
        )
    if mask:
        scl = stack_items(items, {"SCL": keys["SCL"]}, resampling="nearest", **grid)["SCL"]
        scl = scl.where(scl != 0)
        invalid = scl.isnull() | scl.isin(list(scl_invalid))
        for b in bands:
            ds[b] = ds[b].where(~invalid)
        ds["SCL"] = scl
        ds["SCL"].attrs = {"long_name": "L2A scene classification", "masked": str(scl_invalid)}
    if angles == "metadata":
        per_date = item_angles(items, bbox_centre(items, bbox))
        names = {"tts": "sun zenith", "tto": "view zenith", "psi": "relative azimuth"}
        angle = {k: {"long_name": names[k], "units": "degree"} for k in names}
        ds = ds.assign_coords({k: ("time", v, angle[k]) for k, v in per_date.items()})
    ds = ds.assign_coords(boa_offset=("time", offsets, {"units": "DN"}))
    ds.attrs.update(collection=collection, items=[it.id for it in items], sensor="Sentinel-2")
    return mosaic_same_day(ds, bbox_centre(items, bbox)[0]) if mosaic else ds


def load_s1(
    catalog_or_url,
    bbox: Sequence[float] | None,
    time: str | Sequence[Any],
    *,
    collection: str = "sentinel-1-rtc",
    polarisations: Sequence[str] = POLARISATIONS,
    db: bool = False,
    assets_in_db: bool = False,
    radiometry: str = "auto",
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
    engine: str = "stackstac",
    read_errors: str = "raise",
) -> xr.Dataset:
    """Sentinel-1 backscatter cube (lazy, dims time, y, x): ``VV``, ``VH`` and ``theta``.

    Args:
        catalog_or_url, bbox, time, query, sign, modifier, timeout: as in :func:`load_s2`.
        collection: STAC collection of calibrated backscatter (e.g. "sentinel-1-rtc").
        polarisations: subset of :data:`~xr_physcube.sensors.sentinel1.POLARISATIONS`.
        db: return backscatter in dB (``10 log10``) instead of linear power.
        assets_in_db: the assets hold dB values (converted to linear first).
        radiometry: what the assets hold: "sigma0" (backscatter per unit ground area,
            what the models take), "gamma0" (per unit area normal to the look
            direction; radiometrically terrain-corrected products such as Planetary
            Computer's and CDSE's ``sentinel-1-rtc``), or "auto": gamma0 if the
            collection id contains "rtc", else sigma0. Gamma0 is converted to sigma0 on
            the ellipsoid, ``sigma0 = gamma0 cos(theta)`` (Small 2011, IEEE TGRS 49(8),
            eq. 2 on flat ground): -1.03 dB at theta = 38 deg.
        orbit_state: keep only "ascending" or "descending" items (``sat:orbit_state``;
            any case).
        epsg, resolution, bounds, chunks: output grid as in :func:`load_s2` (chunks
            default 1024, or those of ``like``).
        like: any georeferenced Dataset (a cube from :func:`load_s2`, or one with a
            rioxarray CRS): use its CRS, resolution, extent and chunks.
        resampling: rasterio resampling for backscatter (bilinear averages linear power,
            or dB values with ``assets_in_db``: the conversion follows the resampling).
        mosaic: merge slices of the same local solar day (first valid pixel in time
            order), as in :func:`load_s2`.
        engine, read_errors: as in :func:`load_s2`.

    Returns:
        Dataset with float32 sigma0 ``VV``/``VH`` (units "1" or "dB"; attrs
        ``radiometry="sigma0"`` and ``source_radiometry``) and ``theta`` (degree), a
        per-pixel variable or a per-date coordinate (see module doc); attrs as S2.
    """
    pols = check_polarisations(list(polarisations))
    source = source_radiometry(radiometry, collection)
    check_grid_options(resolution, chunks, timeout)
    if orbit_state is not None:
        if str(orbit_state).lower() not in ("ascending", "descending"):
            raise InvalidArgumentError(
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
        epsg, resolution, bounds = grid_from(like)
        if chunks is None and like.chunks:
            chunks = (like.chunksizes["y"][0], like.chunksizes["x"][0])
    chunks = 1024 if chunks is None else chunks
    keys = resolve_assets(items, pols, S1_ASSET_KEYS)
    grid = dict(
        bbox=bbox, epsg=epsg, resolution=resolution, bounds=bounds, chunks=chunks,
        timeout=timeout, engine=check_engine(engine),
        read_errors=check_read_errors(read_errors),
    )  # fmt: skip
    ds = stack_items(items, keys, resampling=resampling, **grid)
    common = set.intersection(*(set(it.assets) for it in items))
    inc_key = next((k for k in S1_ASSET_KEYS["theta"] if k in common), None)
    attrs = {"long_name": "incidence angle", "units": "degree"}
    if inc_key is not None:
        ds["theta"] = stack_items(items, {"theta": inc_key}, resampling="bilinear", **grid)["theta"]
        ds["theta"].attrs = attrs
    else:
        theta = [first_property(it.properties, S1_INCIDENCE_KEYS) for it in items]
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
    for p in pols:
        da = ds[p]
        if assets_in_db:
            da = xr.apply_ufunc(db_to_linear, da, dask="parallelized", output_dtypes=[np.float32])
        if source == "gamma0":
            da = gamma0_to_sigma0(da, ds["theta"])
        if db:
            da = xr.apply_ufunc(  # no valid look (sigma0 <= 0): NaN, not a value
                linear_to_db,
                da,
                kwargs={"mask_invalid": True},
                dask="parallelized",
                output_dtypes=[np.float32],
            )
        ds[p] = da.astype(np.float32)
        ds[p].attrs = {
            "long_name": f"Sentinel-1 {p} backscatter coefficient sigma0"
            + (" (from RTC gamma0 x cos(theta))" if source == "gamma0" else ""),
            "units": "dB" if db else "1",
            "radiometry": "sigma0",
            "source_radiometry": source,
        }
    ds.attrs.update(collection=collection, items=[it.id for it in items], sensor="Sentinel-1")
    return mosaic_same_day(ds, bbox_centre(items, bbox)[0]) if mosaic else ds


ENGINES = ("stackstac", "odc-stac")
"""How items become a cube: stackstac (default) or odc-stac (maintained, same grid)."""


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise InvalidArgumentError(f"engine must be one of {ENGINES}; got {engine!r}")
    if engine == "odc-stac":
        from xr_physcube._extras import require

        require("odc.stac", "engine='odc-stac'")
    return engine


def check_read_errors(read_errors: str) -> str:
    if read_errors not in ("raise", "nan"):
        raise InvalidArgumentError(f"read_errors must be 'raise' or 'nan'; got {read_errors!r}")
    return read_errors


RADIOMETRIES = ("sigma0", "gamma0")


def source_radiometry(radiometry: str, collection: str) -> str:
    """ "sigma0" or "gamma0": what a collection's assets hold (``radiometry="auto"``:
    gamma0 for a radiometrically terrain-corrected, "rtc", collection)."""
    if radiometry == "auto":
        return "gamma0" if "rtc" in collection.lower() else "sigma0"
    if radiometry not in RADIOMETRIES:
        raise InvalidArgumentError(
            f"radiometry must be 'auto', 'sigma0' or 'gamma0'; got {radiometry!r}"
        )
    return radiometry


def gamma0_to_sigma0(gamma0: xr.DataArray, theta_deg: xr.DataArray) -> xr.DataArray:
    """Linear sigma0 from linear gamma0 and the incidence angle (degree) on the
    ellipsoid: ``sigma0 = gamma0 cos(theta)`` (Small 2011, IEEE TGRS 49(8):3081)."""
    return gamma0 * np.cos(np.deg2rad(theta_deg)).astype(np.float32)


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
        raise InvalidArgumentError(
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
    ``orbit_state`` …). ``sign``/``modifier``/``timeout``/``engine`` apply to both.
    """
    s2 = load_s2(catalog_or_url, bbox, time, collection=s2_collection, **s2_kwargs)
    # signing applies to both; S2 filters (query, max_cloud_cover) do not apply to S1
    shared = ("sign", "modifier", "timeout", "engine", "read_errors")
    s1_kw = {k: s2_kwargs[k] for k in shared if k in s2_kwargs}
    s1_kw.update(s1_kwargs or {})
    s1 = load_s1(catalog_or_url, bbox, time, collection=s1_collection, like=s2, **s1_kw)
    return merge_cubes(s2, s1, tolerance=tolerance)
