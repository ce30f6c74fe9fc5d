"""The float32 bit-indexed table of the plate transmission used in compiled PROSPECT,
against scipy's exponential integral (an independent implementation)."""

import numpy as np
import pytest
import torch
from scipy.special import exp1

from xr_physcube.models._special import _leaf_layer_transmission_f32, transmission_table


def _tau_scipy(k: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):  # 0 * E1(0) = 0 * inf at k = 0, set by callers
        return (1.0 - k) * np.exp(-k) + k * k * exp1(k)


@pytest.fixture(scope="module", autouse=True)
def _table():
    transmission_table(torch.float32, torch.device("cpu"))  # builds the float32 bit table


def test_table_matches_scipy_over_the_whole_range():
    k = np.concatenate([np.geomspace(1e-12, 300.0, 200_001), [0.0, 1.0, 2.0, 255.9, 256.0]])
    got = _leaf_layer_transmission_f32(torch.tensor(k, dtype=torch.float32)).double().numpy()
    want = _tau_scipy(k.astype(np.float32).astype(np.float64))  # same rounded inputs
    want[k == 0] = 1.0
    assert np.abs(got - want).max() < 2e-7  # absolute; tau is in [0, 1]
    moderate = k < 8.0  # tau > 1e-4: relative accuracy at float32 level
    assert (np.abs(got - want)[moderate] / want[moderate]).max() < 2e-6


def test_gradient_is_the_exact_derivative():
    k = torch.tensor(np.geomspace(1e-6, 200.0, 5001), dtype=torch.float32, requires_grad=True)
    _leaf_layer_transmission_f32(k).sum().backward()
    kd = k.detach().double().numpy()
    want = -2.0 * np.exp(-kd) + 2.0 * kd * exp1(kd)  # d tau / dk
    assert np.abs(k.grad.double().numpy() - want).max() < 1e-5
