"""Calibrating an inverse network's uncertainty on field measurements.

A network trained on simulations predicts the spread that the simulations hold (sensor
noise, ill-posedness), not the gap between the forward model and real canopies
(structure, soil backgrounds, L2A processing) nor the field measurement's own error. On
measured data its ``mean ± 2 std`` holds far fewer than 95 % of the truths. A
model-error term fixes the std without touching the mean:

    std_total² = std_net² + (a + b·|mean|)²

with ``a`` (output units) and ``b`` (1) ≥ 0 fitted by maximum likelihood of the
residuals ``truth − mean`` on calibration samples (Gaussian, heteroscedastic). The term
travels with the network (:attr:`~xr_physcube.inverse.nets.InverseModel.model_error`).
Score it on samples it was not fitted on (leave-one-site-out).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.optimize import minimize

from xr_physcube.exceptions import DimensionError, InvalidArgumentError
from xr_physcube.inverse.nets import InverseModel


def fit_model_error(
    mean: Sequence[float], std: Sequence[float], truth: Sequence[float]
) -> tuple[float, float]:
    """Maximum-likelihood ``(a, b)`` of the model-error std ``a + b·|mean|``.

    Args:
        mean, std: the network's predictions (output units) on calibration samples.
        truth: the measured values of the same samples.

    Returns:
        ``(a, b)``, both ≥ 0; rows with a non-finite value are ignored.

    Raises:
        DimensionError: shapes differ, or fewer than 3 usable samples.
    """
    mean, std, truth = (np.asarray(v, dtype=float).ravel() for v in (mean, std, truth))
    if not mean.shape == std.shape == truth.shape:
        raise DimensionError(
            f"mean, std and truth need the same length; got {mean.size}, {std.size}, {truth.size}"
        )
    ok = np.isfinite(mean) & np.isfinite(std) & np.isfinite(truth)
    if ok.sum() < 3:
        raise DimensionError(f"need at least 3 finite samples to fit; got {int(ok.sum())}")
    m, s, r = np.abs(mean[ok]), std[ok], truth[ok] - mean[ok]

    def nll(theta: np.ndarray) -> float:
        a, b = np.exp(theta)
        var = s**2 + (a + b * m) ** 2
        return float(0.5 * np.mean(np.log(var) + r**2 / var))

    scale = max(float(np.sqrt(np.mean(r**2))), 1e-6)
    start = np.log([0.5 * scale, 0.05])
    best = minimize(nll, start, method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-10})
    a, b = np.exp(best.x)
    return float(a), float(b)


def calibrate(
    net: InverseModel, x: torch.Tensor | np.ndarray, truth: Sequence[float], output: str = "lai"
) -> InverseModel:
    """A copy of ``net`` with the model error of ``output`` fitted on samples ``x`` (raw
    inputs in ``net.input_names`` order) with measured ``truth``; the fit is recorded in
    the copy's metadata."""
    if output not in net.output_names:
        raise InvalidArgumentError(f"{output!r} is not an output of the network")
    others = {k: v for k, v in net.model_error.items() if k != output}
    bare = net.with_model_error(others)  # the network's own std for this output
    mean, std = bare.predict(torch.as_tensor(np.asarray(x), dtype=torch.float32))
    i = net.output_names.index(output)
    a, b = fit_model_error(mean[:, i].numpy(), std[:, i].numpy(), truth)
    out = bare.with_model_error({**others, output: (a, b)})
    out.metadata = {**net.metadata, f"model_error_{output}": {"a": a, "b": b, "n": len(truth)}}
    return out
