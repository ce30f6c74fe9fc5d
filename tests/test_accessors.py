"""The ``.physics`` accessor: registration, laziness, dask == NumPy, errors, demo cube."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import torch
import xarray as xr
from dask_counting import CountingScheduler

import xr_physcube  # noqa: F401  (registers the accessors)
from xr_physcube.io.demo import demo_scene
from xr_physcube.models.prosail import Prosail, ProsailParameters
from xr_physcube.models.sar import water_cloud_backscatter
from xr_physcube.sensors.sentinel2 import BANDS, SCL_INVALID, Sentinel2Bands


def parameter_cube(nt=2, ny=6, nx=5, seed=0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    shape = (nt, ny, nx)
    ds = xr.Dataset(
        {
            "lai": (("time", "y", "x"), rng.uniform(0.2, 6.0, shape).astype("f4")),
            "cab": (("time", "y", "x"), rng.uniform(10, 70, shape).astype("f4")),
            "cw": (("time", "y", "x"), rng.uniform(0.005, 0.03, shape).astype("f4")),
        },
        coords={
            "time": np.arange(nt),
            "tts": ("time", rng.uniform(20, 50, nt)),
            "tto": ("time", rng.uniform(0, 10, nt)),
            "psi": ("time", rng.uniform(0, 180, nt)),
        },
    )
    ds["lai"][0, 0, 0] = np.nan  # a masked pixel
    return ds


def test_accessor_is_registered_on_import():
    assert hasattr(xr.Dataset, "physics")
    assert callable(xr.Dataset().physics.simulate)


def test_simulate_is_lazy_and_equals_numpy_and_direct_model():
    ds = parameter_cube()
    counter = CountingScheduler()
    with dask.config.set(scheduler=counter):
        lazy = ds.chunk({"time": 1, "y": 3, "x": 5}).physics.simulate()
        assert counter.calls == 0  # nothing ran while building the graph
        assert lazy.B4.chunks == ((1, 1), (3, 3), (5,))
        computed = lazy.compute()
        assert counter.calls == 1
    eager = ds.physics.simulate()
    assert set(eager.data_vars) == set(BANDS)
    xr.testing.assert_allclose(computed, eager, atol=1e-6)
    assert np.isnan(computed.B4.values[0, 0, 0]) and np.isfinite(computed.B4.values[0, 0, 1])
    # the same pixel through the model directly (defaults for the other parameters)
    t, y, x = 1, 2, 3
    p = {k: torch.tensor(float(ds[k].values[t, y, x])) for k in ("lai", "cab", "cw")}
    angles = {k: torch.tensor(float(ds[k].values[t])) for k in ("tts", "tto", "psi")}
    direct = Prosail(sensor=Sentinel2Bands())(ProsailParameters(**p, **angles)).reflectance
    got = [float(computed[b].values[t, y, x]) for b in BANDS]
    assert np.allclose(got, direct.numpy(), atol=1e-6)
    assert computed.B8.attrs["units"] == "1"


def test_simulate_errors_are_clear():
    ds = parameter_cube()
    with pytest.raises(ValueError, match=r"\['tts', 'tto', 'psi'\].*assign_coords"):
        ds.drop_vars(["tts", "tto", "psi"]).physics.simulate()
    with pytest.raises(ValueError, match="found none"):
        xr.Dataset({"foo": ds.lai}).physics.simulate()
    bad = ds.assign(lai=ds.lai * 10)
    with pytest.raises(ValueError, match=r"'lai'.*\[0, 10\]"):
        bad.chunk({"time": 1}).physics.simulate().compute()
    with pytest.raises(TypeError, match="non-numeric"):
        ds.assign(cab=ds.cab.astype(str)).physics.simulate()
    with pytest.raises(ValueError, match="sensor"):
        ds.physics.simulate(sensor="S3")


def test_simulate_s1_matches_the_radar_model():
    rng = np.random.default_rng(1)
    shape = (2, 4, 4)
    ds = xr.Dataset(
        {
            "mv": (("time", "y", "x"), rng.uniform(0.05, 0.4, shape)),
            "hrms": (("time", "y", "x"), rng.uniform(0.5, 2.5, shape)),
            "lai": (("time", "y", "x"), rng.uniform(0, 5, shape)),
        },
        coords={"theta": ("time", [35.0, 41.0])},
    )
    out = ds.chunk({"y": 2}).physics.simulate("S1").compute()
    direct = water_cloud_backscatter(
        mv=torch.tensor(ds.mv.values),
        hrms=torch.tensor(ds.hrms.values),
        theta=torch.tensor([35.0, 41.0])[:, None, None],
        lai=torch.tensor(ds.lai.values),
    )
    assert np.allclose(out.VV.values, direct.vv.numpy(), rtol=1e-5)
    assert np.allclose(out.VH.values, direct.vh.numpy(), rtol=1e-5)


def test_simulate_s1_with_ndvi_descriptor_dubois_and_texture():
    rng = np.random.default_rng(2)
    shape = (3, 4)
    ds = xr.Dataset(
        {
            "mv": (("y", "x"), rng.uniform(0.05, 0.3, shape)),
            "hrms": (("y", "x"), rng.uniform(0.5, 2.0, shape)),
            "ndvi": (("y", "x"), rng.uniform(0.1, 0.9, shape)),
            "sand": (("y", "x"), rng.uniform(0.1, 0.5, shape)),
            "clay": (("y", "x"), rng.uniform(0.1, 0.4, shape)),
        },
        coords={"theta": 39.0},
    )
    out = ds.chunk({"y": 2}).physics.simulate("S1", soil_model="Dubois", dielectric="dobson")
    t = {k: torch.tensor(ds[k].values) for k in ("mv", "hrms", "ndvi", "sand", "clay")}
    direct = water_cloud_backscatter(**t, theta=39.0, soil_model="dubois", dielectric="dobson")
    assert np.allclose(out.VV.values, direct.vv.numpy(), rtol=1e-5)
    assert np.allclose(out.VH.values, direct.vh.numpy(), rtol=1e-5)
    assert "ndvi" in out.VV.attrs["source"] and "dubois" in out.VV.attrs["source"]
    # texture matters for Dubois: the accessor passed it through
    loam = water_cloud_backscatter(**{**t, "sand": 0.4, "clay": 0.2}, theta=39.0,
                                   soil_model="dubois", dielectric="dobson")  # fmt: skip
    assert not np.allclose(out.VV.values, loam.vv.numpy(), rtol=1e-3)
    with pytest.raises(ValueError, match="descriptor is 'lai' or 'ndvi'"):
        ds.drop_vars("ndvi").physics.simulate("S1")
    with pytest.raises(ValueError, match="soil_model must be one of"):
        ds.physics.simulate("S1", soil_model="iem")


def test_ndvi_and_wrong_dims():
    scene = demo_scene(size=16, seed=3)
    ndvi = scene.cube.physics.ndvi().compute()
    assert float(ndvi.max()) <= 1.0 and float(ndvi.min()) >= -1.0
    ds = parameter_cube()
    ds["tts"] = ("band", [1.0, 2.0])
    with pytest.raises(ValueError, match="dims"):
        ds.physics.simulate()


def test_demo_cube_is_deterministic_masked_and_plausible():
    a, b = demo_scene(size=24, seed=7), demo_scene(size=24, seed=7)
    xr.testing.assert_identical(a.cube.compute(), b.cube.compute())
    cube = a.cube.compute()
    assert set(BANDS) | {"SCL", "VV", "VH", "theta"} <= set(cube.data_vars)
    invalid = np.isin(cube.SCL.values, SCL_INVALID)
    assert invalid.any() and np.isnan(cube.B4.values[invalid]).all()
    assert np.isfinite(cube.B4.values[~invalid]).all()
    vv_db = 10 * np.log10(cube.VV.values)
    assert -25 < np.median(vv_db) < -5  # agricultural fields at ~40° (Baghdadi et al. 2016)
    assert a.truth.lai.max() > 3.0 and a.truth.lai.min() >= 0.0
    assert demo_scene(size=24, seed=8).truth.lai.values.tolist() != a.truth.lai.values.tolist()


@pytest.fixture(scope="module")
def small_demo():
    return demo_scene(size=24, seed=11, chunks=12)


def test_retrieve_is_lazy_chunk_preserving_and_equals_numpy(small_demo):
    cube = small_demo.cube
    counter = CountingScheduler()
    with dask.config.set(scheduler=counter):
        lazy = cube.physics.retrieve(["lai", "ccc"])
        assert counter.calls == 0
        assert lazy.lai.chunks == cube.B4.chunks
        result = lazy.compute()
        assert counter.calls == 1
    eager = cube.compute().physics.retrieve(["lai", "ccc"])
    xr.testing.assert_allclose(result, eager, rtol=1e-5, atol=1e-6)
    assert set(result.data_vars) == {"lai", "lai_std", "ccc", "ccc_std"}
    assert (
        result.lai.attrs["units"] == "m2 m-2"
        and "standard deviation" in (result.lai_std.attrs["long_name"])
    )
    cloudy = np.isnan(cube.B4.values)
    assert np.isnan(result.lai.values[cloudy]).all()
    assert np.isfinite(result.lai.values[~cloudy]).all()
    # retrieval is informative: error against the simulation truth well below its spread
    truth = small_demo.truth.lai.values[~cloudy]
    rmse = float(np.sqrt(np.mean((result.lai.values[~cloudy] - truth) ** 2)))
    assert rmse < 0.6 * float(truth.std()) + 0.3


def test_retrieve_errors_name_what_is_missing(small_demo):
    cube = small_demo.cube
    with pytest.raises(ValueError, match=r"\['B11'\].*Sentinel-2 band"):
        cube.drop_vars("B11").physics.retrieve(["lai"])
    with pytest.raises(ValueError, match=r"tts.*assign_coords"):
        cube.drop_vars("tts").physics.retrieve(["lai"])
    with pytest.raises(ValueError, match="cannot retrieve"):
        cube.physics.retrieve(["yield"])
    with pytest.raises(TypeError, match="non-numeric"):
        cube.assign(B2=cube.B2.astype(str)).physics.retrieve()


def test_soil_moisture_from_s1_and_derived_shortcuts(small_demo):
    cube = small_demo.cube
    mv = cube.physics.retrieve(["mv"], model="pretrained-s1").mv.compute()  # NDVI derived
    valid = np.isfinite(mv.values)
    assert valid.mean() > 0.9 and float(mv.min()) >= 0.0 and float(mv.max()) <= 0.5
    fc = cube.physics.fcover().compute()
    assert float(np.nanmin(fc)) >= 0.0 and float(np.nanmax(fc)) <= 1.0
