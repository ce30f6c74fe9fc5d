"""``ds.vae.datacube``: S2 and S1 cubes on their own dates -> physical variables on a
regular time grid (the shipped DataCubeVAE), and the pieces under it (the simulated
seasons, SeriesBatch, checkpoints, training)."""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd
import pytest
import torch
from dask_counting import CountingScheduler

import xr_physcube  # noqa: F401  (registers the accessors)
from xr_physcube.exceptions import (
    DimensionError,
    InvalidArgumentError,
    MissingVariableError,
    TimeAxisError,
)
from xr_physcube.io.demo_season import demo_season
from xr_physcube.vae.datacube import DataCubeConfig, DataCubeVAE, SeriesBatch
from xr_physcube.vae.datacube_train import train_datacube
from xr_physcube.vae.model import PhysVAE, VAEConfig
from xr_physcube.vae.seasons import LEAF_RANGES, simulate_seasons

SIZE = 12


@pytest.fixture(scope="module")
def season():
    return demo_season(size=SIZE, seed=1, chunks=6)


@pytest.fixture(scope="module")
def model():
    return DataCubeVAE.load()


@pytest.fixture(scope="module")
def joint(season, model):
    return season.s2.vae.datacube(s1=season.s1, model=model).compute()


def test_every_latent_with_cf_attrs_on_the_regular_grid(season, model, joint):
    first = min(season.s2.time.values.min(), season.s1.time.values.min())
    last = max(season.s2.time.values.max(), season.s1.time.values.max())
    expected = pd.date_range(pd.Timestamp(first).floor("D"), last, freq="5D")
    np.testing.assert_array_equal(joint.time.values, expected.values)
    assert set(joint.data_vars) == {*model.latent_names, *(f"{n}_std" for n in model.latent_names)}
    assert joint.lai.dims == ("time", "y", "x")
    assert joint.lai.attrs["units"] == "m2 m-2" and joint.mv.attrs["units"] == "m3 m-3"
    assert "posterior" in joint.lai.attrs["long_name"]
    assert np.isfinite(joint.lai).all() and (joint.lai_std > 0).all()
    lo, hi = model.config.ranges["lai"]
    assert float(joint.lai.min()) >= lo and float(joint.lai.max()) <= hi
    np.testing.assert_array_equal(joint.x, season.s2.x)


def test_the_grid_follows_freq_times_start_and_end(season, model):
    cube = season.s2.vae.datacube(s1=season.s1, model=model, freq="10D", start="2024-04-01",
                                  end="2024-06-30")  # fmt: skip
    np.testing.assert_array_equal(
        cube.time.values, pd.date_range("2024-04-01", "2024-06-30", freq="10D").values
    )
    times = pd.to_datetime(["2024-05-02", "2024-05-03", "2024-07-14"])
    explicit = season.s2.vae.datacube(s1=season.s1, model=model, times=times)
    np.testing.assert_array_equal(explicit.time.values, times.values)


def test_it_matches_the_truth_better_than_the_prior(season, joint):
    truth = season.truth.sel(time=joint.time)
    rmse = float(np.sqrt(((joint.lai - truth.lai) ** 2).mean()))
    spread = float(truth.lai.std())
    assert rmse < 0.5 * spread, (rmse, spread)
    mv_rmse = float(np.sqrt(((joint.mv - truth.mv) ** 2).mean()))
    assert mv_rmse < 0.08, mv_rmse


def test_nothing_is_computed_before_compute(season, model):
    counter = CountingScheduler()
    with dask.config.set(scheduler=counter):
        cube = season.s2.vae.datacube(s1=season.s1, model=model)
        assert counter.calls == 0
        assert all(isinstance(v.data, dask.array.Array) for v in cube.data_vars.values())
        cube.lai.isel(time=0).compute()
    assert counter.calls == 1


def test_blockwise_equals_one_chunk_and_in_memory(season, model, joint):
    loaded = season.s2.compute(), season.s1.compute()
    in_memory = loaded[0].vae.datacube(s1=loaded[1], model=model).compute()
    small_tasks = season.s2.vae.datacube(s1=season.s1, model=model, memory_budget=2**20)
    assert small_tasks.lai.data.numblocks[1] > 1
    for other in (in_memory, small_tasks.compute()):
        for name in ("lai", "lai_std", "cab", "mv", "mv_std"):
            np.testing.assert_allclose(other[name], joint[name], rtol=1e-5, atol=1e-6)


def test_two_worker_local_cluster_gives_the_same_cube(season, model, joint):
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster):  # fmt: skip
        got = season.s2.vae.datacube(s1=season.s1, model=model).compute()
    for name in ("lai", "mv_std"):
        np.testing.assert_allclose(got[name], joint[name], rtol=1e-5, atol=1e-6)


def test_pixels_are_independent_and_empty_pixels_are_nan(season, model, joint):
    s2, s1 = season.s2.compute(), season.s1.compute()
    bands = [v for v in s2.data_vars if v.startswith("B")]
    s2[bands] = s2[bands].where((s2.y != s2.y[0]) | (s2.x != s2.x[0]))
    s1[["VV", "VH"]] = s1[["VV", "VH"]].where((s1.y != s1.y[0]) | (s1.x != s1.x[0]))
    s2[bands] = s2[bands].where((s2.y != s2.y[1]) | (s2.x != s2.x[1]))  # (1, 1): S1 only
    got = s2.vae.datacube(s1=s1, model=model).compute()
    assert np.isnan(got.lai[:, 0, 0]).all() and np.isnan(got.mv_std[:, 0, 0]).all()
    assert np.isfinite(got.lai[:, 1, 1]).all()
    assert not np.allclose(got.lai[:, 1, 1], joint.lai[:, 1, 1])
    keep = np.ones((SIZE, SIZE), bool)
    keep[0, 0] = keep[1, 1] = False
    np.testing.assert_allclose(got.lai.values[:, keep], joint.lai.values[:, keep], rtol=1e-5)


def test_either_modality_alone(season, model, joint):
    s2_only = season.s2.vae.datacube(model=model).compute()
    s1_only = season.s1.vae.datacube(model=model).compute()
    s1_too = season.s2.vae.datacube(s1=season.s1, model=model, times=s1_only.time).compute()
    for cube in (s2_only, s1_only):
        assert np.isfinite(cube.lai).all() and np.isfinite(cube.mv).all()
    # S2 informs LAI, S1 soil moisture: the posterior is narrower with the modality
    assert float(s1_only.lai_std.mean()) > float(s1_too.lai_std.mean())
    assert float(s2_only.mv_std.mean()) > float(joint.mv_std.sel(time=s2_only.time).mean())


def test_s1_in_db_gives_the_same_cube_as_linear(season, model, joint):
    s1 = season.s1.copy()
    for p in ("VV", "VH"):
        s1[p] = (10 * np.log10(s1[p])).assign_attrs(units="dB")
    got = season.s2.vae.datacube(s1=s1, model=model).compute()
    np.testing.assert_allclose(got.mv, joint.mv, rtol=1e-4, atol=1e-5)


def test_reconstruct_observations_on_their_own_dates(season, model):
    s2_model, s1_model = season.s2.vae.reconstruct_observations(s1=season.s1, model=model)
    np.testing.assert_array_equal(s2_model.time, season.s2.time)
    np.testing.assert_array_equal(s1_model.time, season.s1.time)
    s2_model, s1_model = s2_model.compute(), s1_model.compute()
    assert np.isfinite(s2_model.B4).all()  # cloudy dates are filled too
    clear = np.isfinite(season.s2.B8.values)
    for band in ("B4", "B8", "B11"):
        err = (s2_model[band].values - season.s2[band].values)[clear]
        assert np.sqrt(np.mean(err**2)) < 0.03, band
    db = lambda a: 10 * np.log10(a)  # noqa: E731
    err_db = db(s1_model.VV.values) - db(season.s1.VV.values)
    assert abs(np.nanmean(err_db)) < 0.5 and np.sqrt(np.nanmean(err_db**2)) < 2.5
    none, s1_alone = season.s1.vae.reconstruct_observations(model=model)
    assert none is None and s1_alone.VV.shape == season.s1.VV.shape


def test_clear_errors(season, model):
    with pytest.raises(InvalidArgumentError, match="freq"):
        season.s2.vae.datacube(s1=season.s1, model=model, freq="fortnight")
    with pytest.raises(InvalidArgumentError, match="empty"):
        season.s2.vae.datacube(model=model, start="2024-09-01", end="2024-08-01")
    with pytest.raises(DimensionError, match="like=s2"):
        season.s2.vae.datacube(s1=season.s1.isel(x=slice(1, None)), model=model)
    with pytest.raises(MissingVariableError, match="theta"):
        season.s2.vae.datacube(s1=season.s1.drop_vars("theta"), model=model)
    with pytest.raises(MissingVariableError, match="VH"):
        season.s2.vae.datacube(s1=season.s1.drop_vars("VH"), model=model)
    with pytest.raises(InvalidArgumentError, match="DataCubeVAE"):
        season.s2.vae.datacube(model=PhysVAE(VAEConfig()))
    undated = season.s2.assign_coords(time=np.arange(season.s2.sizes["time"]))
    with pytest.raises(TimeAxisError, match="datetime64"):
        undated.vae.datacube(model=model)


def _series(b: int, t2: int, t1: int) -> SeriesBatch:
    g = torch.Generator().manual_seed(0)
    return SeriesBatch(
        0.05 + 0.3 * torch.rand(b, t2, 10, generator=g), torch.full((b, t2, 3), 30.0),
        torch.linspace(60, 200, t2)[None], -12 + torch.randn(b, t1, 2, generator=g),
        torch.full((b, t1), 38.0), torch.linspace(62, 198, t1)[None],
    )  # fmt: skip


def test_series_batch_checks_shapes():
    with pytest.raises(DimensionError, match="s2 has shape"):
        SeriesBatch(torch.zeros(2, 3, 9), torch.zeros(2, 3, 3), torch.zeros(1, 3),
                    torch.zeros(2, 0, 2), torch.zeros(2, 0), torch.zeros(1, 0))  # fmt: skip
    with pytest.raises(DimensionError, match="same number of dates"):
        SeriesBatch(torch.zeros(2, 3, 10), torch.zeros(2, 3, 3), torch.zeros(1, 4),
                    torch.zeros(2, 0, 2), torch.zeros(2, 0), torch.zeros(1, 0))  # fmt: skip
    assert _series(4, 5, 0).batch == 4 and _series(3, 0, 6).batch == 3


def test_checkpoint_roundtrip_and_a_few_training_steps_lower_the_loss(tmp_path):
    torch.manual_seed(0)
    net = DataCubeVAE(DataCubeConfig(hidden=16, depth=1, heads=4))
    seasons = simulate_seasons(64, seed=5, spectral_step=10)
    losses = train_datacube(net, seasons, steps=30, batch_size=32, lr=3e-3, progress=False,
                            log=lambda _: None)  # fmt: skip
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    path = net.save(tmp_path / "dc.pt")
    back = DataCubeVAE.load(path)
    query = torch.tensor([[70.0, 120.0, 180.0]])
    series = _series(3, 5, 4)
    for a, b in zip(net.infer_series(series, query), back.infer_series(series, query), strict=True):
        torch.testing.assert_close(a, b)


def test_simulated_seasons_are_plausible():
    s = simulate_seasons(200, seed=3, cloud_fraction=0.4, spectral_step=10)
    assert 0.3 < s.s2_cloudy.mean() < 0.5
    assert np.isin(s.s1_day, s.s2_day).mean() < 0.3  # S1 mostly on other days
    assert np.isnan(s.s2_observed()[s.s2_cloudy]).all()
    lai = s.truth["lai"]
    assert np.median(lai.max(1)) > 1.5 and (lai.max(1) > lai[:, 0] + 0.02).mean() > 0.9
    lo, hi = LEAF_RANGES["cw"]
    assert (s.truth["cw"] >= lo).all() and (s.truth["cw"] <= hi).all()
    mv = s.truth["mv"]
    assert np.abs(np.diff(mv, axis=1)).max() > 0.01  # rain-driven dynamics
    assert len(np.unique(np.round(s.s1_theta, 0))) > 3  # two orbits, many angles
