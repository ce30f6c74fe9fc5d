"""Training the inverse networks on forward simulations.

:func:`fit` trains any :class:`~xr_physcube.inverse.nets.InverseModel` with the Gaussian
negative log-likelihood and early stopping on a validation split; :func:`fit_bvnet`
trains the SNAP BV-NET baseline on the same data. The shipped networks are rebuilt by
:func:`xr_physcube.inverse.pretrained.train_pretrained`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from xr_physcube.exceptions import InvalidArgumentError
from xr_physcube.inverse.nets import BVNet, InverseModel, check_inputs
from xr_physcube.validation import positive_float, positive_int


def arrays(ds: xr.Dataset, names: Sequence[str]) -> torch.Tensor:
    """Stack variables of a simulated Dataset into a float32 tensor (n, len(names))."""
    check_inputs(names, ds.variables)
    return torch.as_tensor(np.stack([ds[n].values for n in names], -1), dtype=torch.float32)


def gaussian_nll_logvar(mean: torch.Tensor, log_var: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean Gaussian negative log-likelihood (without the constant 0.5 log 2π)."""
    return 0.5 * (log_var + (y - mean) ** 2 * torch.exp(-log_var)).mean()


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (train, validation) index split, reproducible from ``seed``."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, int(n * val_fraction))
    return perm[n_val:], perm[:n_val]


def _finite_rows(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.isfinite(x).all(-1) & torch.isfinite(y).all(-1)


def _check_options(lr: float, **counts: int) -> None:
    """Counts (epochs, batch size, patience) ≥ 1 and a learning rate > 0."""
    for name, count in counts.items():
        positive_int(count, name)
    positive_float(lr, "lr (learning rate)")


def fit(
    model: InverseModel,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int = 150,
    batch_size: int = 1024,
    lr: float = 3e-3,
    val_fraction: float = 0.1,
    patience: int = 15,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Train with the Gaussian NLL (Adam, cosine learning rate); stop early when the
    validation NLL has not improved for ``patience`` epochs and keep the best weights.

    x: raw inputs (n, n_in) in ``model.input_names`` order; y: targets (n, n_out).
    Returns the per-epoch ``train`` and ``val`` losses.
    """
    _check_options(epochs=epochs, batch_size=batch_size, lr=lr, patience=patience)
    if not 0.0 < val_fraction < 1.0:
        raise InvalidArgumentError(f"val_fraction must lie in (0, 1); got {val_fraction!r}")
    keep = _finite_rows(x, y)
    x, y = x[keep], y[keep]
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    train_idx, val_idx = split_indices(len(x), val_fraction, seed)
    model.set_normalisation(x[train_idx], y[train_idx])
    with torch.no_grad():
        z = (model.features(x) - model.x_mean) / model.x_std
        y_n = (y - model.y_mean) / model.y_std
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    history: dict[str, list[float]] = {"train": [], "val": []}
    best, best_state, waited = float("inf"), None, 0
    bar = tqdm(range(epochs), desc="training", disable=not progress, leave=False)
    for _ in bar:
        model.train()
        order = train_idx[torch.randperm(len(train_idx), generator=generator)]
        total = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            mean, log_var = model.mlp(z[idx]).chunk(2, dim=-1)
            loss = gaussian_nll_logvar(mean, log_var.clamp(-12.0, 6.0), y_n[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        model.eval()
        with torch.no_grad():
            mean, log_var = model.mlp(z[val_idx]).chunk(2, dim=-1)
            val = float(gaussian_nll_logvar(mean, log_var.clamp(-12.0, 6.0), y_n[val_idx]))
        history["train"].append(total / len(train_idx))
        history["val"].append(val)
        bar.set_postfix(train=f"{history['train'][-1]:.3f}", val=f"{val:.3f}")
        if val < best - 1e-4:
            best, best_state, waited = val, copy.deepcopy(model.state_dict()), 0
        else:
            waited += 1
            if waited >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history


def fit_bvnet(
    model: InverseModel,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int = 60,
    seed: int = 0,
    batch_size: int = 512,
    lr: float = 1e-2,
) -> BVNet:
    """The BV-NET baseline (one 5-tanh network per variable, MSE loss) on the same
    inputs and normalisation as ``model``, trained on the same samples.

    SNAP trains each net with Levenberg–Marquardt; Adam with a cosine schedule is used
    here. Predict with :func:`predict_bvnet`.
    """
    _check_options(epochs=epochs, batch_size=batch_size, lr=lr)
    keep = _finite_rows(x, y)
    x, y = x[keep], y[keep]
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    net = BVNet(len(model.input_names), len(model.output_names))
    with torch.no_grad():
        z = (model.features(x) - model.x_mean) / model.x_std
        y_n = (y - model.y_mean) / model.y_std
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    for _ in range(epochs):
        order = torch.randperm(len(z), generator=generator)
        for i in range(0, len(z), batch_size):
            idx = order[i : i + batch_size]
            loss = ((net(z[idx]) - y_n[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return net.eval()


@torch.no_grad()
def predict_bvnet(net: BVNet, model: InverseModel, x: torch.Tensor) -> torch.Tensor:
    """Physical-unit predictions of a baseline trained by :func:`fit_bvnet`."""
    z = (model.features(x.to(model.x_mean.dtype)) - model.x_mean) / model.x_std
    return (net(z) * model.y_std + model.y_mean).clamp(model.y_min, model.y_max)
