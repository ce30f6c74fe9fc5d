"""``ds.physics.soil_moisture``: change detection and the shipped network on S1 series
cubes, lazily and blockwise; and the shipped change-detection defaults."""

from __future__ import annotations

import functools
import importlib.util
import math
import sys
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from dask_counting import CountingScheduler

import xr_physcube  # noqa: F401  (registers the accessors)
from xr_physcube.exceptions import (
    InputUnitsError,
    InvalidArgumentError,
    MissingVariableError,
    OutOfRangeError,
    TimeAxisError,
)
from xr_physcube.models.change_detection import (
    change_detection_mv,
    default_parameters,
    uncalibrated_parameters,
)

NT, NY, NX = 36, 3, 4  # unequal, so that a mix-up of dims cannot pass
ORBITS = {44: 33.3, 95: 44.7, 117: 42.5, 168: 36.0}  # relative orbit -> incidence (deg)
REPO = Path(__file__).resolve().parents[1]
MNI = REPO.parent / "shared" / "realdata" / "mni2017_s1" / "s1_sm_lai_mni2017.csv"


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def s1_cube(nt: int = NT, ny: int = NY, nx: int = NX, seed: int = 0) -> xr.Dataset:
    """A (time, y, x) cube whose σ0 follows the change-detection model of the shipped
    parameters (dB at 40° = level + S mv, cos² law), incidence per date (coordinate)."""
    rng = np.random.default_rng(seed)
    times = pd.Timestamp("2024-03-01") + pd.to_timedelta(np.arange(nt) * 3.0, "D")
    orbit = np.tile(list(ORBITS), nt)[:nt]
    theta = np.vectorize(ORBITS.get)(orbit).astype(np.float32)
    days = np.arange(nt) * 3.0
    phase = rng.uniform(0, 2 * np.pi, (ny, nx))
    mv = 0.22 + 0.06 * np.sin(days[:, None, None] / 9.0 + phase)
    lai = np.linspace(0.3, 4.0, nt)[:, None, None] * rng.uniform(0.7, 1.3, (ny, nx))
    p = default_parameters("lai")
    cos_t = np.cos(np.radians(theta))[:, None, None]
    cos2 = 20 * np.log10(cos_t / math.cos(math.radians(p.theta_ref)))
    level = rng.uniform(-13, -9, (ny, nx))
    sig = {}
    for pol, c, offset in (("VV", p.vv, 0.0), ("VH", p.vh, -7.0)):
        s = c.s0 * np.exp(-2 * c.b * lai / cos_t)
        sig[pol] = 10 ** ((level + offset + s * mv + cos2) / 10)
    dims = ("time", "y", "x")
    return xr.Dataset(
        {
            "VV": (dims, sig["VV"].astype(np.float32)),
            "VH": (dims, sig["VH"].astype(np.float32)),
            "lai": (dims, lai.astype(np.float32)),
        },
        coords={
            "time": times,
            "y": np.arange(ny) * 10.0,
            "x": np.arange(nx) * 10.0,
            "theta": ("time", theta),
            "relative_orbit": ("time", orbit),
        },
    )


def _direct(cube: xr.Dataset, iy: int, ix: int, params=None, orbit=None):
    """change_detection_mv on one pixel's series, as the block sees it (float32 in)."""
    px = cube.isel(y=iy, x=ix)
    days = (cube.time.values - cube.time.values[0]) / np.timedelta64(1, "D")
    f64 = {k: px[k].values.astype(np.float32).astype(np.float64) for k in ("VV", "VH", "lai")}
    theta = np.broadcast_to(cube.theta.values, days.shape).astype(np.float32).astype(float)
    est = change_detection_mv(
        f64["VV"], f64["VH"], theta, f64["lai"], params or default_parameters("lai"),
        time_days=days, orbit=orbit,
    )  # fmt: skip
    return est.mv.numpy(), est.std.numpy()


def test_change_detection_equals_the_direct_call_per_pixel():
    cube = s1_cube()
    out = cube.physics.soil_moisture()
    assert set(out.data_vars) == {"mv", "mv_std"} and out.mv.dims == ("time", "y", "x")
    assert out.mv.dtype == np.float32 and out.attrs["soil_moisture_method"] == "change-detection"
    assert out.mv.attrs["units"] == "m3 m-3" and out.mv.attrs["valid_min"] == 0.02
    assert "valid_min" not in out.mv_std.attrs and out.mv_std.attrs["units"] == "m3 m-3"
    assert out.mv_std.attrs["long_name"] == "standard deviation of volumetric soil moisture"
    np.testing.assert_array_equal(out.relative_orbit, cube.relative_orbit)  # coords kept
    for iy in range(NY):
        for ix in range(NX):
            mv, std = _direct(cube, iy, ix)
            np.testing.assert_allclose(out.mv.values[:, iy, ix], mv, rtol=1e-6)
            np.testing.assert_allclose(out.mv_std.values[:, iy, ix], std, rtol=1e-6)
    # the pixels differ, and per-orbit levels are used when asked for
    assert float(out.mv.std("x").mean()) > 1e-3
    by_orbit = cube.physics.soil_moisture(orbit="relative_orbit").mv.values
    np.testing.assert_allclose(
        by_orbit[:, 1, 2], _direct(cube, 1, 2, orbit=cube.relative_orbit.values)[0], rtol=1e-6
    )


def test_lazy_chunked_equals_eager_and_keeps_spatial_chunks():
    cube = s1_cube()
    eager = cube.physics.soil_moisture()
    chunked = cube.chunk(time=10, y=2, x=3)
    counter = CountingScheduler()
    with dask.config.set(scheduler=counter):
        lazy = chunked.physics.soil_moisture(batch_size=5)
        assert counter.calls == 0  # building the result runs no dask task
        assert lazy.mv.chunks == ((NT,), (2, 1), (3, 1))  # one time chunk, space kept
        got = lazy.compute()
    assert counter.calls >= 1
    np.testing.assert_allclose(got.mv.values, eager.mv.values, rtol=1e-6)
    np.testing.assert_allclose(got.mv_std.values, eager.mv_std.values, rtol=1e-6)
    # the cube's dim order is kept
    swapped = cube.transpose("y", "time", "x").physics.soil_moisture()
    assert swapped.mv.dims == ("y", "time", "x")
    np.testing.assert_allclose(swapped.mv.transpose(*eager.mv.dims), eager.mv, rtol=1e-6)


def test_nan_dates_are_skipped_and_nan_pixels_stay_isolated():
    cube = s1_cube()
    clean = cube.physics.soil_moisture().mv.values
    holes = cube.copy(deep=True)
    holes["VV"][5:9, 1, 2] = np.nan  # VV and VH missing on 4 dates
    holes["VH"][5:9, 1, 2] = np.nan
    holes["VH"][12, 1, 2] = np.nan  # VV alone still informs this date
    holes["lai"][20, 1, 2] = np.nan  # no descriptor: no valid observation
    holes["VV"][:, 0, 0] = np.nan  # a masked pixel
    holes["VH"][:, 0, 0] = np.nan
    out = holes.chunk(y=2, x=2).physics.soil_moisture().compute()
    mv, std = out.mv.values, out.mv_std.values
    assert np.isnan(mv[:, 0, 0]).all() and np.isnan(std[:, 0, 0]).all()
    gone = np.zeros(NT, bool)
    gone[[5, 6, 7, 8, 20]] = True
    assert np.isnan(mv[gone, 1, 2]).all() and np.isfinite(mv[~gone, 1, 2]).all()
    keep = np.ones((NY, NX), bool)
    keep[0, 0] = keep[1, 2] = False
    np.testing.assert_allclose(mv[:, keep], clean[:, keep], rtol=1e-6)  # neighbours unchanged


def test_a_one_dimensional_series_cube_and_a_single_series():
    cube = s1_cube(ny=1).isel(y=0).drop_vars("y")  # (time, x): samples along x
    cube = cube.assign(theta=cube.theta.broadcast_like(cube.VV)).reset_coords()
    out = cube.physics.soil_moisture(orbit="relative_orbit")
    assert out.mv.dims == ("time", "x") and out.mv.shape == (NT, NX)
    assert np.isfinite(out.mv.values).all()
    one = cube.isel(x=1).physics.soil_moisture(orbit="relative_orbit")  # (time,)
    assert one.mv.dims == ("time",)
    np.testing.assert_allclose(one.mv.values, out.mv.values[:, 1], rtol=1e-6)
    lo, hi = default_parameters("lai").mv_min, default_parameters("lai").mv_max
    assert float(out.mv.min()) >= lo - 1e-6 and float(out.mv.max()) <= hi + 1e-6


def test_parameters_as_keywords_and_as_a_set():
    cube = s1_cube()
    base = cube.physics.soil_moisture().mv
    wetter = cube.physics.soil_moisture(mv_mean=0.3, mv_max=0.45).mv
    assert float((wetter - base).mean()) > 0.01  # the prior mean sets the level
    ndvi = cube.rename(lai="ndvi").assign(ndvi=lambda d: d.ndvi / 6.0)
    assert "ndvi" in ndvi.physics.soil_moisture().attrs["source"]  # the NDVI defaults
    raw = cube.physics.soil_moisture(parameters=uncalibrated_parameters("lai")).mv
    assert not np.allclose(raw.values, base.values)
    with pytest.raises(TypeError, match="mv_mea"):
        cube.physics.soil_moisture(mv_mea=0.3)
    with pytest.raises(OutOfRangeError, match="mv_mean"):
        cube.physics.soil_moisture(mv_mean=0.9)
    with pytest.raises(OutOfRangeError, match="mv_min"):
        cube.physics.soil_moisture(mv_min=0.3, mv_max=0.2)
    with pytest.raises(InvalidArgumentError, match="ChangeDetectionParameters"):
        cube.physics.soil_moisture(parameters={"mv_mean": 0.2})


def test_inverse_method_is_the_shipped_network():
    cube = s1_cube().chunk(y=2)
    counter = CountingScheduler()
    with dask.config.set(scheduler=counter):
        out = cube.physics.soil_moisture("inverse")
        assert counter.calls == 0
    assert out.attrs["soil_moisture_method"] == "inverse" and "s1_lai" in out.attrs["source"]
    ref = cube.physics.retrieve(["mv"], model="pretrained-s1")
    np.testing.assert_array_equal(out.mv.values, ref.mv.values)
    np.testing.assert_array_equal(out.mv_std.values, ref.mv_std.values)
    assert out.mv.dims == ("time", "y", "x") and out.mv.attrs["valid_max"] == 0.5
    assert out.mv.chunks == ref.mv.chunks
    with pytest.raises(InvalidArgumentError, match="change-detection"):
        cube.physics.soil_moisture("inverse", mv_mean=0.2)
    with pytest.raises(InvalidArgumentError, match="orbit"):
        cube.physics.soil_moisture("inverse", orbit="relative_orbit")


def test_errors_name_the_problem():
    cube = s1_cube()
    sm = xr.Dataset.physics.soil_moisture
    with pytest.raises(InvalidArgumentError, match="method must be one of"):
        cube.physics.soil_moisture("wcm")
    for method in ("change-detection", "inverse"):
        with pytest.raises(MissingVariableError, match="VH"):
            cube.drop_vars("VH").physics.soil_moisture(method)
        with pytest.raises(MissingVariableError, match=r"lai.*ndvi.*B4 and B8"):
            cube.drop_vars("lai").physics.soil_moisture(method)
        with pytest.raises(TimeAxisError, match="'time' dimension"):
            cube.isel(time=0).physics.soil_moisture(method)
        with pytest.raises(TimeAxisError, match="datetime64"):
            cube.assign_coords(time=np.arange(NT)).physics.soil_moisture(method)
    with pytest.raises(TimeAxisError, match="sortby"):
        cube.isel(time=slice(None, None, -1)).physics.soil_moisture()
    with pytest.raises(InvalidArgumentError, match="CPU"):
        cube.physics.soil_moisture(device="cuda")
    with pytest.raises(InvalidArgumentError, match="dims"):
        cube.assign(orbit=cube.VV).physics.soil_moisture(orbit="orbit")
    with pytest.raises(MissingVariableError, match="orbit"):
        cube.physics.soil_moisture(orbit="track")
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        cube.physics.soil_moisture(batch_size=0)
    lazy = cube.assign(VV=10 * np.log10(cube.VV)).chunk(x=2).physics.soil_moisture()
    with pytest.raises(InputUnitsError, match="dB"):  # checked when the chunk is computed
        lazy.compute()
    radians = cube.assign_coords(theta=np.radians(cube.theta))
    with pytest.raises(InputUnitsError, match="radians"):
        radians.physics.soil_moisture().compute()
    assert sm.__doc__.startswith("Surface soil moisture")


# --- the shipped defaults: refit on the measured data -----------------------------------


@functools.cache
def _bench_real():
    spec = importlib.util.spec_from_file_location(
        "bench_real", REPO / "benchmarks" / "bench_real.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not MNI.exists(), reason=f"measured data not found at {MNI}")
@pytest.mark.parametrize("descriptor", ["lai", "ndvi"])
def test_the_shipped_defaults_are_the_fit_on_mni_2017(descriptor):
    bench = _bench_real()
    rows, _ = bench.load_mni(MNI)
    fitted = bench.fit_change_detection_on(rows, descriptor)
    shipped = default_parameters(descriptor)
    assert shipped.fields == fitted.fields and shipped.descriptor == descriptor
    for pol in ("vv", "vh"):
        a, b = getattr(shipped, pol), getattr(fitted, pol)
        got = [a.s0, a.b, a.noise_db, a.drift_db]
        np.testing.assert_allclose(got, [b.s0, b.b, b.noise_db, b.drift_db], rtol=1e-4, atol=1e-8)
        assert a.incidence_slope is None and b.incidence_slope is None
    for name in ("mv_mean", "mv_std", "mv_corr_days", "mv_min", "mv_max", "theta_ref"):
        assert getattr(shipped, name) == pytest.approx(getattr(fitted, name), rel=1e-9)
    assert dict(shipped.lofo_rmse)["mv"] < 0.06
