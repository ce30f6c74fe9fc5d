"""A tiny, real, local STAC catalog of Sentinel-2 L2A and Sentinel-1 scenes for the tests.

Everything here is written independently of :mod:`xr_physcube.io.stac`: the expected
reflectances are chosen first and encoded to L2A digital numbers with the ESA rule
``DN = reflectance * 10000 - BOA_ADD_OFFSET`` (offset -1000 for processing baseline
>= 04.00, 0 before), written by hand below, not with the package's helpers.

Layout (UTM 31N, EPSG:32631, 32 x 32 px at 10 m; 20 m bands and SCL at 16 x 16 px):

- collection ``sentinel-2-l2a``: 3 dates, Earth Search asset keys ("blue", ..., "scl");
  date 1 baseline 05.10 with ``view:*`` angles; date 2 baseline 05.10 with Planetary
  Computer style ``s2:mean_solar_*`` angles and a cloud (SCL 9) + shadow (SCL 3);
  date 3 baseline 03.01 (no BOA offset) and no angle metadata at all (fallback); every
  item also has a ``granule_metadata`` asset (tile metadata XML with 5 km angle grids).
- collection ``sentinel-1-rtc``: 2 dates, assets "vv", "vh" (linear sigma0, float32);
  date 1 has ``view:incidence_angle``, date 2 has none (fallback).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pystac
import rasterio
from pyproj import Transformer
from pystac.extensions.eo import Band, EOExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.sat import OrbitState, SatExtension
from pystac.extensions.view import ViewExtension
from rasterio.transform import from_origin

EPSG = 32631
ORIGIN = (360_000.0, 4_830_320.0)  # upper-left corner (x, y), metres
SIZE = 32
RES = 10.0
S2_COLLECTION = "sentinel-2-l2a"
S1_COLLECTION = "sentinel-1-rtc"
S1_THETA_COLLECTION = "sentinel-1-rtc-incidence"  # one item with a per-pixel incidence asset

# Earth Search v1 asset key -> (our band name, native resolution m)
S2_ASSETS = {
    "blue": ("B2", 10),
    "green": ("B3", 10),
    "red": ("B4", 10),
    "rededge1": ("B5", 20),
    "rededge2": ("B6", 20),
    "rededge3": ("B7", 20),
    "nir": ("B8", 10),
    "nir08": ("B8A", 20),
    "swir16": ("B11", 20),
    "swir22": ("B12", 20),
}
# Reflectance of the scene per band (a vegetated field), scaled per date below.
BASE_REFLECTANCE = {
    "B2": 0.04,
    "B3": 0.07,
    "B4": 0.05,
    "B5": 0.11,
    "B6": 0.25,
    "B7": 0.31,
    "B8": 0.34,
    "B8A": 0.36,
    "B11": 0.22,
    "B12": 0.12,
}
S2_DATES = (
    dt.datetime(2024, 5, 1, 10, 56, tzinfo=dt.UTC),
    dt.datetime(2024, 5, 11, 10, 56, tzinfo=dt.UTC),
    dt.datetime(2024, 5, 21, 10, 56, tzinfo=dt.UTC),
)
S2_BASELINES = ("05.10", "05.10", "03.01")
S2_OFFSET_DN = (1000, 1000, 0)  # -BOA_ADD_OFFSET per date (ESA L2A PSD), written by hand
DATE_FACTOR = (1.0, 1.1, 1.2)
# Angle metadata per date: date 1 STAC view extension, date 2 PC-style s2:*, date 3 none.
S2_SUN_ELEVATION_1, S2_SUN_AZIMUTH_1 = 60.0, 150.0
S2_VIEW_INCIDENCE_1, S2_VIEW_AZIMUTH_1 = 5.0, 290.0
S2_SUN_ZENITH_2, S2_SUN_AZIMUTH_2 = 28.0, 155.0
S2_VIEW_ZENITH_2, S2_VIEW_AZIMUTH_2 = 7.0, 100.0
# Cloud (SCL 9) and its shadow (SCL 3) on date 2, in 20 m SCL pixels (rows, cols).
CLOUD_SCL = (slice(2, 6), slice(2, 6))
SHADOW_SCL = (slice(8, 10), slice(2, 6))

# Tile metadata (MTD_TL.xml) angle grids: 23 x 23 nodes every 5 km from the tile's
# upper-left corner (real 31TCJ corner). Fields are linear in the node indices (row r,
# col c), so bilinear interpolation reproduces them exactly at any pixel centre.
TILE_UL = (300_000.0, 4_900_020.0)
TILE_STEP = 5000.0
TILE_NODES = 23


def tile_angle_fields(date_index: int, r, c) -> dict[str, np.ndarray]:
    """Sun zenith/azimuth and B8 view zenith/azimuth (deg) at node coordinates (r, c)."""
    r, c = np.asarray(r, float), np.asarray(c, float)
    return {
        "sun_zenith": 30.0 + date_index + 0.5 * c - 0.25 * r,
        "sun_azimuth": 150.0 + 0.3 * c + 0.1 * r,
        "view_zenith": 2.0 + 0.4 * c + 0.2 * r,
        "view_azimuth": 100.0 + 0.2 * c - 0.3 * r,
    }


def _values_list(grid: np.ndarray) -> str:
    rows = "".join(
        "<VALUES>" + " ".join("NaN" if np.isnan(v) else f"{v:.6f}" for v in row) + "</VALUES>"
        for row in grid
    )
    step = f'unit="m">{TILE_STEP:.0f}'
    steps = f"<COL_STEP {step}</COL_STEP><ROW_STEP {step}</ROW_STEP>"
    return f"{steps}<Values_List>{rows}</Values_List>"


def tile_metadata_xml(date_index: int) -> str:
    """A Level-2A ``MTD_TL.xml`` reduced to Geometric_Info (the part read for angles).

    View grids: B8 (bandId 7) split over two detectors (columns <= 12 and >= 12, overlap
    at column 12), and a B1 grid (bandId 0) of 50 deg that must not be used.
    """
    r, c = np.meshgrid(np.arange(TILE_NODES), np.arange(TILE_NODES), indexing="ij")
    f = tile_angle_fields(date_index, r, c)
    views = []
    for det, keep in ((1, c <= 12), (2, c >= 12)):
        z = np.where(keep, f["view_zenith"], np.nan)
        a = np.where(keep, f["view_azimuth"], np.nan)
        views.append(
            f'<Viewing_Incidence_Angles_Grids bandId="7" detectorId="{det}">'
            f"<Zenith>{_values_list(z)}</Zenith><Azimuth>{_values_list(a)}</Azimuth>"
            "</Viewing_Incidence_Angles_Grids>"
        )
    b1 = np.full((TILE_NODES, TILE_NODES), 50.0)
    views.append(
        '<Viewing_Incidence_Angles_Grids bandId="0" detectorId="1">'
        f"<Zenith>{_values_list(b1)}</Zenith><Azimuth>{_values_list(b1)}</Azimuth>"
        "</Viewing_Incidence_Angles_Grids>"
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<n1:Level-2A_Tile_ID xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/'
        'S2_PDI_Level-2A_Tile_Metadata.xsd"><n1:Geometric_Info>'
        '<Tile_Geocoding metadataLevel="Brief"><HORIZONTAL_CS_NAME>WGS84 / UTM zone 31N'
        f"</HORIZONTAL_CS_NAME><HORIZONTAL_CS_CODE>EPSG:{EPSG}</HORIZONTAL_CS_CODE>"
        '<Size resolution="10"><NROWS>10980</NROWS><NCOLS>10980</NCOLS></Size>'
        f'<Geoposition resolution="10"><ULX>{TILE_UL[0]:.0f}</ULX><ULY>{TILE_UL[1]:.0f}</ULY>'
        "<XDIM>10</XDIM><YDIM>-10</YDIM></Geoposition></Tile_Geocoding><Tile_Angles>"
        f"<Sun_Angles_Grid><Zenith>{_values_list(f['sun_zenith'])}</Zenith>"
        f"<Azimuth>{_values_list(f['sun_azimuth'])}</Azimuth></Sun_Angles_Grid>"
        + "".join(views)
        + "</Tile_Angles></n1:Geometric_Info></n1:Level-2A_Tile_ID>\n"
    )


S1_DATES = (
    dt.datetime(2024, 5, 2, 17, 50, tzinfo=dt.UTC),
    dt.datetime(2024, 5, 12, 17, 50, tzinfo=dt.UTC),
)
S1_VV = (0.08, 0.05)  # linear sigma0 per date (spatially uniform + a gradient below)
S1_VH = (0.015, 0.01)
S1_INCIDENCE_1 = 39.2
S1_THETA = (S1_INCIDENCE_1, 37.55)  # per date: the item's angle, then the IW mid-swath fallback


def gamma0_to_sigma0_factor(date_index: int) -> float:
    """The S1 assets are RTC gamma0 (like Planetary Computer's ``sentinel-1-rtc``): the
    loader returns sigma0 = gamma0 cos(theta)."""
    return float(np.cos(np.deg2rad(S1_THETA[date_index])))


def bbox_lonlat() -> tuple[float, float, float, float]:
    """WGS84 bbox of the 320 m x 320 m scene, shrunk by 1 m so it stays inside."""
    t = Transformer.from_crs(EPSG, 4326, always_xy=True)
    x0, y1 = ORIGIN
    x1, y0 = x0 + SIZE * RES, y1 - SIZE * RES
    xs, ys = t.transform([x0 + 1, x1 - 1, x0 + 1, x1 - 1], [y0 + 1, y0 + 1, y1 - 1, y1 - 1])
    return (min(xs), min(ys), max(xs), max(ys))


def expected_s2_reflectance(band: str, date_index: int) -> float:
    """The reflectance the loader must return for ``band`` on a date (before masking)."""
    return round(BASE_REFLECTANCE[band] * DATE_FACTOR[date_index], 4)


def s1_vv_field(date_index: int) -> np.ndarray:
    """Linear VV gamma0 (the assets' values) on the 20 m S1 grid (16 x 16), a west-east
    gradient."""
    g = np.linspace(0.8, 1.2, SIZE // 2, dtype=np.float32)
    return (S1_VV[date_index] * np.broadcast_to(g, (SIZE // 2, SIZE // 2))).astype(np.float32)


def _write_tif(path: Path, data: np.ndarray, res: float, nodata) -> None:
    profile = {
        "driver": "GTiff",
        "height": data.shape[0],
        "width": data.shape[1],
        "count": 1,
        "dtype": data.dtype,
        "crs": f"EPSG:{EPSG}",
        "transform": from_origin(ORIGIN[0], ORIGIN[1], res, res),
        "nodata": nodata,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def _geometry() -> tuple[dict, list[float]]:
    t = Transformer.from_crs(EPSG, 4326, always_xy=True)
    x0, y1 = ORIGIN
    x1, y0 = x0 + SIZE * RES, y1 - SIZE * RES
    ring = [t.transform(x, y) for x, y in [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]]
    lons, lats = zip(*ring, strict=True)
    return (
        {"type": "Polygon", "coordinates": [[list(p) for p in ring]]},
        [min(lons), min(lats), max(lons), max(lats)],
    )


def _proj(obj, res: float) -> None:
    n = int(SIZE * RES / res)
    proj = ProjectionExtension.ext(obj, add_if_missing=isinstance(obj, pystac.Item))
    proj.epsg = EPSG
    proj.shape = [n, n]
    proj.transform = [res, 0.0, ORIGIN[0], 0.0, -res, ORIGIN[1], 0.0, 0.0, 1.0]


def _s2_item(root: Path, i: int) -> pystac.Item:
    geom, bbox = _geometry()
    item_id = f"S2B_31TCJ_{S2_DATES[i]:%Y%m%d}_0_L2A"
    item = pystac.Item(item_id, geom, bbox, S2_DATES[i], {"platform": "sentinel-2b"})
    item.properties["s2:processing_baseline"] = S2_BASELINES[i]
    item.properties["eo:cloud_cover"] = 3.0 if i == 1 else 0.0
    EOExtension.ext(item, add_if_missing=True)
    _proj(item, RES)
    if i == 0:
        view = ViewExtension.ext(item, add_if_missing=True)
        view.sun_elevation, view.sun_azimuth = S2_SUN_ELEVATION_1, S2_SUN_AZIMUTH_1
        view.incidence_angle, view.azimuth = S2_VIEW_INCIDENCE_1, S2_VIEW_AZIMUTH_1
    elif i == 1:
        item.properties["s2:mean_solar_zenith"] = S2_SUN_ZENITH_2
        item.properties["s2:mean_solar_azimuth"] = S2_SUN_AZIMUTH_2
        item.properties["s2:mean_incidence_zenith_angle_b8"] = S2_VIEW_ZENITH_2
        item.properties["s2:mean_incidence_azimuth_angle_b8"] = S2_VIEW_AZIMUTH_2
    folder = root / "data" / item_id
    folder.mkdir(parents=True, exist_ok=True)
    for key, (band, res) in S2_ASSETS.items():
        n = int(SIZE * RES / res)
        dn = round(expected_s2_reflectance(band, i) * 10000) + S2_OFFSET_DN[i]
        data = np.full((n, n), dn, dtype=np.uint16)
        data[0, -1] = 0  # one no-data pixel (DN 0) in the top-right corner of every band
        path = folder / f"{key}.tif"
        _write_tif(path, data, res, 0)
        asset = pystac.Asset(
            str(path), media_type=pystac.MediaType.COG, roles=["data", "reflectance"]
        )
        item.add_asset(key, asset)
        EOExtension.ext(asset).bands = [Band.create(name=band)]
        _proj(asset, res)
    scl = np.full((SIZE // 2, SIZE // 2), 4, dtype=np.uint8)  # vegetation
    if i == 1:
        scl[CLOUD_SCL] = 9
        scl[SHADOW_SCL] = 3
    path = folder / "scl.tif"
    _write_tif(path, scl, 20.0, 0)
    asset = pystac.Asset(str(path), media_type=pystac.MediaType.COG, roles=["data"])
    item.add_asset("scl", asset)
    _proj(asset, 20.0)
    path = folder / "granule_metadata.xml"
    path.write_text(tile_metadata_xml(i), encoding="utf-8")
    item.add_asset(
        "granule_metadata",
        pystac.Asset(str(path), media_type=pystac.MediaType.XML, roles=["metadata"]),
    )
    return item


def s1_incidence_field() -> np.ndarray:
    """Per-pixel incidence angle (deg) on the 20 m grid: near range west, far range east."""
    return np.broadcast_to(np.linspace(35.0, 36.5, SIZE // 2, dtype=np.float32), (16, 16)).copy()


def _s1_item(root: Path, i: int, incidence_asset: bool = False) -> pystac.Item:
    geom, bbox = _geometry()
    item_id = f"S1A_IW_GRDH_1SDV_{S1_DATES[i]:%Y%m%dT%H%M%S}_rtc" + (
        "_inc" if incidence_asset else ""
    )
    props = {
        "platform": "sentinel-1a",
        "sar:instrument_mode": "IW",
        "sar:polarizations": ["VV", "VH"],
        "sar:product_type": "GRD",
    }
    item = pystac.Item(item_id, geom, bbox, S1_DATES[i], props)
    _proj(item, 20.0)
    sat = SatExtension.ext(item, add_if_missing=True)
    sat.orbit_state, sat.relative_orbit = OrbitState.ASCENDING, 132
    if i == 0:
        ViewExtension.ext(item, add_if_missing=True).incidence_angle = S1_INCIDENCE_1
    folder = root / "data" / item_id
    folder.mkdir(parents=True, exist_ok=True)
    vv = s1_vv_field(i)
    vh = (vv * (S1_VH[i] / S1_VV[i])).astype(np.float32)
    arrays = [("vv", vv), ("vh", vh)]
    if incidence_asset:
        arrays.append(("incidence_angle", s1_incidence_field()))
    for key, data in arrays:
        path = folder / f"{key}.tif"
        _write_tif(path, data, 20.0, float("nan"))
        asset = pystac.Asset(str(path), media_type=pystac.MediaType.COG, roles=["data"])
        item.add_asset(key, asset)
    return item


def _collection(cid: str, items: list[pystac.Item]) -> pystac.Collection:
    _, bbox = _geometry()
    times = [it.datetime for it in items]
    extent = pystac.Extent(
        pystac.SpatialExtent([bbox]), pystac.TemporalExtent([[min(times), max(times)]])
    )
    col = pystac.Collection(cid, f"test {cid}", extent, license="CC-BY-4.0")
    col.add_items(items)
    return col


def build_catalog(root: Path) -> Path:
    """Write the GeoTIFFs and the static catalog under ``root``; return catalog.json's path."""
    root = Path(root)
    cat = pystac.Catalog("xr-physcube-test", "Tiny Sentinel-1/2 catalog for xr_physcube tests")
    cat.add_child(_collection(S2_COLLECTION, [_s2_item(root, i) for i in range(3)]))
    cat.add_child(_collection(S1_COLLECTION, [_s1_item(root, i) for i in range(2)]))
    cat.add_child(_collection(S1_THETA_COLLECTION, [_s1_item(root, 0, incidence_asset=True)]))
    cat.normalize_hrefs(str(root / "stac"))
    cat.make_all_asset_hrefs_absolute()
    cat.save(pystac.CatalogType.SELF_CONTAINED)
    return root / "stac" / "catalog.json"


def _patch_cors_middleware() -> None:
    """Work around stac-fastapi.api 5.2.1 vs starlette >= 0.47 (seen with 1.10).

    ``stac_fastapi.api.middleware.CORSMiddleware`` passes its arguments to starlette's
    ``CORSMiddleware`` positionally; starlette added ``allow_private_network`` before
    ``expose_headers``, so ``max_age`` (600) lands in ``expose_headers`` and every
    request fails with ``TypeError: can only join an iterable``. Pass them by keyword.
    """
    from stac_fastapi.api import middleware
    from starlette.middleware.cors import CORSMiddleware as Starlette

    def init(self, app, allow_origins=("*",), allow_methods=("OPTIONS", "POST", "GET"),
             allow_headers=("Content-Type",), allow_credentials=False,
             allow_origin_regex=None, expose_headers=(), max_age=600):  # fmt: skip
        Starlette.__init__(
            self,
            app,
            allow_origins=allow_origins,
            allow_methods=allow_methods,
            allow_headers=allow_headers,
            allow_credentials=allow_credentials,
            allow_origin_regex=allow_origin_regex,
            expose_headers=expose_headers,
            max_age=max_age,
        )

    middleware.CORSMiddleware.__init__ = init


def _exit_with_parent(parent_pid: int, poll_s: float = 0.5) -> None:
    """Exit this process as soon as its parent ``parent_pid`` is gone (e.g. pytest killed
    with SIGKILL, when the fixture's teardown cannot run), so no server outlives the
    test session. The launcher passes its pid: a parent that died before this check
    started is then noticed too."""
    import os
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def serve(catalog_json: str, port: int, parent_pid: int | None = None) -> None:
    """Serve ``catalog_json`` as a STAC API with stac-fastapi-static on 127.0.0.1:port.

    stac-fastapi-static rewrites local asset hrefs to URLs under the API root
    (``<catalog dir>/../data/x.tif`` -> ``http://127.0.0.1:port/data/x.tif``) but does not
    serve the files; the GeoTIFFs are served from the same app at ``/data`` with
    starlette's ``StaticFiles`` (HTTP range requests), as a cloud bucket would.
    With ``parent_pid`` the server exits when that process (its launcher) dies.
    """
    import os

    if parent_pid is not None:
        _exit_with_parent(parent_pid)
    import uvicorn
    from starlette.staticfiles import StaticFiles

    os.environ["CATALOG_HREF"] = str(catalog_json)
    os.environ["RELOAD"] = "false"
    os.environ["LOG_LEVEL"] = "warning"
    _patch_cors_middleware()
    from stac_fastapi.static.app import app

    data_dir = Path(catalog_json).resolve().parent.parent / "data"
    app.mount("/data", StaticFiles(directory=data_dir), name="data")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    import sys

    serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else None)
