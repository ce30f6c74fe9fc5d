"""``ds.physics.grow``: SAFY over every pixel of a daily forcing cube."""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from dask_counting import CountingScheduler

import xr_physcube  # noqa: F401  (registers the accessors)
from xr_physcube.models.safy import safy, shipped_climate

NY, NX = 3, 4  # unequal, so that a y/x mix-up cannot pass
START = "2023-01-01"  # a non-leap year: row i of the shipped climate is day of year i + 1


def forcing_cube(ny: int = NY, nx: int = NX, start: str = START) -> xr.Dataset:
    """The shipped climate broadcast to (time, y, x), temperature offset per pixel, with
    per-pixel d0 and elue, a per-date and a per-pixel non-index coordinate."""
    c = shipped_climate()
    nt = c.doy.size
    offset = np.linspace(-1.0, 1.5, ny * nx).reshape(ny, nx)
    temp = c.temperature[:, None, None] + offset
    rad = np.broadcast_to(c.radiation[:, None, None], (nt, ny, nx))
    return xr.Dataset(
        {
            "tas": (("time", "y", "x"), temp.astype("f4")),
            "rg": (("time", "y", "x"), rad.astype("f4")),
            "d0": (("y", "x"), (110 + 3 * np.arange(ny * nx)).reshape(ny, nx).astype("f4")),
            "elue": (("y", "x"), np.linspace(2.0, 3.5, ny * nx).reshape(ny, nx).astype("f4")),
        },
        coords={
            "time": pd.date_range(start, periods=nt, freq="D"),
            "y": np.arange(ny) * 10.0,
            "x": np.arange(nx) * 10.0,
            "doy": ("time", c.doy),
            "lat": (("y", "x"), np.full((ny, nx), 43.6)),
        },
    )


def grow(ds: xr.Dataset, **kwargs) -> xr.Dataset:
    return ds.physics.grow("tas", "rg", **kwargs)


def test_grow_equals_direct_safy_per_pixel():
    ds = forcing_cube()
    out = grow(ds, hi=0.45)
    assert set(out.data_vars) == {"glai", "biomass", "yield"}
    assert out.glai.dims == ("time", "y", "x")
    assert out.glai.attrs["units"] == "m2 m-2" and out.biomass.attrs["units"] == "g m-2"
    assert out["yield"].attrs["units"] == "g m-2"
    np.testing.assert_array_equal(out.doy, ds.doy)  # non-index coordinates kept
    np.testing.assert_array_equal(out.lat, ds.lat)
    for iy in range(NY):
        for ix in range(NX):
            px = ds.isel(y=iy, x=ix)
            ref = safy(
                torch.from_numpy(px.tas.values),
                torch.from_numpy(px.rg.values),
                d0=float(px.d0),
                elue=float(px.elue),
                hi=0.45,
            )
            got = out.isel(y=iy, x=ix)
            np.testing.assert_allclose(got.glai, ref.glai.numpy(), rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(got.biomass, ref.biomass.numpy(), rtol=1e-5, atol=1e-4)
            np.testing.assert_allclose(got["yield"], ref.yield_.numpy(), rtol=1e-5, atol=1e-4)
    # the per-pixel parameters matter: seasons differ between pixels
    peak_day = out.glai.argmax("time").values
    assert len(np.unique(peak_day)) > 3 and float(out.glai.max()) > 2.0


def test_chunked_equals_unchunked_lazy_and_keeps_spatial_chunks():
    ds = forcing_cube()
    eager = grow(ds)
    assert "yield" not in eager  # no harvest index given
    chunked = ds.chunk(time=100, y=2, x=3)
    counter = CountingScheduler()
    with dask.config.set(scheduler=counter):
        lazy = grow(chunked)
        assert counter.calls == 0  # nothing computed while building the graph
        assert lazy.glai.chunks == ((365,), (2, 1), (3, 1))  # one time chunk, space kept
        np.testing.assert_array_equal(lazy.glai.values, eager.glai.values)
        np.testing.assert_array_equal(lazy.biomass.values, eager.biomass.values)
    # the input's dim order is kept
    swapped = grow(chunked.transpose("y", "time", "x"))
    assert swapped.glai.dims == ("y", "time", "x")
    np.testing.assert_array_equal(
        swapped.glai.transpose("time", "y", "x").values, eager.glai.values
    )


def test_nan_forcing_or_parameter_masks_only_that_pixel():
    ds = forcing_cube()
    clean = grow(ds)
    ds["tas"][200, 1, 2] = np.nan  # one missing day
    ds["elue"][0, 0] = np.nan  # a masked parameter
    out = grow(ds.chunk(y=2, x=2))
    glai = out.glai.values
    assert np.isnan(glai[:, 1, 2]).all() and np.isnan(glai[:, 0, 0]).all()
    keep = np.ones((NY, NX), bool)
    keep[1, 2] = keep[0, 0] = False
    np.testing.assert_array_equal(glai[:, keep], clean.glai.values[:, keep])
    assert np.isfinite(out.biomass.values[:, keep]).all()


def test_emergence_date_is_converted_to_the_series_index():
    ds = forcing_cube(1, 2).drop_vars("d0")
    # 6 May 2023 is day of year 31 + 28 + 31 + 30 + 6 = 126, so d0 = 125
    by_date = grow(ds, emergence="2023-05-06")
    np.testing.assert_array_equal(by_date.glai.values, grow(ds, d0=125).glai.values)
    assert not np.array_equal(by_date.glai.values, grow(ds, d0=124).glai.values)
    # a series starting 1 March at noon: 6 May is day 31 + 30 + 5 = 66 of it
    march = ds.isel(time=slice(59, None))
    march = march.assign_coords(time=march.time + np.timedelta64(12, "h"))
    np.testing.assert_array_equal(
        grow(march, emergence=np.datetime64("2023-05-06")).glai.values,
        grow(march, d0=66).glai.values,
    )
    # per-pixel dates (a time of day is ignored, NaT masks the pixel), also as a dask variable
    dates = np.array([["2023-04-20T15:00", "NaT"]], dtype="datetime64[ns]")
    per_pixel = ds.assign(sowing=(("y", "x"), dates))
    expected = grow(ds.isel(x=[0]), d0=109).glai.values[:, 0, 0]  # 20 April: doy 110
    for cube in (per_pixel, per_pixel.chunk(x=1)):
        got = grow(cube, emergence="sowing").glai.values
        np.testing.assert_array_equal(got[:, 0, 0], expected)
        assert np.isnan(got[:, 0, 1]).all()


def test_emergence_outside_the_series_raises():
    ds = forcing_cube(1, 2).drop_vars("d0")
    with pytest.raises(ValueError, match="outside the forcing series"):
        grow(ds, emergence="2022-12-31")
    with pytest.raises(ValueError, match="outside the forcing series"):
        grow(ds, emergence="2024-01-01")  # the day after the last one
    late = ds.assign(sowing=(("y", "x"), np.array([["2023-05-01", "2024-02-01"]], "M8[ns]")))
    with pytest.raises(ValueError, match="outside the forcing series"):
        grow(late, emergence="sowing")  # NumPy-backed: checked at once
    lazy = grow(late.chunk(x=1), emergence="sowing")  # dask-backed: checked when computed
    with pytest.raises(ValueError, match="outside the forcing series"):
        lazy.compute()
    with pytest.raises(ValueError, match="neither a variable of the Dataset nor a date"):
        grow(ds, emergence="sowing_date")
    with pytest.raises(ValueError, match="either as emergence= or as d0"):
        grow(forcing_cube(1, 2), emergence="2023-05-06")


@pytest.mark.parametrize(
    "times, match",
    [
        (pd.date_range(START, periods=365, freq="2D"), "step of 48 h"),
        (pd.date_range(START, periods=365, freq="h"), "step of 1 h"),
        (pd.date_range(START, periods=366, freq="D").delete(100), "step of 48 h"),
        (np.arange(365), "datetime64"),
    ],
    ids=["two-daily", "hourly", "a missing day", "integer time"],
)
def test_non_daily_time_is_refused(times, match):
    ds = forcing_cube(1, 2).assign_coords(time=times)
    with pytest.raises(ValueError, match=match):
        grow(ds)


def test_missing_variables_and_bad_parameters_are_named():
    ds = forcing_cube(1, 2)
    with pytest.raises(ValueError, match=r"\['temperature', 'radiation'\].*grow\(temperature="):
        ds.physics.grow()
    with pytest.raises(ValueError, match=r"\['rg'\]"):
        ds.drop_vars("rg").physics.grow("tas", "rg")
    with pytest.raises(TypeError, match="unknown SAFY parameter.*'elu'"):
        grow(ds, elu=2.0)
    with pytest.raises(ValueError, match="'elue'.*both"):
        grow(ds, elue=2.0)
    with pytest.raises(ValueError, match="'sla'.*must lie in"):
        grow(ds, sla=0.5)  # scalar: checked at once
    with pytest.raises(ValueError, match="'elue'.*must lie in"):
        grow(ds.assign(elue=ds.elue * 10))  # NumPy-backed per pixel: checked at once
    lazy = grow(ds.assign(elue=ds.elue * 10).chunk())  # dask-backed: when computed
    with pytest.raises(ValueError, match="'elue'.*must lie in"):
        lazy.compute()
    with pytest.raises(ValueError, match="'d0'.*dims"):
        grow(ds.assign(d0=ds.tas * 0 + 120))
    hot = ds.assign(tas=ds.tas + 100).chunk()  # Kelvin-like temperatures
    with pytest.raises(ValueError, match="'temperature'.*must lie in"):
        grow(hot).compute()


def test_grow_on_a_local_cluster():
    """On a worker process: the block function is pickled and runs there."""
    from distributed import Client, LocalCluster, get_task_stream

    ds = forcing_cube()
    expected = grow(ds, hi=0.5)
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        with get_task_stream(client) as stream:
            got = grow(ds.chunk(y=2, x=2), hi=0.5).compute()
        workers = {t["worker"] for t in stream.data}
        assert workers and workers <= set(cluster.scheduler_info["workers"])
    np.testing.assert_array_equal(got["yield"].values, expected["yield"].values)
    np.testing.assert_array_equal(got.glai.values, expected.glai.values)
