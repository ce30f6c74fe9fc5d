"""Sentinel-1 (+ NDVI) soil-moisture inverse network: simulation and shipped weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import xarray as xr

from xr_physcube.inverse import InverseModel, load_pretrained
from xr_physcube.inverse.pretrained import NETWORKS, output_attrs
from xr_physcube.inverse.simulate import simulate_s1
from xr_physcube.inverse.train import arrays, fit
from xr_physcube.models.sar import water_cloud_backscatter

S1 = NETWORKS["s1"]


@pytest.fixture(scope="module")
def sim() -> xr.Dataset:
    return simulate_s1(1500, seed=21, batch_size=512, progress=False, num_threads=1)


def test_s1_simulation_contents(sim):
    for name in (*S1.inputs, *S1.outputs, "hrms", "lai"):
        assert bool(np.isfinite(sim[name]).all()), name
    ndvi = (sim.B8 - sim.B4) / (sim.B8 + sim.B4)
    np.testing.assert_allclose(sim.ndvi, ndvi, rtol=1e-5, atol=1e-6)
    assert float(sim.theta.min()) >= 29.0 and float(sim.theta.max()) <= 46.0
    assert bool((sim.VV > 0).all()) and float(sim.VH.median()) < float(sim.VV.median())
    assert sim.mv.attrs["units"] == "m3 m-3"


def test_s1_speckle_is_unit_mean_gamma(sim):
    """sigma0 / noiseless WCM sigma0 ~ Gamma(8, 1/8): mean 1, variance 1/8."""
    clean = water_cloud_backscatter(
        mv=torch.as_tensor(sim.mv.values, dtype=torch.float64),
        hrms=torch.as_tensor(sim.hrms.values, dtype=torch.float64),
        theta=torch.as_tensor(sim.theta.values, dtype=torch.float64),
        lai=torch.as_tensor(sim.lai.values, dtype=torch.float64),
    )
    ratio = sim.VV.values / clean.vv.numpy()
    assert ratio.mean() == pytest.approx(1.0, abs=0.03)
    assert ratio.var() == pytest.approx(1.0 / 8.0, rel=0.15)


def test_s1_features_in_db():
    model = InverseModel(S1.inputs, S1.outputs, output_attrs(S1.outputs), hidden=(8,))
    x = torch.tensor([[0.1, 0.01, 40.0, 0.5]])
    f = model.features(x)[0]
    torch.testing.assert_close(f, torch.tensor([-10.0, -20.0, math.cos(math.radians(40)), 0.5]))


def test_s1_training_lowers_loss(sim):
    model = InverseModel(S1.inputs, S1.outputs, output_attrs(S1.outputs), hidden=(16, 16))
    history = fit(model, arrays(sim, S1.inputs), arrays(sim, S1.outputs), epochs=10,
                  batch_size=128, progress=False)  # fmt: skip
    assert history["val"][-1] < history["val"][0]


def test_pretrained_s1(sim):
    net = load_pretrained("pretrained-s1")
    assert net.input_names == ("VV", "VH", "theta", "ndvi")
    assert net.output_names == ("mv",) and net.output_attrs["mv"]["units"] == "m3 m-3"
    mean, std = net.predict(arrays(sim, net.input_names))
    truth = arrays(sim, ["mv"])
    r2 = 1.0 - float(((mean - truth) ** 2).mean() / truth.var())
    # single-date, per-pixel: speckle (ENL 8, ~1.5 dB per channel) and unknown roughness
    # (hrms 0.4-3 cm moves Oh's sigma0 by ~10 dB) leave R² ~0.3 (0.38 on bare soil); the
    # network must still clearly beat the prior mean (R² = 0)
    assert r2 > 0.2
    inside = float(((mean - truth).abs() <= std).float().mean())
    assert 0.6 < inside < 0.76
    nan_in = torch.tensor([[math.nan, 0.01, 40.0, 0.5]])
    assert bool(net.predict(nan_in)[0].isnan().all())
