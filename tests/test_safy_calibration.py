"""SAFY calibrated per pixel on LAI (models.safy_calibration, ds.physics.calibrate_safy):
recovery of known parameters on noiseless data, NaN dates, bounds, blockwise = in-memory,
laziness, weather handling, CF attributes and typed errors."""

from __future__ import annotations

import dataclasses

import dask
import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from dask_counting import CountingScheduler

import xr_physcube  # noqa: F401  (registers the accessors)
from xr_physcube.exceptions import (
    DimensionError,
    InvalidArgumentError,
    MissingVariableError,
    OutOfRangeError,
    TimeAxisError,
)
from xr_physcube.models import safy_calibration as sc
from xr_physcube.models.safy import safy, shipped_climate

START = 91  # 1 April in the shipped climate
DAYS = pd.date_range("2024-04-01", periods=200)
OBS = np.arange(2, 200, 5)


def _weather() -> xr.Dataset:
    c = shipped_climate()
    sl = slice(START, START + DAYS.size)
    return xr.Dataset(
        {"temperature": ("time", c.temperature[sl]), "radiation": ("time", c.radiation[sl])},
        coords={"time": DAYS},
    )


def _truth(params: dict[str, list[float]]):
    w = _weather()
    out = safy(
        w.temperature.values,
        w.radiation.values,
        emergence_width=1.0,
        **{k: torch.tensor(v, dtype=torch.float64) for k, v in params.items()},
        **{k: v for k, v in sc.MAIZE.fixed.items()},
    )
    return out.glai.numpy(), out.biomass.numpy()


TRUE = {
    "d0": [15.0, 24.0, 20.0, 12.0],
    "elue": [2.5, 3.2, 3.8, 2.9],
    "pla": [0.6] * 4,
    "plb": [5e-4] * 4,
    "stt": [1000.0, 1200.0, 900.0, 1100.0],
    "rs": [6000.0, 9000.0, 5000.0, 12000.0],
}


def _cube(glai: np.ndarray, shape=(2, 2)) -> xr.Dataset:
    lai = glai[:, OBS].T.reshape(OBS.size, *shape).astype(np.float32)
    return xr.Dataset(
        {"lai": (("time", "y", "x"), lai)},
        coords={
            "time": DAYS[OBS],
            "y": np.arange(shape[0]) * 10.0,
            "x": np.arange(shape[1]) * 10.0,
        },
    )


# partitioning known (narrow bounds): what LAI identifies is recovered
NARROW = dataclasses.replace(
    sc.MAIZE,
    fitted={
        **sc.MAIZE.fitted,
        "pla": sc._spec(sc.MAIZE.fitted["pla"], 0.59, 0.61, 0.6),
        "plb": sc._spec(sc.MAIZE.fitted["plb"], 4.9e-4, 5.1e-4, 5e-4),
    },
)


def test_noiseless_fit_recovers_known_parameters_and_biomass():
    glai, biomass = _truth(TRUE)
    w = _weather()
    res = sc.calibrate(
        torch.tensor(w.temperature.values, dtype=torch.float32),
        torch.tensor(w.radiation.values, dtype=torch.float32),
        torch.tensor(glai[:, OBS], dtype=torch.float32),
        torch.tensor(OBS),
        crop=NARROW,
        d0_bounds=(4.0, 30.0),
        steps=15,
        starts=3,
        lai_sigma=0.02,
    )
    assert float(res.rmse.max()) < 0.05
    np.testing.assert_allclose(res.params["d0"].numpy(), TRUE["d0"], atol=1.5)
    np.testing.assert_allclose(res.params["elue"].numpy(), TRUE["elue"], rtol=0.05)
    np.testing.assert_allclose(res.params["stt"].numpy(), TRUE["stt"], rtol=0.1)
    np.testing.assert_allclose(res.biomass[:, -1].numpy(), biomass[:, -1], rtol=0.05)
    # the grid alone (no gradient step) is worse than the gradient fit
    grid = sc.calibrate(
        torch.tensor(w.temperature.values, dtype=torch.float32),
        torch.tensor(w.radiation.values, dtype=torch.float32),
        torch.tensor(glai[:, OBS], dtype=torch.float32),
        torch.tensor(OBS),
        crop=NARROW,
        d0_bounds=(4.0, 30.0),
        steps=0,
        starts=1,
        lai_sigma=0.02,
    )
    assert float(grid.rmse.mean()) > float(res.rmse.mean())


def test_both_jacobians_agree():
    glai, _ = _truth(TRUE)
    w = _weather()
    args = (
        torch.tensor(w.temperature.values, dtype=torch.float32),
        torch.tensor(w.radiation.values, dtype=torch.float32),
        torch.tensor(glai[:2, OBS], dtype=torch.float32),
        torch.tensor(OBS),
    )
    fd = sc.calibrate(*args, crop=NARROW, d0_bounds=(4.0, 30.0), steps=2, grid_size=256)
    ad = sc.calibrate(
        *args, crop=NARROW, d0_bounds=(4.0, 30.0), steps=2, grid_size=256, jacobian="autodiff"
    )
    np.testing.assert_allclose(ad.biomass[:, -1].numpy(), fd.biomass[:, -1].numpy(), rtol=0.05)


def test_nan_dates_are_ignored_and_empty_pixels_are_nan():
    glai, _ = _truth(TRUE)
    cube = _cube(glai)
    w = _weather()
    drop = np.arange(OBS.size) % 3 == 1
    holes = cube.copy(deep=True)
    holes["lai"][drop] = np.nan
    holes["lai"][:, 1, 1] = np.nan  # a pixel without any observation
    a = holes.physics.calibrate_safy("lai", w, "maize", sowing="2024-04-01")
    b = cube.isel(time=~drop).physics.calibrate_safy("lai", w, "maize", sowing="2024-04-01")
    for name in ("elue", "biomass_final", "rmse"):
        np.testing.assert_allclose(a[name].values[0], b[name].values[0], rtol=1e-3)
        np.testing.assert_allclose(a[name].values[1, 0], b[name].values[1, 0], rtol=1e-3)
    assert np.isnan(a.biomass_final.values[1, 1]) and np.isnat(a.emergence.values[1, 1])
    assert int(a.n_obs.values[0, 0]) == int((~drop).sum())


def test_fitted_parameters_respect_the_bounds():
    w = _weather()
    extremes = np.stack(
        [
            np.full(OBS.size, 12.0),
            np.zeros(OBS.size),
            np.linspace(0, 9, OBS.size),
            np.linspace(9, 0, OBS.size),
        ]
    )
    cube = xr.Dataset(
        {"lai": (("time", "x"), extremes.T.astype(np.float32))}, coords={"time": DAYS[OBS]}
    )
    res = cube.physics.calibrate_safy(
        "lai", w, "maize", sowing="2024-04-05", steps=6, prior_scale=100.0
    )
    for name in sc.FITTED[1:]:
        spec = sc.MAIZE.fitted[name]
        assert (res[name].values >= spec.lower * (1 - 1e-5)).all(), name
        assert (res[name].values <= spec.upper * (1 + 1e-5)).all(), name
    lo, hi = sc.MAIZE.emergence_days
    assert (res.d0.values >= 4 + lo - 1e-3).all() and (res.d0.values <= 4 + hi + 1e-3).all()
    assert np.isfinite(res.biomass_final_std.values).all()


def test_blockwise_equals_in_memory_and_is_lazy():
    glai, _ = _truth(TRUE)
    cube = _cube(glai)
    w = _weather()
    eager = cube.physics.calibrate_safy("lai", w, "maize", trajectory=True)
    counter = CountingScheduler()
    with dask.config.set(scheduler=counter):
        lazy = cube.chunk(time=7, y=1, x=2).physics.calibrate_safy(
            "lai", w.chunk(time=50), "maize", trajectory=True
        )
        assert counter.calls == 0
        assert lazy.biomass_final.chunks == ((1, 1), (2,))
        assert lazy.glai.chunks[0] == (DAYS.size,)
        computed = lazy.compute()
    # float32 fits of other batch compositions (a chunk vs the whole cube) differ by
    # rounding: ~2e-5 relative on the fit RMSE seen once; any mix-up of pixels is > 1e-2
    for name in ("d0", "elue", "biomass_final", "yield", "rmse"):
        np.testing.assert_allclose(computed[name].values, eager[name].values, rtol=1e-4)
    np.testing.assert_allclose(  # biomass in g m-2: 1e-3 of a gram is rounding
        computed.biomass.values, eager.biomass.values, rtol=1e-4, atol=1e-3
    )
    # final biomass is the last day of the trajectory; yield = HI x biomass
    np.testing.assert_allclose(eager.biomass.values[-1], eager.biomass_final.values, rtol=1e-6)
    np.testing.assert_allclose(eager["yield"].values, 0.5 * eager.biomass_final.values, rtol=1e-6)


def test_per_pixel_weather_equals_shared_weather():
    glai, _ = _truth(TRUE)
    cube = _cube(glai)
    w = _weather()
    wide = w.expand_dims(y=cube.y, x=cube.x).transpose("time", "y", "x")
    a = cube.physics.calibrate_safy("lai", w, "maize", steps=2)
    b = cube.physics.calibrate_safy("lai", wide, "maize", steps=2)
    np.testing.assert_allclose(a.biomass_final.values, b.biomass_final.values, rtol=1e-5)


def test_cf_attributes_and_std_weighting():
    glai, _ = _truth(TRUE)
    cube = _cube(glai)
    cube["lai_std"] = xr.full_like(cube.lai, 0.3)
    cube = cube.assign_coords(spatial_ref=0, parcel=(("y", "x"), [[1, 1], [2, 2]]))
    cube.attrs["crs"] = "EPSG:32631"
    res = cube.physics.calibrate_safy("lai", _weather(), "maize", steps=1)
    assert "spatial_ref" in res.coords and res.parcel.dims == ("y", "x")
    assert res.attrs["crs"] == "EPSG:32631"
    for name in ("d0", "elue", "biomass_final", "yield", "yield_std", "rmse", "glai"):
        assert res[name].attrs["units"] and res[name].attrs["long_name"], name
    assert res.attrs["crop"] == "maize" and res.glai.dims == ("time", "y", "x")
    assert "biomass" not in res  # trajectory on request only
    weighted = cube.assign(lai_std=cube.lai_std * 10).physics.calibrate_safy(
        "lai", _weather(), "maize", steps=1
    )
    assert (weighted.biomass_final_std.values > res.biomass_final_std.values).all()


def _year_weather() -> xr.Dataset:
    c = shipped_climate()
    days = pd.date_range("2024-01-01", periods=365)
    return xr.Dataset(
        {"temperature": ("time", c.temperature), "radiation": ("time", c.radiation)},
        coords={"time": days},
    )


@pytest.fixture(scope="module")
def demo_s2():
    from xr_physcube.io.demo import load_demo

    return load_demo(size=4, chunks=None)


def test_on_the_output_of_retrieve(demo_s2):
    lai = demo_s2.physics.retrieve(["lai"], model="pretrained-s2")
    assert "lai_std" in lai  # used as weights
    res = lai.physics.calibrate_safy("lai", _year_weather(), "wheat", steps=1).compute()
    assert res.biomass_final.shape == (4, 4) and np.isfinite(res.biomass_final.values).all()
    assert res.attrs["crop"] == "winter_wheat"
    # georeferencing and CF attributes of the accessors' outputs
    assert res.rio.crs == demo_s2.rio.crs and res.rio.transform() == demo_s2.rio.transform()
    assert res.attrs["Conventions"].startswith("CF-")
    for name, var in res.data_vars.items():
        assert var.attrs.get("long_name"), name
        assert var.attrs.get("units") or name == "emergence", name  # a datetime: no units


def test_on_the_output_of_the_data_cube(demo_s2):
    cube = demo_s2.drop_vars(["VV", "VH", "theta"]).vae.datacube()
    res = cube.physics.calibrate_safy("lai", _year_weather(), "maize", steps=1)
    res = res.compute()
    assert np.isfinite(res.biomass_final.values).all()
    assert int(res.n_obs.max()) == cube.sizes["time"]


def test_bad_input_raises_typed_errors():
    glai, _ = _truth(TRUE)
    cube, w = _cube(glai), _weather()
    with pytest.raises(InvalidArgumentError, match="unknown crop"):
        cube.physics.calibrate_safy("lai", w, "rice")
    bad = w.copy(deep=True)
    bad["temperature"][3] = np.nan
    with pytest.raises(InvalidArgumentError, match="NaN"):
        cube.physics.calibrate_safy("lai", bad, "maize")
    with pytest.raises(MissingVariableError):
        cube.physics.calibrate_safy("lai", w.drop_vars("radiation"), "maize")
    with pytest.raises(MissingVariableError):
        cube.physics.calibrate_safy("lai", None, "maize")
    with pytest.raises(MissingVariableError):
        cube.physics.calibrate_safy("ndvi", w, "maize")
    with pytest.raises(DimensionError):
        cube.isel(time=0).physics.calibrate_safy("lai", w, "maize")
    with pytest.raises(TimeAxisError, match="outside the weather"):
        cube.physics.calibrate_safy("lai", w.isel(time=slice(0, 100)), "maize")
    with pytest.raises(TimeAxisError):
        cube.physics.calibrate_safy("lai", w.isel(time=slice(None, None, 2)), "maize")
    with pytest.raises(TimeAxisError, match="sowing"):
        cube.physics.calibrate_safy("lai", w, "maize", sowing="2030-01-01")
    for kw, name in (
        (dict(grid_size=0), "grid_size"),
        (dict(steps=-1), "steps"),
        (dict(starts=2.5), "starts"),
        (dict(prior_scale=0.0), "prior_scale"),
        (dict(lai_sigma=-1.0), "lai_sigma"),
        (dict(batch_size=0), "batch_size"),
        (dict(jacobian="magic"), "jacobian"),
        (dict(emergence_width=0), "emergence"),
        (dict(sowing="not a date"), "sowing"),
    ):
        with pytest.raises(InvalidArgumentError, match=name):
            cube.physics.calibrate_safy("lai", w, "maize", **kw)


def test_cli_writes_biomass_and_yield_maps(tmp_path, capsys):
    from xr_physcube.cli import main

    glai, _ = _truth(TRUE)
    _cube(glai).to_zarr(tmp_path / "lai.zarr", zarr_format=2, consolidated=True)
    w = _weather()
    pd.DataFrame(
        {"date": DAYS, "temperature": w.temperature.values, "radiation": w.radiation.values}
    ).to_csv(tmp_path / "w.csv", index=False)
    out = tmp_path / "maps.zarr"
    argv = [
        "calibrate-safy",
        str(tmp_path / "lai.zarr"),
        "--weather",
        str(tmp_path / "w.csv"),
        "--out",
        str(out),
        "--sowing",
        "2024-04-01",
        "--harvest",
        "2024-10-01",
        "--steps",
        "1",
    ]
    assert main(argv) == 0
    maps = xr.open_zarr(out)
    assert maps.biomass_final.shape == (2, 2) and np.isfinite(maps["yield"].values).all()
    assert maps.attrs["season_end"] == "2024-10-01"
    on_cluster = tmp_path / "cluster.zarr"  # the same job on a two-worker LocalCluster
    assert main([*argv[:5], str(on_cluster), *argv[6:], "--workers", "2"]) == 0
    xr.testing.assert_allclose(xr.open_zarr(on_cluster).load(), maps.load())
    assert main(argv) == 1  # exists: refused without --overwrite
    assert main([*argv[:3], str(tmp_path / "missing.csv"), *argv[4:], "--overwrite"]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_progress_bar_and_small_batches_give_the_same_result(capsys):
    glai, _ = _truth(TRUE)
    cube, w = _cube(glai), _weather()
    a = cube.physics.calibrate_safy("lai", w, "maize", steps=1)
    b = cube.physics.calibrate_safy("lai", w, "maize", steps=1, batch_size=1, progress=True)
    np.testing.assert_allclose(a.biomass_final.values, b.biomass_final.values, rtol=1e-5)
    assert "calibrate_safy" in capsys.readouterr().err


def test_model_level_checks():
    t = torch.full((50,), 15.0)
    r = torch.full((50,), 20.0)
    lai = torch.ones(2, 5)
    day = torch.arange(5) * 10
    bad = t.clone()
    bad[3] = float("nan")
    with pytest.raises(OutOfRangeError, match="temperature"):
        sc.calibrate(bad, r, lai, day)
    with pytest.raises(DimensionError):
        sc.calibrate(t, r, lai, day[:3])
    with pytest.raises(InvalidArgumentError, match="d0_bounds"):
        sc.calibrate(t, r, lai, day, d0_bounds=(30.0, 10.0))
    with pytest.raises(InvalidArgumentError, match="starts"):
        sc.calibrate(t, r, lai, day, grid_size=4, starts=5)
    assert sc.crop_prior("Corn") is sc.MAIZE and sc.crop_prior("wheat") is sc.WINTER_WHEAT


def test_harvest_date_ends_the_season():
    glai, _ = _truth(TRUE)
    cube, w = _cube(glai), _weather()
    res = cube.physics.calibrate_safy("lai", w, "maize", harvest="2024-09-01", trajectory=True)
    assert pd.Timestamp(res.time.values[-1]) == pd.Timestamp("2024-09-01")
    assert res.attrs["season_end"] == "2024-09-01"
    np.testing.assert_allclose(res.biomass.values[-1], res.biomass_final.values, rtol=1e-6)
    assert int(res.n_obs.max()) == int((DAYS[OBS] <= pd.Timestamp("2024-09-01")).sum())
    with pytest.raises(TimeAxisError, match="harvest"):
        cube.physics.calibrate_safy("lai", w, "maize", harvest="2025-01-01")
    with pytest.raises(InvalidArgumentError, match="harvest"):
        cube.physics.calibrate_safy("lai", w, "maize", harvest="soon")
