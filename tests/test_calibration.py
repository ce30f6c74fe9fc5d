"""Model-error calibration of an inverse network's std (``xr_physcube.inverse.calibration``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xr_physcube.exceptions import DimensionError, InvalidArgumentError
from xr_physcube.inverse import InverseModel, load_pretrained
from xr_physcube.inverse.calibration import calibrate, fit_model_error


def test_fit_recovers_a_known_model_error():
    rng = np.random.default_rng(0)
    mean = rng.uniform(0.0, 6.0, 20_000)
    std = np.full_like(mean, 0.2)
    a, b = 0.3, 0.15
    truth = mean + rng.standard_normal(mean.size) * np.sqrt(std**2 + (a + b * mean) ** 2)
    fa, fb = fit_model_error(mean, std, truth)
    assert fa == pytest.approx(a, abs=0.03) and fb == pytest.approx(b, abs=0.01)
    # residuals the network's own std already explains need no model error
    truth = mean + rng.standard_normal(mean.size) * std
    fa, fb = fit_model_error(mean, std, truth)
    assert fa < 0.02 and fb < 0.01


def test_fit_refuses_bad_input():
    with pytest.raises(DimensionError):
        fit_model_error([1.0, 2.0], [0.1, 0.1], [1.0])
    with pytest.raises(DimensionError, match="at least 3"):
        fit_model_error([1.0, np.nan, 2.0], [0.1, 0.1, 0.1], [1.0, 1.0, np.nan])


def test_model_error_widens_only_the_std_and_survives_saving(tmp_path):
    net = load_pretrained("s2").with_model_error({})  # the network's own std only
    x = torch.tensor([[0.04, 0.07, 0.05, 0.12, 0.3, 0.38, 0.4, 0.42, 0.25, 0.13, 35.0, 5.0, 90.0]])
    mean0, std0 = net.predict(x)
    wide = net.with_model_error({"lai": (0.4, 0.1)})
    mean1, std1 = wide.predict(x)
    torch.testing.assert_close(mean1, mean0, rtol=0, atol=0)
    i = net.output_names.index("lai")
    expect = torch.sqrt(std0[0, i] ** 2 + (0.4 + 0.1 * mean0[0, i]) ** 2)
    torch.testing.assert_close(std1[0, i], expect)
    others = [j for j in range(len(net.output_names)) if j != i]
    torch.testing.assert_close(std1[0, others], std0[0, others], rtol=0, atol=0)
    assert not net.model_error  # the original is untouched
    assert load_pretrained("s2").model_error["lai"][0] > 0  # shipped: calibrated on field data
    back = InverseModel.load(wide.save(tmp_path / "wide.pt"))
    assert back.model_error == {"lai": (0.4, 0.1)}
    with pytest.raises(InvalidArgumentError):
        net.with_model_error({"lai": (-1.0, 0.0)})
    with pytest.raises(InvalidArgumentError):
        net.with_model_error({"nope": (1.0, 0.0)})


def test_calibrate_gives_coverage_on_the_calibration_samples():
    net = load_pretrained("s2")
    rng = np.random.default_rng(1)
    n = 400
    refl = rng.uniform(0.02, 0.4, (n, 10))
    x = np.concatenate([refl, rng.uniform(20, 60, (n, 1)), rng.uniform(0, 10, (n, 1)),
                        rng.uniform(0, 180, (n, 1))], -1).astype(np.float32)  # fmt: skip
    mean, _ = net.predict(torch.as_tensor(x))
    truth = mean[:, 0].numpy() + rng.normal(0.0, 1.0, n)  # 1 m2/m2 of unexplained error
    tuned = calibrate(net, x, truth, "lai")
    m, s = tuned.predict(torch.as_tensor(x))
    inside = np.abs(truth - m[:, 0].numpy()) <= 2 * s[:, 0].numpy()
    assert 0.9 <= inside.mean() <= 0.99
    assert "model_error_lai" in tuned.metadata
