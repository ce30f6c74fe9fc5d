"""STAC loading: a real STAC API on loopback -> dask cubes -> merge -> to_zarr -> reopen.

The catalog (``stac_testdata.py``) is written with rasterio/pystac and served by
stac-fastapi-static (fixture ``stac_api_url``). Expected values are those the test data
were encoded from (reflectance chosen first, DN written with the ESA L2A rule by hand),
not computed by the loader.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import stac_testdata as td
import xarray as xr

from xr_physcube.exceptions import InvalidArgumentError
from xr_physcube.io.stac import (
    StacSearchError,
    load_cube,
    load_s1,
    load_s2,
    merge_cubes,
    search_items,
    solar_position,
)
from xr_physcube.sensors.sentinel2 import BANDS

TIME = "2024-05-01/2024-05-31"
BOUNDS = (
    td.ORIGIN[0],
    td.ORIGIN[1] - td.SIZE * td.RES,
    td.ORIGIN[0] + td.SIZE * td.RES,
    td.ORIGIN[1],
)
CLOUD_10M = np.kron(np.pad(np.ones((4, 4)), ((2, 10), (2, 10))), np.ones((2, 2))).astype(
    bool
)  # SCL rows/cols 2..5 at 20 m -> 4..11 at 10 m
SHADOW_10M = np.kron(np.pad(np.ones((2, 4)), ((8, 6), (2, 10))), np.ones((2, 2))).astype(bool)


@pytest.fixture(scope="module")
def s2(stac_api_url):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cube = load_s2(stac_api_url, td.bbox_lonlat(), TIME, bounds=BOUNDS, chunks=16)
    cube.attrs["_warnings"] = [str(w.message) for w in caught]
    return cube


@pytest.fixture(scope="module")
def s2_values(s2):
    return s2.compute()


@pytest.fixture(scope="module")
def s1(stac_api_url, s2):
    with pytest.warns(UserWarning, match="IW mid-swath 37.55 deg"):
        return load_s1(stac_api_url, td.bbox_lonlat(), TIME, like=s2)


def test_server_is_a_stac_api(stac_api_url):
    from pystac_client import Client

    client = Client.open(stac_api_url)
    assert client.conforms_to("ITEM_SEARCH")
    ids = {c.id for c in client.get_collections()}
    assert ids == {td.S2_COLLECTION, td.S1_COLLECTION, td.S1_THETA_COLLECTION}
    found = client.search(collections=[td.S2_COLLECTION], bbox=td.bbox_lonlat(), datetime=TIME)
    assert len(list(found.items())) == 3
    away = client.search(collections=[td.S2_COLLECTION], bbox=[10, 50, 10.01, 50.01])
    assert len(list(away.items())) == 0


def test_s2_cube_structure_is_lazy(s2):
    assert set(s2.data_vars) == {*BANDS, "SCL"}
    for b in BANDS:
        assert s2[b].dims == ("time", "y", "x")
        assert s2[b].dtype == np.float32
        assert s2[b].chunks is not None  # dask-backed
    assert s2.sizes == {"time": 3, "y": 32, "x": 32}
    assert s2.chunksizes["x"] == (16, 16)
    assert s2.attrs["crs"] == "EPSG:32631"
    # pixel centres of the 10 m grid, north-up
    np.testing.assert_allclose(s2.x.values, td.ORIGIN[0] + 5 + 10 * np.arange(32))
    np.testing.assert_allclose(s2.y.values, td.ORIGIN[1] - 5 - 10 * np.arange(32))
    expected_times = pd.DatetimeIndex([t.replace(tzinfo=None) for t in td.S2_DATES])
    assert (pd.DatetimeIndex(s2.time.values) == expected_times).all()


def test_s2_reflectance_boa_offset_by_baseline(s2_values):
    # Dates 1-2 (baseline 05.10, DN = 10000 r + 1000) and date 3 (03.01, DN = 10000 r)
    # must all decode to the reflectance chosen in the test data.
    clear = ~(CLOUD_10M | SHADOW_10M)
    for b in BANDS:
        for i in range(3):
            got = s2_values[b].values[i][clear]
            expected = td.expected_s2_reflectance(b, i)
            finite = got[np.isfinite(got)]
            np.testing.assert_allclose(finite, expected, atol=1e-6, err_msg=f"{b} date {i}")
    np.testing.assert_array_equal(s2_values.boa_offset.values, [-1000.0, -1000.0, 0.0])


def test_s2_nodata_dn0_is_nan(s2_values):
    # DN 0 in the top-right pixel: one 10 m pixel for 10 m bands, a 2x2 block for 20 m bands.
    b2, b5 = s2_values.B2.values, s2_values.B5.values
    assert np.isnan(b2[:, 0, -1]).all() and np.isfinite(b2[0, 1, -1])
    assert np.isnan(b5[:, :2, -2:]).all() and np.isfinite(b5[0, 2, -1])
    assert np.isfinite(b2[0]).sum() == 32 * 32 - 1


def test_s2_scl_masks_cloud_and_shadow(s2_values):
    b4 = s2_values.B4.values
    assert np.isnan(b4[1][CLOUD_10M]).all()
    assert np.isnan(b4[1][SHADOW_10M]).all()
    # exactly cloud + shadow + the no-data pixel are masked on date 2; nothing else
    assert np.isnan(b4[1]).sum() == CLOUD_10M.sum() + SHADOW_10M.sum() + 1 == 64 + 32 + 1
    assert np.isnan(b4[0]).sum() == 1 and np.isnan(b4[2]).sum() == 1
    np.testing.assert_array_equal(s2_values.SCL.values[1][CLOUD_10M], 9)
    np.testing.assert_array_equal(s2_values.SCL.values[1][SHADOW_10M], 3)


def test_s2_unmasked_keeps_cloudy_pixels(stac_api_url):
    cube = load_s2(
        stac_api_url, td.bbox_lonlat(), TIME, bounds=BOUNDS, mask=False, bands=["B4"]
    ).compute()
    assert "SCL" not in cube
    assert np.isnan(cube.B4.values[1]).sum() == 1  # only the DN-0 pixel


def test_s2_angles_from_metadata_and_fallback(s2):
    # date 1: STAC view extension; date 2: s2:mean_* properties (values in stac_testdata)
    assert s2.tts.values[0] == pytest.approx(90.0 - td.S2_SUN_ELEVATION_1)
    assert s2.tto.values[0] == pytest.approx(td.S2_VIEW_INCIDENCE_1)
    assert s2.psi.values[0] == pytest.approx(140.0)  # |150 - 290| = 140
    assert s2.tts.values[1] == pytest.approx(td.S2_SUN_ZENITH_2)
    assert s2.tto.values[1] == pytest.approx(td.S2_VIEW_ZENITH_2)
    assert s2.psi.values[1] == pytest.approx(55.0)  # |155 - 100|
    # date 3 has no angle metadata: warned, nadir view, sun from datetime + bbox centre
    assert any("S2B_31TCJ_20240521_0_L2A" in w for w in s2.attrs["_warnings"])
    assert s2.tto.values[2] == 0.0 and s2.psi.values[2] == 0.0
    # independent check: Cooper (1969) declination, hour angle from UTC and longitude,
    # equation of time neglected (~3.6 min = 0.9 deg of hour angle on 21 May)
    lon, lat = np.mean(td.bbox_lonlat()[::2]), np.mean(td.bbox_lonlat()[1::2])
    t = td.S2_DATES[2]
    doy = t.timetuple().tm_yday
    decl = np.radians(23.45 * np.sin(2 * np.pi * (284 + doy) / 365))
    h = np.radians(15.0 * (t.hour + t.minute / 60 + lon / 15 - 12))
    phi = np.radians(lat)
    cos_z = np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(h)
    assert s2.tts.values[2] == pytest.approx(np.degrees(np.arccos(cos_z)), abs=1.0)


def test_s2_per_pixel_angles_from_tile_metadata(stac_api_url):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no fallback: every item has the grids
        cube = load_s2(
            stac_api_url, td.bbox_lonlat(), TIME, bounds=BOUNDS, bands=["B4"], angles="granule"
        )
    for name in ("tts", "tto", "psi"):
        assert cube[name].dims == ("time", "y", "x") and cube[name].chunks is not None
    vals = cube.compute()
    # node coordinates of the pixel centres; the fields are linear in them (exact bilinear)
    c = (vals.x.values - td.TILE_UL[0]) / td.TILE_STEP
    r = (td.TILE_UL[1] - vals.y.values) / td.TILE_STEP
    rr, cc = np.meshgrid(r, c, indexing="ij")
    ok = np.ones((32, 32), bool)
    ok[0, -1] = False  # the DN-0 pixel: outside the footprint, angles NaN
    for i in range(3):
        f = td.tile_angle_fields(i, rr, cc)
        np.testing.assert_allclose(vals.tts.values[i][ok], f["sun_zenith"][ok], atol=1e-4)
        # B8 view grid (two detectors merged), not the 50 deg B1 grid
        np.testing.assert_allclose(vals.tto.values[i][ok], f["view_zenith"][ok], atol=1e-4)
        psi = np.abs(f["sun_azimuth"] - f["view_azimuth"])
        np.testing.assert_allclose(vals.psi.values[i][ok], psi[ok], atol=1e-3)
        assert np.isnan(vals.tts.values[i][0, -1])
    # the grids vary across the 320 m scene (per-pixel, not one value per date)
    assert np.ptp(vals.tts.values[0][ok]) > 0.02
    # cloud-masked pixels keep their angles
    assert np.isfinite(vals.tts.values[1][CLOUD_10M]).all()


def test_tile_angles_detectors_and_wraparound():
    from xr_physcube.io._angles import parse_tile_angles, pixel_angles

    def grid(v):
        return "".join("<VALUES>" + " ".join(row) + "</VALUES>" for row in v)

    xml = (
        "<T><HORIZONTAL_CS_CODE>EPSG:32631</HORIZONTAL_CS_CODE>"
        "<Geoposition><ULX>0</ULX><ULY>100</ULY></Geoposition>"
        "<Sun_Angles_Grid><Zenith><COL_STEP>100</COL_STEP><ROW_STEP>100</ROW_STEP>"
        f"<Values_List>{grid([['20', '30'], ['20', '30']])}</Values_List></Zenith>"
        f"<Azimuth><Values_List>{grid([['10', '10'], ['10', '10']])}</Values_List></Azimuth>"
        "</Sun_Angles_Grid>"
        '<Viewing_Incidence_Angles_Grids bandId="7" detectorId="1"><Zenith><Values_List>'
        f"{grid([['2', 'NaN'], ['2', 'NaN']])}</Values_List></Zenith><Azimuth><Values_List>"
        f"{grid([['359', 'NaN'], ['359', 'NaN']])}</Values_List></Azimuth>"
        "</Viewing_Incidence_Angles_Grids>"
        '<Viewing_Incidence_Angles_Grids bandId="7" detectorId="2"><Zenith><Values_List>'
        f"{grid([['NaN', '6'], ['NaN', '6']])}</Values_List></Zenith><Azimuth><Values_List>"
        f"{grid([['NaN', '1'], ['NaN', '1']])}</Values_List></Azimuth>"
        "</Viewing_Incidence_Angles_Grids></T>"
    )
    tile = parse_tile_angles(xml)
    out = pixel_angles(tile, np.array([0.0, 50.0, 100.0]), np.array([50.0]))
    np.testing.assert_allclose(out["tts"][0], [20.0, 25.0, 30.0], atol=1e-5)
    np.testing.assert_allclose(out["tto"][0], [2.0, 4.0, 6.0], atol=1e-5)
    # view azimuth 359 -> 0 -> 1 (unit-vector interpolation, not 180): psi 11, 10, 9
    np.testing.assert_allclose(out["psi"][0], [11.0, 10.0, 9.0], atol=1e-4)
    with pytest.raises(ValueError, match="B4"):
        parse_tile_angles(xml, view_band="B4")


def test_solar_position_reference_values():
    # Summer solstice 2024 (20 June 20:51 UTC): declination = +23.44 deg, so at solar
    # noon the zenith is latitude - 23.44. Solar noon at lon 0 is 12:01:50 UTC (NOAA).
    z, a = solar_position("2024-06-20T12:01:50", 0.0, 43.6)
    assert z[0] == pytest.approx(43.6 - 23.44, abs=0.15)
    assert a[0] == pytest.approx(180.0, abs=1.0)
    # Before noon the sun is in the east (azimuth < 180), after noon in the west.
    z_m, a_m = solar_position("2024-06-20T08:00:00", 0.0, 43.6)
    assert 60 < a_m[0] < 180 and z_m[0] > z[0]
    assert 180 < solar_position("2024-06-20T16:00:00", 0.0, 43.6)[1][0] < 300


def test_s1_linear_sigma0_on_s2_grid(s1, s2):
    assert set(s1.data_vars) == {"VV", "VH"}
    assert s1.VV.dims == ("time", "y", "x") and s1.VV.chunks is not None
    np.testing.assert_allclose(s1.x.values, s2.x.values)
    np.testing.assert_allclose(s1.y.values, s2.y.values)
    vals = s1.compute()
    # bilinear 20 m -> 10 m: the 10 m pixel centre j lies at 20 m pixel coord (j + .5)/2 - .5
    coord = (np.arange(32) + 0.5) / 2 - 0.5
    for i in range(2):
        row20 = td.s1_vv_field(i)[0]
        expected = np.interp(coord, np.arange(16), row20) * td.gamma0_to_sigma0_factor(i)
        np.testing.assert_allclose(vals.VV.values[i, 5], expected, rtol=1e-5)
        ratio = td.S1_VH[i] / td.S1_VV[i]
        np.testing.assert_allclose(vals.VH.values[i, 5], expected * ratio, rtol=1e-5)
    # theta: view:incidence_angle on date 1, IW mid-swath (29.1 + 46.0) / 2 on date 2
    np.testing.assert_allclose(s1.theta.values, td.S1_THETA)
    assert s1.VV.attrs["units"] == "1" and s1.VV.attrs["radiometry"] == "sigma0"
    assert s1.VV.attrs["source_radiometry"] == "gamma0"  # "rtc" collection


def test_s1_db(stac_api_url, s2):
    with pytest.warns(UserWarning):
        cube = load_s1(stac_api_url, td.bbox_lonlat(), TIME, like=s2, db=True).compute()
    coord = (np.arange(32) + 0.5) / 2 - 0.5
    gamma0 = np.interp(coord, np.arange(16), td.s1_vv_field(0)[0])
    expected = 10.0 * np.log10(gamma0 * td.gamma0_to_sigma0_factor(0))
    np.testing.assert_allclose(cube.VV.values[0, 3], expected, atol=1e-4)
    assert cube.VV.attrs["units"] == "dB"


def test_odc_stac_engine_gives_the_same_cubes(stac_api_url, s2, s1):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        odc_s2 = load_s2(stac_api_url, td.bbox_lonlat(), TIME, bounds=BOUNDS, chunks=16,
                         engine="odc-stac")  # fmt: skip
        odc_s1 = load_s1(stac_api_url, td.bbox_lonlat(), TIME, like=odc_s2, engine="odc-stac")
    assert odc_s2.B4.dims == ("time", "y", "x") and odc_s2.B4.chunks is not None
    assert odc_s2.rio.crs == s2.rio.crs and odc_s2.rio.transform() == s2.rio.transform()
    xr.testing.assert_allclose(odc_s2.compute(), s2.compute(), rtol=1e-6)  # 20 m bands too
    xr.testing.assert_allclose(odc_s1.compute(), s1.compute(), rtol=1e-6)
    with pytest.raises(InvalidArgumentError, match="engine"):
        load_s2(stac_api_url, td.bbox_lonlat(), TIME, engine="gdal")


def test_same_pass_items_mosaic_by_local_solar_day():
    from xr_physcube.io._stack import mosaic_same_day, solar_days

    # 23:50 and 00:10 UTC the next day: one pass at 179 E (local noon), two UTC days
    times = pd.to_datetime(["2024-05-01T23:50", "2024-05-02T00:10"])
    assert solar_days(times, 179.0).nunique() == 1 and solar_days(times, 0.0).nunique() == 2
    west = np.array([[1.0, np.nan]], np.float32)
    east = np.array([[np.nan, 2.0]], np.float32)
    ds = xr.Dataset({"B4": (("time", "y", "x"), np.stack([west, east]))}, {"time": times})
    merged = mosaic_same_day(ds, longitude=179.0)
    assert merged.sizes["time"] == 1
    np.testing.assert_array_equal(merged.B4.values[0], [[1.0, 2.0]])
    assert mosaic_same_day(ds, longitude=0.0).sizes["time"] == 2


def test_s1_gamma0_becomes_sigma0_with_the_incidence_angle(stac_api_url, s2):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        load = {"like": s2, "db": True}
        auto = load_s1(stac_api_url, td.bbox_lonlat(), TIME, **load).compute()
        gamma0 = load_s1(stac_api_url, td.bbox_lonlat(), TIME, radiometry="gamma0", **load)
        as_is = load_s1(stac_api_url, td.bbox_lonlat(), TIME, radiometry="sigma0", **load)
    xr.testing.assert_allclose(auto.VV, gamma0.VV.compute())
    offset = (auto.VV - as_is.VV).compute()  # sigma0 - gamma0, dB
    # on date 1, theta = 39.2 deg: 10 log10(cos 39.2) = -1.107 dB for every pixel
    np.testing.assert_allclose(offset.values[0], -1.107, atol=2e-3)
    on_date_2 = 10 * np.log10(np.cos(np.deg2rad(37.55)))  # the IW mid-swath fallback
    np.testing.assert_allclose(offset.values[1], on_date_2, atol=1e-4)
    assert as_is.VV.attrs["source_radiometry"] == "sigma0"
    with pytest.raises(InvalidArgumentError, match="radiometry"):
        load_s1(stac_api_url, td.bbox_lonlat(), TIME, radiometry="beta0")


def test_s1_per_pixel_incidence_asset(stac_api_url, s2):
    cube = load_s1(stac_api_url, td.bbox_lonlat(), TIME, collection=td.S1_THETA_COLLECTION, like=s2)
    assert cube.theta.dims == ("time", "y", "x") and "theta" in cube.data_vars
    coord = (np.arange(32) + 0.5) / 2 - 0.5
    expected = np.interp(coord, np.arange(16), td.s1_incidence_field()[0])
    np.testing.assert_allclose(cube.theta.values[0, 10], expected, rtol=1e-6)


def test_s2_from_item_list_and_earthsearch_offset_flag(local_catalog_dir):
    # No API: a list of pystac.Item. Earth Search's harmonised archive marks items whose
    # DN already include the offset with earthsearch:boa_offset_applied: then no offset.
    import pystac

    cat = pystac.Catalog.from_file(str(local_catalog_dir / "stac" / "catalog.json"))
    items = list(cat.get_child(td.S2_COLLECTION).get_items())
    first = min(items, key=lambda it: it.datetime)
    first.properties["earthsearch:boa_offset_applied"] = True
    cube = load_s2([first], None, TIME, bounds=BOUNDS, bands=["B3"]).compute()
    # DN = 10000 r + 1000 read without offset -> r + 0.1
    expected = td.expected_s2_reflectance("B3", 0) + 0.1
    np.testing.assert_allclose(cube.B3.values[0, 5:10, 5:10], expected, atol=1e-6)
    assert cube.boa_offset.values[0] == 0.0


def test_mute_data_host_fails_within_the_timeout(local_catalog_dir):
    # The items' assets on a loopback port that accepts connections and never answers:
    # chunk reads (GDAL) and the tile metadata download must give up after ``timeout``.
    import socket
    from concurrent.futures import ThreadPoolExecutor

    import pystac

    cat = pystac.Catalog.from_file(str(local_catalog_dir / "stac" / "catalog.json"))
    item = min(cat.get_child(td.S2_COLLECTION).get_items(), key=lambda it: it.datetime)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(16)
        for key, asset in item.assets.items():
            asset.href = f"http://127.0.0.1:{mute.getsockname()[1]}/{key}.tif"
        cube = load_s2([item], None, TIME, bounds=BOUNDS, bands=["B4"], mask=False, timeout=1)
        granule = dict(bounds=BOUNDS, bands=["B4"], angles="granule", timeout=1)
        # in a thread, so that a missing timeout fails the test instead of hanging it
        pool = ThreadPoolExecutor(2)
        read = pool.submit(cube.B4.compute, scheduler="synchronous")
        angles = pool.submit(load_s2, [item], None, TIME, **granule)
        try:
            with pytest.raises(Exception, match="(?i)timed out|too slow"):
                read.result(timeout=10)
            with pytest.raises(ValueError, match="cannot read angle grids"):
                angles.result(timeout=10)
        finally:
            pool.shutdown(wait=False)


def test_s2_same_day_items_are_mosaicked(local_catalog_dir):
    # The cloudy date-2 item plus a copy of the clear date-1 item stamped 1 min later on
    # the same day (as an adjacent tile would be): the cloud/shadow gap is filled from
    # the second item, everything else comes from the first.
    import pystac

    cat = pystac.Catalog.from_file(str(local_catalog_dir / "stac" / "catalog.json"))
    items = sorted(cat.get_child(td.S2_COLLECTION).get_items(), key=lambda it: it.datetime)
    clear = items[0].clone()
    clear.id = "neighbour-tile"
    clear.datetime = items[1].datetime + pd.Timedelta(minutes=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        cube = load_s2([items[1], clear], None, TIME, bounds=BOUNDS, bands=["B4"]).compute()
    assert cube.sizes["time"] == 1
    b4 = cube.B4.values[0]
    gap = CLOUD_10M | SHADOW_10M
    np.testing.assert_allclose(b4[gap], td.expected_s2_reflectance("B4", 0), atol=1e-6)
    rest = b4[~gap & np.isfinite(b4)]
    np.testing.assert_allclose(rest, td.expected_s2_reflectance("B4", 1), atol=1e-6)
    assert rest.size == 32 * 32 - gap.sum() - 1  # the shared no-data pixel stays NaN
    # angles: mean of 28 (s2:mean_solar_zenith) and 30 (90 - sun elevation 60)
    assert cube.tts.values[0] == pytest.approx(29.0)


def test_merge_nearest_date_within_tolerance(s2, s1):
    cube = merge_cubes(s2, s1, tolerance="3D")
    assert {*BANDS, "SCL", "VV", "VH"} <= set(cube.data_vars)
    assert cube.sizes == s2.sizes
    # S2 1 May 10:56 <- S1 2 May 17:50 (31 h); 11 May <- 12 May; 21 May: nearest is 9 days off
    s1_time = pd.DatetimeIndex(cube.s1_time.values)
    assert s1_time[0] == pd.Timestamp("2024-05-02T17:50")
    assert s1_time[1] == pd.Timestamp("2024-05-12T17:50")
    assert pd.isna(s1_time[2])
    vv = cube.VV.values
    np.testing.assert_allclose(vv[0], s1.VV.values[0], rtol=1e-6)
    np.testing.assert_allclose(vv[1], s1.VV.values[1], rtol=1e-6)
    assert np.isnan(vv[2]).all()
    np.testing.assert_allclose(cube.theta.values[:2], [td.S1_INCIDENCE_1, 37.55])
    wide = merge_cubes(s2, s1, tolerance="12D")
    assert pd.DatetimeIndex(wide.s1_time.values)[2] == pd.Timestamp("2024-05-12T17:50")


def test_merge_resamples_native_s1_grid(stac_api_url, s2):
    with pytest.warns(UserWarning):
        s1_20m = load_s1(stac_api_url, td.bbox_lonlat(), TIME, bounds=BOUNDS, resolution=20.0)
    assert s1_20m.sizes["x"] == 16
    cube = merge_cubes(s2, s1_20m, tolerance="3D")
    # each 10 m pixel takes the 20 m pixel that contains it
    expected = np.repeat(td.s1_vv_field(0)[0], 2) * td.gamma0_to_sigma0_factor(0)
    np.testing.assert_allclose(cube.VV.values[0, 7], expected, rtol=1e-6)


def test_load_cube_in_one_call(stac_api_url, s2, s1):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        cube = load_cube(stac_api_url, td.bbox_lonlat(), TIME, bounds=BOUNDS, chunks=16)
    assert cube.VV.chunks is not None and cube.sizes == s2.sizes
    vals = cube.compute()
    np.testing.assert_allclose(
        vals.B8.values[0, 3:6, 3:6], td.expected_s2_reflectance("B8", 0), atol=1e-6
    )
    coord = (np.arange(32) + 0.5) / 2 - 0.5
    expected = np.interp(coord, np.arange(16), td.s1_vv_field(1)[0])
    expected *= td.gamma0_to_sigma0_factor(1)
    np.testing.assert_allclose(vals.VV.values[1, 9], expected, rtol=1e-5)
    assert np.isnan(vals.VV.values[2]).all()  # 21 May: no S1 within 3 days
    xr.testing.assert_allclose(vals, merge_cubes(s2, s1).compute())


def test_search_without_bbox_and_by_time(stac_api_url):
    items = search_items(stac_api_url, td.S2_COLLECTION, None, TIME)
    assert [it.datetime for it in items] == list(td.S2_DATES)
    one = search_items(stac_api_url, td.S2_COLLECTION, None, ("2024-05-10", "2024-05-12"))
    assert [it.id for it in one] == ["S2B_31TCJ_20240511_0_L2A"]


def test_server_exits_when_its_parent_dies(local_catalog_dir):
    # If pytest itself is killed (no fixture teardown), the server must not linger.
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = Path(td.__file__)
    catalog = local_catalog_dir / "stac" / "catalog.json"
    launcher = (
        "import os, subprocess, sys, time; "
        f"p = subprocess.Popen([sys.executable, {str(script)!r}, {str(catalog)!r}, '0', "
        "str(os.getpid())]); "
        "print(p.pid, flush=True); time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", launcher], stdout=subprocess.PIPE, text=True)
    server_pid = int(parent.stdout.readline())

    def alive(pid: int) -> bool:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return False
        return state not in ("Z", "X")

    try:
        assert alive(server_pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 20.0
        while alive(server_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(server_pid)
    finally:
        if alive(server_pid):
            os.kill(server_pid, signal.SIGKILL)
        parent.stdout.close()


def test_clear_errors(stac_api_url):
    with pytest.raises(StacSearchError, match=r"sentinel-2-l2a.*2023-01-01/2023-01-31"):
        load_s2(stac_api_url, td.bbox_lonlat(), "2023-01-01/2023-01-31")
    with pytest.raises(StacSearchError, match=r"no STAC item in collection 'nope'"):
        load_s2(stac_api_url, td.bbox_lonlat(), TIME, collection="nope")
    with pytest.raises(StacSearchError, match=r"\['B1'\].*coastal"):
        load_s2(stac_api_url, td.bbox_lonlat(), TIME, bands=["B1"])
    with pytest.raises(ValueError, match="unknown Sentinel-2 band"):
        load_s2(stac_api_url, td.bbox_lonlat(), TIME, bands=["B13"])
    with pytest.raises(ValueError, match="polarisation"):
        load_s1(stac_api_url, td.bbox_lonlat(), TIME, polarisations=["HH"])
    with pytest.raises(ValueError, match="orbit_state must be 'ascending' or 'descending'"):
        load_s1(stac_api_url, td.bbox_lonlat(), TIME, orbit_state="ascnding")  # not "no item"
    upper = load_s1(stac_api_url, td.bbox_lonlat(), TIME, orbit_state="ASCENDING")
    assert upper.sizes["time"] == load_s1(stac_api_url, td.bbox_lonlat(), TIME).sizes["time"]


def test_stac_to_zarr_roundtrip_on_local_cluster(stac_api_url, tmp_path):
    from distributed import Client, LocalCluster, get_task_stream

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", UserWarning)
        s2 = load_s2(stac_api_url, td.bbox_lonlat(), TIME, bounds=BOUNDS, chunks=16)
        s1 = load_s1(stac_api_url, td.bbox_lonlat(), TIME, like=s2)
        cube = merge_cubes(s2, s1)
        path = tmp_path / "cube.zarr"
        with get_task_stream(client) as ts:
            cube.to_zarr(path, mode="w")
        workers = {t["worker"] for t in ts.data}
        assert workers and workers <= set(cluster.scheduler_info["workers"])
    back = xr.open_zarr(path)
    assert back.B8.chunks is not None
    b8 = back.B8.values
    assert np.nanmax(np.abs(b8[0] - td.expected_s2_reflectance("B8", 0))) < 1e-6
    assert np.isnan(b8[1][CLOUD_10M]).all()
    np.testing.assert_allclose(back.tts.values[:2], [30.0, td.S2_SUN_ZENITH_2])
    coord = (np.arange(32) + 0.5) / 2 - 0.5
    expected = np.interp(coord, np.arange(16), td.s1_vv_field(1)[0])
    expected *= td.gamma0_to_sigma0_factor(1)
    np.testing.assert_allclose(back.VV.values[1, 0], expected, rtol=1e-5)
    assert np.isnan(back.VV.values[2]).all()
    assert back.attrs["crs"] == "EPSG:32631"
