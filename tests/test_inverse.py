"""Inverse module: priors, simulations, networks, training, shipped weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from scipy import stats

from xr_physcube.inverse import InverseModel, check_inputs, load_pretrained
from xr_physcube.inverse.priors import S2_PRIORS, Prior, TruncatedGaussian
from xr_physcube.inverse.simulate import simulate_s1, simulate_s2, simulate_to_zarr
from xr_physcube.inverse.train import NETWORKS, arrays, fit, gaussian_nll
from xr_physcube.models import prospect
from xr_physcube.sensors.sentinel2 import BANDS


def test_truncated_gaussian_matches_scipy_moments():
    d = TruncatedGaussian(2.0, 3.0, 0.0, 8.0)
    x = d.sample(200_000, np.random.default_rng(0))
    a, b = (0.0 - 2.0) / 3.0, (8.0 - 2.0) / 3.0
    ref = stats.truncnorm(a, b, loc=2.0, scale=3.0)
    assert x.min() >= 0.0 and x.max() <= 8.0
    assert x.mean() == pytest.approx(ref.mean(), abs=0.02)
    assert x.std() == pytest.approx(ref.std(), abs=0.02)


def test_codistribution_narrows_leaf_ranges_at_high_lai():
    s = S2_PRIORS.sample(100_000, seed=1)
    dense = s["lai"] > 6.0
    sparse = s["lai"] < 0.5
    # ATBD design: at LAI_max Cab lies in [45, 90]; near LAI 0 the full [20, 90]
    assert s["cab"][dense].min() > 20.0 + 0.7 * 25.0
    assert s["cab"][sparse].min() < 22.0
    for name, prior in S2_PRIORS.priors.items():
        lo, hi = prior.bounds
        assert s[name].min() >= lo - 1e-9 and s[name].max() <= hi + 1e-9, name


def test_prior_outside_physical_bounds_is_refused():
    with pytest.raises(ValueError, match="'cab'.*outside"):
        Prior(prospect.CAB, TruncatedGaussian(40.0, 10.0, 0.0, 200.0))


def test_simulation_is_reproducible_and_complete():
    a = simulate_s2(300, seed=4, progress=False)
    b = simulate_s2(300, seed=4, progress=False)
    c = simulate_s2(300, seed=5, progress=False)
    xr.testing.assert_identical(a, b)
    assert not np.allclose(a.lai.values, c.lai.values)
    for name in (*BANDS, "lai", "cab", "cw", "cm", "fcover", "fapar", "ccc", "cwc", "tts"):
        assert name in a and a[name].dims == ("sample",) and np.isfinite(a[name]).all(), name
    assert np.allclose(a.ccc, a.lai * a.cab, rtol=1e-5)
    noise = (a.B8 - a.B8_noiseless).values
    assert 0.005 < noise.std() < 0.03  # ATBD-like noise level, not zero
    assert a.lai.attrs["units"] == "m2 m-2"


def test_zarr_streaming_equals_in_memory(tmp_path):
    path = simulate_to_zarr(tmp_path / "sim.zarr", 250, seed=2, batch_size=100, progress=False)
    streamed = xr.open_zarr(path).load()
    direct = simulate_s2(250, seed=2, batch_size=100, progress=False)
    assert streamed.sizes["sample"] == 250
    xr.testing.assert_allclose(streamed, direct)


def test_s1_simulation_has_speckled_backscatter():
    s = simulate_s1(200, seed=0, progress=False)
    assert {"mv", "hrms", "theta", "VV", "VH", "ndvi"} <= set(s.data_vars)
    assert -25 < float(np.median(s.VV_db)) < -5
    assert float(np.median(s.VH_db)) < float(np.median(s.VV_db))


@pytest.fixture(scope="module")
def small_training():
    spec = NETWORKS["s2"]
    data = simulate_s2(3000, seed=0, progress=False)
    x, y = arrays(data, spec.inputs), arrays(data, spec.outputs)
    return spec, x, y


def test_training_lowers_the_loss_and_predicts_shapes(small_training):
    spec, x, y = small_training
    torch.manual_seed(0)
    model = InverseModel(spec.inputs, spec.outputs, hidden=(32, 32))
    model.set_normalisation(x, y)
    y_n = (y - model.y_mean) / model.y_std
    with torch.no_grad():
        before = float(gaussian_nll(*model(x), y_n))
    history = fit(model, x, y, epochs=8, progress=False)
    with torch.no_grad():
        after = float(gaussian_nll(*model(x), y_n))
    assert after < before - 0.5 and len(history["val"]) >= 1
    mean, std = model.predict(x[:7].reshape(7, 1, -1))
    assert mean.shape == (7, 1, len(spec.outputs)) and bool((std > 0).all())


def test_save_load_roundtrip_is_exact(small_training, tmp_path):
    spec, x, y = small_training
    model = InverseModel(spec.inputs, spec.outputs, {"lai": {"units": "m2 m-2"}})
    fit(model, x, y, epochs=1, progress=False)
    path = model.save(tmp_path / "net.pt", {"note": "test"})
    again = InverseModel.load(path)
    for a, b in zip(model.predict(x), again.predict(x), strict=True):
        assert torch.equal(a, b)
    assert again.metadata == {"note": "test"} and again.output_attrs["lai"]["units"] == "m2 m-2"


@pytest.mark.parametrize("name", ["s2", "pretrained-s1"])
def test_shipped_networks_handle_nan_and_name_missing_inputs(name):
    net = load_pretrained(name)
    spec = NETWORKS[name.replace("pretrained-", "")]
    assert net.input_names == spec.inputs and net.output_names == spec.outputs
    data = (simulate_s2 if spec.sensor == "S2" else simulate_s1)(50, seed=7, progress=False)
    x = arrays(data, spec.inputs)
    x[3, 0] = float("nan")
    mean, std = net.predict(x)
    assert torch.isnan(mean[3]).all() and torch.isnan(std[3]).all()
    assert torch.isfinite(mean[[0, 1, 2, 4]]).all()
    with pytest.raises(ValueError, match=r"missing input\(s\) \['" + spec.inputs[0]):
        check_inputs(net.input_names, spec.inputs[1:])
    with pytest.raises(ValueError, match="expected"):
        net.predict(x[:, :-1])


def test_shipped_s2_network_is_accurate_on_fresh_simulations():
    """Held-out simulations (seed never used in training): LAI RMSE < 1, R² > 0.8."""
    net = load_pretrained("s2")
    data = simulate_s2(2000, seed=424242, progress=False)
    spec = NETWORKS["s2"]
    mean, std = net.predict(arrays(data, spec.inputs))
    lai = torch.as_tensor(data.lai.values)
    err = mean[:, 0] - lai
    assert float(err.pow(2).mean().sqrt()) < 1.0
    assert 1 - float(err.pow(2).mean()) / float(lai.var()) > 0.8
    inside = float((err.abs() < std[:, 0]).float().mean())
    assert 0.55 < inside < 0.8


def test_unknown_network_name():
    with pytest.raises(ValueError, match="unknown network"):
        load_pretrained("s3")
