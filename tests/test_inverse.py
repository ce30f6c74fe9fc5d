"""Inverse networks: priors, simulation, MLP with uncertainty, training, shipped weights.

Reference values are computed independently in the tests (NumPy/SciPy) or come from the
definitions in Weiss & Baret (2016), S2ToolBox Level-2 ATBD (LAI co-distribution).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import xarray as xr
from scipy import stats

from xr_physcube.exceptions import InvalidArgumentError
from xr_physcube.inverse import BVNet, InverseModel, check_inputs, load_pretrained
from xr_physcube.inverse.nets import ACTIVATIONS
from xr_physcube.inverse.pretrained import NETWORKS, WEIGHTS_DIR, output_attrs, train_pretrained
from xr_physcube.inverse.priors import (
    S2_GEOMETRY,
    S2_PRIORS,
    Gaussian,
    Prior,
    PriorSet,
    TruncatedGaussian,
    Uniform,
)
from xr_physcube.inverse.simulate import S2Noise, SimulationConfig, simulate_s2, simulate_to_zarr
from xr_physcube.inverse.train import (
    arrays,
    fit,
    fit_bvnet,
    predict_bvnet,
)
from xr_physcube.inverse.train import gaussian_nll_logvar as gaussian_nll
from xr_physcube.models import prospect, sail
from xr_physcube.sensors.sentinel2 import BANDS

S2 = NETWORKS["s2"]


@pytest.fixture(scope="module")
def sim() -> xr.Dataset:
    return simulate_s2(2500, seed=7, batch_size=1024, progress=False, num_threads=1)


@pytest.fixture(scope="module")
def small_model() -> InverseModel:
    torch.manual_seed(0)
    model = InverseModel(S2.inputs, S2.outputs, output_attrs(S2.outputs), hidden=(16, 16))
    x = torch.rand(64, len(S2.inputs)) * 0.5
    x[:, -3:] = torch.rand(64, 3) * 60.0
    model.set_normalisation(x, torch.rand(64, len(S2.outputs)) * 5.0)
    return model.eval()


def _inputs(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, len(S2.inputs), generator=g) * 0.5
    x[:, -3:] = torch.rand(n, 3, generator=g) * torch.tensor([60.0, 10.0, 180.0])
    return x


# ---- priors ------------------------------------------------------------------------------


def test_priors_within_specs_and_codistribution():
    s = S2_PRIORS.sample(20_000, seed=1)
    for name, values in s.items():
        spec = S2_PRIORS[name].spec
        assert spec.lower <= values.min() and values.max() <= spec.upper, name
    # ATBD co-distribution: Cab range shrinks linearly from [20, 90] at LAI 0 to [45, 90]
    # at LAI_max = 8, so cab >= 20 + (45 - 20) * LAI / 8.
    lower = 20.0 + 25.0 * s["lai"] / 8.0
    assert (s["cab"] >= lower - 1e-9).all()
    dense = s["lai"] > 6.0
    assert dense.sum() > 500 and s["cab"][dense].min() > 38.0
    # without the co-distribution sparse canopies use the full range
    sparse = s["lai"] < 0.5
    assert s["cab"][sparse].min() < 23.0


def test_prior_reproducible_and_configurable():
    a, b = S2_PRIORS.sample(100, seed=3), S2_PRIORS.sample(100, seed=3)
    c = S2_PRIORS.sample(100, seed=4)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["lai"], c["lai"])
    custom = S2_PRIORS.replace(lai=Uniform(0.0, 6.0))
    assert custom.sample(5000, seed=0)["lai"].max() <= 6.0
    assert S2_PRIORS["lai"].distribution != custom["lai"].distribution  # original untouched


def test_truncated_gaussian_matches_scipy_moments():
    d = TruncatedGaussian(2.0, 3.0, 0.0, 8.0)
    x = d.sample(200_000, np.random.default_rng(0))
    ref = stats.truncnorm((0.0 - 2.0) / 3.0, (8.0 - 2.0) / 3.0, loc=2.0, scale=3.0)
    assert x.mean() == pytest.approx(ref.mean(), abs=0.02)
    assert x.std() == pytest.approx(ref.std(), abs=0.02)


def test_gaussian_prior_truncated_to_spec_and_bad_prior_rejected():
    p = Prior(sail.LAI, Gaussian(3.0, 10.0))
    x = PriorSet({"lai": p}).sample(10_000, seed=0)["lai"]
    assert x.min() >= sail.LAI.lower and x.max() <= sail.LAI.upper
    with pytest.raises(ValueError, match="cab"):
        Prior(prospect.CAB, Uniform(-5.0, 50.0))


def test_geometry_within_sentinel2_ranges():
    g = S2_GEOMETRY.sample(5000, seed=0)
    assert g["tto"].max() <= 12.0 and g["tts"].min() >= 15.0 and g["tts"].max() <= 70.0


# ---- simulation --------------------------------------------------------------------------


def test_simulation_contents(sim):
    assert sim.sizes["sample"] == 2500
    for name in (*S2.inputs, *S2.outputs):
        assert name in sim and sim[name].dtype == np.float32
        assert bool(np.isfinite(sim[name]).all()), name
    np.testing.assert_allclose(sim.ccc, sim.lai * sim.cab, rtol=1e-5)
    np.testing.assert_allclose(sim.cwc, sim.lai * sim.cw, rtol=1e-5)
    for v in ("fcover", "fapar"):
        assert float(sim[v].min()) >= 0.0 and float(sim[v].max()) <= 1.0
    assert sim.lai.attrs["units"] == "m2 m-2"
    # dense green canopies: low red, high NIR
    dense = sim.lai > 4
    assert float(sim.B4[dense].mean()) < 0.06 and float(sim.B8[dense].mean()) > 0.3


def test_simulation_reproducible_with_seed():
    a = simulate_s2(50, seed=11, progress=False)
    b = simulate_s2(50, seed=11, progress=False)
    c = simulate_s2(50, seed=12, progress=False)
    xr.testing.assert_identical(a, b)
    assert not np.array_equal(a.B4.values, c.B4.values)


def test_noise_model_statistics():
    """Additive-only noise: residual std = sqrt(a_c² + a_b²) (independent Gaussians)."""
    cfg = SimulationConfig(noise=S2Noise(0.0, 0.01, 0.005, 0.0), keep_noiseless=True)
    ds = simulate_s2(3000, seed=0, config=cfg, progress=False)
    res = np.stack([ds[b] - ds[f"{b}_noiseless"] for b in BANDS])
    assert res.std() == pytest.approx(math.hypot(0.01, 0.005), rel=0.05)
    # the shared term correlates the bands: corr = a_c² / (a_c² + a_b²) = 0.8
    assert np.corrcoef(res[0], res[5])[0, 1] == pytest.approx(0.8, abs=0.05)
    quiet = SimulationConfig(noise=S2Noise(0.0, 0.0, 0.0, 0.0), keep_noiseless=True)
    ds = simulate_s2(20, seed=0, config=quiet, progress=False)
    np.testing.assert_array_equal(ds.B8.values, ds.B8_noiseless.values)


def test_zarr_streaming_equals_in_memory(tmp_path):
    path = simulate_to_zarr(tmp_path / "sim.zarr", 300, seed=5, batch_size=128, progress=False)
    streamed = xr.open_zarr(path).load()
    direct = simulate_s2(300, seed=5, batch_size=128, progress=False)
    assert streamed.sizes["sample"] == 300
    for name in direct.data_vars:
        np.testing.assert_array_equal(streamed[name].values, direct[name].values)


# ---- network -----------------------------------------------------------------------------


def test_predict_shapes_and_dtype(small_model):
    x = _inputs(24).reshape(2, 3, 4, -1)
    mean, std = small_model.predict(x)
    assert mean.shape == std.shape == (2, 3, 4, len(S2.outputs))
    assert mean.dtype == torch.float32 and bool((std > 0).all())
    m_np, s_np = small_model.predict_numpy(x.numpy().astype(np.float64))
    np.testing.assert_allclose(m_np, mean.numpy(), rtol=1e-6)
    assert not mean.requires_grad


def test_fast_predict_equals_plain_forward(small_model):
    """predict() folds the normalisation into the layers; compare with forward()."""
    x = _inputs(100, seed=3)
    mean, std = small_model.predict(x)
    with torch.no_grad():
        m_n, log_var = small_model(x)
    ref_mean = (m_n * small_model.y_std + small_model.y_mean).clamp(
        small_model.y_min, small_model.y_max
    )
    ref_std = torch.exp(0.5 * log_var) * small_model.y_std
    torch.testing.assert_close(mean, ref_mean, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(std, ref_std, rtol=1e-4, atol=1e-6)


def test_batched_predict_with_model_error_equals_forward_and_keeps_input(small_model):
    """predict() reuses one workspace across batches (inputs held column by column, angle
    cosines in place, model error in a buffer): partial last batch, masked rows and the
    model-error term give forward()'s answer, and the caller's array is not touched."""
    net = small_model.with_model_error({"lai": (0.3, 0.2)})
    x = _inputs(203, seed=5)
    x[17, 2] = math.nan
    given = x.clone()
    mean, std = net.predict(x, batch_size=64)
    torch.testing.assert_close(x, given, equal_nan=True)
    with torch.no_grad():
        m_n, log_var = net(x)
    ref_mean = (m_n * net.y_std + net.y_mean).clamp(net.y_min, net.y_max)
    ref_std = torch.exp(0.5 * log_var) * net.y_std
    lai = net.output_names.index("lai")
    ref_std[:, lai] = torch.sqrt(ref_std[:, lai] ** 2 + (0.3 + 0.2 * ref_mean[:, lai].abs()) ** 2)
    good = torch.arange(len(x)) != 17
    torch.testing.assert_close(mean[good], ref_mean[good], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(std[good], ref_std[good], rtol=1e-4, atol=1e-6)
    assert bool(mean[17].isnan().all()) and bool(std[17].isnan().all())
    column_major = x.T.contiguous().T  # same values, other memory layout
    torch.testing.assert_close(net.predict(column_major)[0], mean, equal_nan=True)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_each_activation_predicts_as_forward_and_survives_saving(activation, tmp_path):
    """The in-place activation of predict() is the training module's, for every choice,
    and the choice travels with the saved file (older files without it load as SiLU)."""
    torch.manual_seed(1)
    net = InverseModel(S2.inputs, S2.outputs, hidden=(8, 8), activation=activation).eval()
    x = _inputs(300, seed=2)
    net.set_normalisation(x, torch.rand(300, len(S2.outputs)) * 5.0)
    mean, std = net.predict(x, batch_size=128)
    with torch.no_grad():
        m_n, log_var = net(x)
    ref_mean = (m_n * net.y_std + net.y_mean).clamp(net.y_min, net.y_max)
    torch.testing.assert_close(mean, ref_mean, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(std, torch.exp(0.5 * log_var) * net.y_std, rtol=1e-4, atol=1e-6)
    loaded = InverseModel.load(net.save(tmp_path / "net.pt"))
    assert loaded.activation == activation and torch.equal(loaded.predict(x)[0], mean)
    config = net.config()
    del config["activation"]
    assert InverseModel(**config).activation == "silu"


def test_unknown_activation_is_refused():
    with pytest.raises(InvalidArgumentError, match="unknown activation 'tanh'.*hardswish"):
        InverseModel(S2.inputs, S2.outputs, activation="tanh")


def test_features_are_cosines_of_angles(small_model):
    x = _inputs(5)
    f = small_model.features(x).numpy()
    np.testing.assert_allclose(f[:, -3:], np.cos(np.radians(x[:, -3:].numpy())), rtol=1e-6)
    np.testing.assert_array_equal(f[:, :10], x[:, :10].numpy())


def test_nan_pixels_give_nan_and_leave_others(small_model):
    x = _inputs(6)
    x[1, 3] = math.nan
    x[4, -1] = math.inf
    mean, std = small_model.predict(x)
    bad = torch.tensor([1, 4])
    good = torch.tensor([0, 2, 3, 5])
    assert bool(mean[bad].isnan().all()) and bool(std[bad].isnan().all())
    ref_mean, ref_std = small_model.predict(x[good])
    torch.testing.assert_close(mean[good], ref_mean)
    torch.testing.assert_close(std[good], ref_std)
    all_nan, _ = small_model.predict(torch.full((3, len(S2.inputs)), math.nan))
    assert bool(all_nan.isnan().all())


def test_missing_band_raises_naming_it(small_model):
    available = [n for n in S2.inputs if n != "B8A"]
    with pytest.raises(ValueError, match="B8A"):
        small_model.check_inputs(available)
    with pytest.raises(ValueError, match=r"'B11'.*'tts'"):
        check_inputs(S2.inputs, [n for n in S2.inputs if n not in ("B11", "tts")])
    small_model.check_inputs([*S2.inputs, "extra"])  # extra variables are fine
    with pytest.raises(ValueError, match="13 inputs"):
        small_model.predict(torch.zeros(3, 12))


def test_save_load_roundtrip_identical(small_model, tmp_path):
    path = small_model.save(tmp_path / "net.pt", {"note": "test"})
    loaded = InverseModel.load(path)
    x = _inputs(50, seed=9)
    for a, b in zip(small_model.predict(x), loaded.predict(x), strict=True):
        assert torch.equal(a, b)
    assert loaded.input_names == small_model.input_names
    assert loaded.output_names == small_model.output_names
    assert loaded.output_attrs == small_model.output_attrs
    assert loaded.metadata == {"note": "test"}


def test_gaussian_nll_matches_scipy():
    mean, y = torch.tensor([0.3, -1.0, 2.0]), torch.tensor([0.1, 0.5, 2.2])
    log_var = torch.tensor([0.0, -1.0, 1.5])
    ref = -stats.norm.logpdf(y, mean, np.exp(0.5 * log_var.numpy())).mean()
    ref -= 0.5 * math.log(2.0 * math.pi)
    assert float(gaussian_nll(mean, log_var, y)) == pytest.approx(ref, rel=1e-6)


def test_bvnet_is_one_layer_of_five_tanh_per_variable():
    net = BVNet(13, 8)
    assert len(net.nets) == 8
    for sub in net.nets:
        assert isinstance(sub[1], torch.nn.Tanh) and sub[0].out_features == 5
    assert sum(p.numel() for p in net.parameters()) == 8 * (13 * 5 + 5 + 5 + 1)


# ---- training ----------------------------------------------------------------------------


def test_end_to_end_training_lowers_loss(sim):
    x, y = arrays(sim, S2.inputs), arrays(sim, S2.outputs)
    train, test = slice(0, 2000), slice(2000, None)
    model = InverseModel(S2.inputs, S2.outputs, output_attrs(S2.outputs), hidden=(32, 32))
    history = fit(model, x[train], y[train], epochs=12, batch_size=128, progress=False)
    assert history["val"][-1] < history["val"][0] - 0.3
    assert history["train"][-1] < history["train"][0]
    mean, std = model.predict(x[test])
    lai = S2.outputs.index("lai")
    rmse = float(((mean[:, lai] - y[test, lai]) ** 2).mean().sqrt())
    assert rmse < 0.6 * float(y[test, lai].std())  # far better than predicting the mean
    # deterministic for a seed
    again = InverseModel(S2.inputs, S2.outputs, output_attrs(S2.outputs), hidden=(32, 32))
    fit(again, x[train], y[train], epochs=2, batch_size=128, progress=False)
    once = InverseModel(S2.inputs, S2.outputs, output_attrs(S2.outputs), hidden=(32, 32))
    fit(once, x[train], y[train], epochs=2, batch_size=128, progress=False)
    torch.testing.assert_close(again.predict(x[test])[0], once.predict(x[test])[0])
    baseline = fit_bvnet(model, x[train], y[train], epochs=3)
    assert predict_bvnet(baseline, model, x[test]).shape == mean.shape


# ---- shipped weights ---------------------------------------------------------------------


def test_weights_small():
    files = list(WEIGHTS_DIR.glob("*"))
    assert files and sum(f.stat().st_size for f in files) <= 3 * 1024 * 1024


def test_pretrained_s2_api_and_accuracy(sim):
    net = load_pretrained("s2")
    assert load_pretrained("pretrained-s2").output_names == net.output_names
    assert net.input_names == (*BANDS, "tts", "tto", "psi")
    assert net.output_names == ("lai", "cab", "cw", "cm", "fcover", "fapar", "ccc", "cwc")
    assert net.output_attrs["lai"]["units"] == "m2 m-2"
    assert net.output_attrs["cab"]["units"] == "ug cm-2"
    assert net.metadata["n_samples"] >= 100_000
    # seed 7 is not the training seed: an independent simulated test set. The network's
    # own std is calibrated on simulations; the shipped LAI model error (fitted on field
    # data, tests/test_calibration.py) widens it for real pixels and is left out here.
    mean, std = net.with_model_error({}).predict(arrays(sim, net.input_names))
    truth = arrays(sim, net.output_names)
    for name, r2_min in (("lai", 0.75), ("fcover", 0.9), ("fapar", 0.9), ("ccc", 0.7)):
        i = net.output_names.index(name)
        r2 = 1.0 - float(((mean[:, i] - truth[:, i]) ** 2).mean() / truth[:, i].var())
        assert r2 > r2_min, (name, r2)
        inside = float(((mean[:, i] - truth[:, i]).abs() <= std[:, i]).float().mean())
        assert 0.6 < inside < 0.76, (name, inside)
    with pytest.raises(ValueError, match="unknown network"):
        load_pretrained("s3")


def test_train_pretrained_reproducible(tmp_path):
    """The retraining entry point is deterministic for a seed (tiny run)."""
    a = train_pretrained("s2", 400, seed=3, out_path=tmp_path / "a.pt", progress=False, epochs=2)
    b = train_pretrained("s2", 400, seed=3, out_path=tmp_path / "b.pt", progress=False, epochs=2)
    net_a, net_b = InverseModel.load(a), InverseModel.load(b)
    for (k, va), vb in zip(net_a.state_dict().items(), net_b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
    meta = json.loads(json.dumps(net_a.metadata))  # JSON-able
    assert meta["n_samples"] == 400 and meta["seed"] == 3
    assert meta["simulation"]["priors"]["priors"]["lai"]["distribution"] == "TruncatedGaussian"
