"""Outputs a GIS opens: every accessor output keeps its input's CRS and transform the way
rioxarray reads them (``spatial_ref``, ``grid_mapping``), its x/y attributes and CF
attributes; GeoTIFF/COG written from them reopen in rasterio with that CRS; a field
polygon clips a cube before any work; ``like=`` takes any georeferenced Dataset."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401  (registers .rio)
import stac_testdata as td
import torch
import xarray as xr
from test_stac import BOUNDS, TIME

import xr_physcube  # noqa: F401
from xr_physcube.cube.conventions import STANDARD_NAMES
from xr_physcube.io.demo import demo_scene
from xr_physcube.io.demo_season import demo_season
from xr_physcube.io.stac import load_s1, load_s2
from xr_physcube.io.store import open_store, write_store


@pytest.fixture(scope="module")
def demo():
    return demo_scene(size=12, seed=0, chunks=6).cube


@pytest.fixture(scope="module")
def season():
    return demo_season(size=8, seed=0, chunks=8)


def _outputs(cube: xr.Dataset, season) -> dict[str, tuple[xr.Dataset, xr.Dataset]]:
    """Each kind of accessor output (lazy) and the cube it came from."""
    recon_s2, recon_s1 = season.s2.vae.reconstruct_observations(season.s1)
    return {
        "retrieve": (cube.physics.retrieve(["lai", "fapar", "fcover"]), cube),
        "retrieve mv": (cube.physics.retrieve(["mv"], model="pretrained-s1"), cube),
        "ndvi": (cube.physics.ndvi(), cube),  # a DataArray
        "encode": (cube.vae.encode(), cube),
        "decode": (cube.vae.encode().vae.decode(), cube),
        "datacube": (season.s2.vae.datacube(s1=season.s1), season.s2),
        "reconstructed S2": (recon_s2, season.s2),
        "reconstructed S1": (recon_s1, season.s2),
    }


def test_every_output_keeps_the_crs_transform_and_xy_attributes(demo, season):
    assert demo.rio.crs is not None and season.s2.rio.crs == demo.rio.crs
    for what, (out, src) in _outputs(demo, season).items():
        out = out.to_dataset() if isinstance(out, xr.DataArray) else out
        assert out.rio.crs == src.rio.crs, what
        assert out.rio.transform() == src.rio.transform(), what
        assert out.x.attrs.get("standard_name") == "projection_x_coordinate", what
        assert out.y.attrs.get("units") == "metre", what
        for name, var in out.data_vars.items():
            if {"y", "x"} <= set(var.dims):
                assert var.attrs.get("grid_mapping") == "spatial_ref", (what, name)


def test_every_output_variable_has_cf_attributes(demo, season):
    for what, (out, _) in _outputs(demo, season).items():
        if isinstance(out, xr.DataArray):
            out = out.to_dataset()
        else:
            assert out.attrs["Conventions"].startswith("CF-"), what
            assert out.attrs["xr_physcube_version"] == xr_physcube.__version__, what
        for name, var in out.data_vars.items():
            assert var.attrs.get("long_name"), (what, name)
            units = var.attrs.get("units")
            assert units and units not in ("deg", "m2/m2"), (what, name, units)
            base = name.removesuffix("_std")
            if base in STANDARD_NAMES:
                expected = STANDARD_NAMES[base] + (" standard_error" if base != name else "")
                assert var.attrs.get("standard_name") == expected, (what, name)
    assert demo.physics.retrieve(["lai"]).lai.attrs["standard_name"] == "leaf_area_index"
    # provenance: the model's checksum, which a changed weight changes
    from xr_physcube.inverse.pretrained import load_pretrained

    net = load_pretrained("s2")
    first = demo.physics.retrieve(["lai"], model=net).attrs["model_sha256"]
    assert first == demo.physics.retrieve(["lai"]).attrs["model_sha256"]
    with torch.no_grad():
        next(net.parameters()).add_(1e-3)
    assert demo.physics.retrieve(["lai"], model=net).attrs["model_sha256"] != first
    assert len(demo.vae.encode().attrs["model_sha256"]) == 16


def test_outputs_do_not_change_the_input(demo):
    before = {k: dict(v.attrs) for k, v in demo.variables.items()}
    demo.physics.retrieve(["lai"])
    assert {k: dict(v.attrs) for k, v in demo.variables.items()} == before


def test_geotiff_and_cog_reopen_with_the_crs_and_transform(demo, tmp_path):
    lai = demo.physics.retrieve(["lai"]).lai.isel(time=0)
    for driver in ("GTiff", "COG"):
        path = tmp_path / f"lai_{driver}.tif"
        lai.rio.to_raster(path, driver=driver)
        with rasterio.open(path) as src:
            assert src.crs == demo.rio.crs
            assert src.transform == demo.rio.transform()
            np.testing.assert_allclose(src.read(1), lai.values, equal_nan=True)


def test_a_job_store_keeps_the_crs(demo, tmp_path):
    store = tmp_path / "lai.zarr"
    write_store(demo.physics.retrieve(["lai"]), store, progress=False)
    back = open_store(store)
    assert back.rio.crs == demo.rio.crs
    assert back.lai.attrs["standard_name"] == "leaf_area_index"


def test_clip_to_a_field_polygon_then_retrieve(demo):
    x0, y1 = float(demo.x[2]), float(demo.y[2])
    x1, y0 = float(demo.x[7]) + 5, float(demo.y[7]) - 5  # pixel edges: 6x6 pixels
    ring = [(x0 - 5, y0), (x1, y0), (x1, y1 + 5), (x0 - 5, y1 + 5), (x0 - 5, y0)]
    field = {"type": "Polygon", "coordinates": [ring]}  # GeoJSON, in the cube's CRS
    clipped = demo.rio.clip([field], crs=demo.rio.crs, drop=True)
    assert clipped.sizes["x"] == 6 and clipped.sizes["y"] == 6
    assert clipped.B4.chunks is not None  # still lazy
    lai = clipped.physics.retrieve(["lai"])
    assert lai.rio.crs == demo.rio.crs
    whole = demo.physics.retrieve(["lai"]).lai.sel(x=clipped.x, y=clipped.y)
    # float32 ulps only: a pixel's position in its chunk picks the vectorised or the
    # remainder path of the GEMM and cosine kernels
    np.testing.assert_allclose(lai.lai, whole, rtol=1e-5)


def test_like_takes_any_georeferenced_dataset(stac_api_url):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        s2 = load_s2(stac_api_url, td.bbox_lonlat(), TIME, bounds=BOUNDS, chunks=16)
        assert s2.rio.crs is not None and s2.rio.transform().a == 10.0
        retrieved = s2.physics.retrieve(["lai"])  # a loader's cube, like the demo's
        assert retrieved.rio.crs == s2.rio.crs and retrieved.rio.transform() == s2.rio.transform()
        grid = xr.Dataset(coords={"y": s2.y.values[:8], "x": s2.x.values[:8]})
        grid = grid.rio.write_crs(s2.rio.crs)  # a plain raster grid, not from load_s2
        s1 = load_s1(stac_api_url, td.bbox_lonlat(), TIME, like=grid)
    np.testing.assert_array_equal(s1.x.values, grid.x.values)
    np.testing.assert_array_equal(s1.y.values, grid.y.values)
    assert s1.rio.crs == s2.rio.crs
    with pytest.raises(xr_physcube.exceptions.MetadataError, match="georeferenced"):
        bare = xr.Dataset(coords={"y": grid.y.values, "x": grid.x.values})  # no CRS
        load_s1(stac_api_url, td.bbox_lonlat(), TIME, like=bare)


def test_retrieve_keeps_the_per_date_angles_like_encode(demo):
    retrieved, encoded = demo.physics.retrieve(["lai"]), demo.vae.encode()
    for angle in ("tts", "tto", "psi"):
        np.testing.assert_array_equal(retrieved[angle].values, demo[angle].values)
        assert angle in encoded.coords
