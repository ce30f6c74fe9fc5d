"""Training the inverse networks on forward simulations (and rebuilding the shipped ones).

``train_pretrained("s2", n_samples, seed, out_path)`` simulates, trains and saves one of
the shipped networks reproducibly; also ``python -m xr_physcube.inverse.train s2`` or
``xr-physcube train-inverse s2``. :func:`fit` trains any :class:`InverseModel` with the
Gaussian negative log-likelihood and early stopping on a validation split;
:func:`fit_bvnet` trains the SNAP BV-NET baseline on the same data.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from xr_physcube.inverse.nets import BVNet, InverseModel, check_inputs
from xr_physcube.inverse.simulate import (
    DERIVED_ATTRS,
    SimulationConfig,
    simulate_s1,
    simulate_s2,
    torch_threads,
)
from xr_physcube.models.prosail import PROSAIL_PARAMETERS
from xr_physcube.models.sar import MV
from xr_physcube.sensors.sentinel2 import BANDS

WEIGHTS_DIR = Path(__file__).parent / "weights"


@dataclass(frozen=True)
class NetworkSpec:
    """What a shipped network reads and predicts, and how it is trained."""

    name: str
    sensor: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    n_samples: int
    hidden: tuple[int, ...] = (64, 64)
    epochs: int = 150
    patience: int = 15


S2_OUTPUTS = ("lai", "cab", "cw", "cm", "fcover", "fapar", "ccc", "cwc")
NETWORKS = {
    "s2": NetworkSpec("s2", "S2", (*BANDS, "tts", "tto", "psi"), S2_OUTPUTS, 300_000),
    "s1": NetworkSpec("s1", "S1", ("VV", "VH", "theta", "ndvi"), ("mv",), 200_000, (32, 32)),
}
"""The shipped networks: S2 (10 bands + angles) and S1 (VV, VH, incidence, NDVI)."""
ALIASES = {"pretrained-s2": "s2", "pretrained-s1": "s1"}


def output_attrs(names: Sequence[str]) -> dict[str, dict]:
    """CF ``long_name``/``units`` of each output, from the specs that own them."""
    attrs = {}
    for n in names:
        if n in PROSAIL_PARAMETERS:
            a = PROSAIL_PARAMETERS[n].attrs()
        elif n == MV.name:
            a = MV.attrs()
        elif n in DERIVED_ATTRS:
            a = DERIVED_ATTRS[n]
        else:
            raise ValueError(f"no attributes known for output {n!r}")
        attrs[n] = {"long_name": a["long_name"], "units": a["units"]}
    return attrs


def arrays(ds: xr.Dataset, names: Sequence[str]) -> torch.Tensor:
    """Stack variables of a simulated Dataset into a float32 tensor (n, len(names))."""
    check_inputs(names, ds.variables)
    return torch.as_tensor(np.stack([ds[n].values for n in names], -1), dtype=torch.float32)


def gaussian_nll(mean: torch.Tensor, log_var: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean Gaussian negative log-likelihood (without the constant 0.5 log 2π)."""
    return 0.5 * (log_var + (y - mean) ** 2 * torch.exp(-log_var)).mean()


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (train, validation) index split, reproducible from ``seed``."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, int(n * val_fraction))
    return perm[n_val:], perm[:n_val]


def _finite_rows(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.isfinite(x).all(-1) & torch.isfinite(y).all(-1)


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
            loss = gaussian_nll(mean, log_var.clamp(-12.0, 6.0), y_n[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        model.eval()
        with torch.no_grad():
            mean, log_var = model.mlp(z[val_idx]).chunk(2, dim=-1)
            val = float(gaussian_nll(mean, log_var.clamp(-12.0, 6.0), y_n[val_idx]))
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


def simulate_for(
    spec: NetworkSpec,
    n: int,
    seed: int,
    progress: bool = True,
    config: SimulationConfig | None = None,
    num_threads: int | None = 1,
) -> xr.Dataset:
    """The training simulations of a network spec."""
    sim = simulate_s2 if spec.sensor == "S2" else simulate_s1
    return sim(n, seed=seed, config=config, progress=progress, num_threads=num_threads)


def network_spec(name: str) -> NetworkSpec:
    key = ALIASES.get(name.lower(), name.lower())  # "S2", "Pretrained-S2" are fine
    if key not in NETWORKS:
        known = sorted(NETWORKS) + sorted(ALIASES)
        raise ValueError(f"unknown network {name!r}; known: {known}")
    return NETWORKS[key]


def train_pretrained(
    name: str,
    n_samples: int | None = None,
    seed: int = 0,
    out_path: str | Path | None = None,
    progress: bool = True,
    epochs: int | None = None,
    num_threads: int | None = 1,
) -> Path:
    """Simulate, train and save one of the shipped networks, reproducibly from ``seed``.

    Args:
        name: "s2" or "s1" (or "pretrained-s2"/"pretrained-s1").
        n_samples: number of simulations (default: the shipped network's).
        seed: seeds the simulation and the training.
        out_path: weights file; default the shipped file in ``inverse/weights``.
        epochs: maximum epochs (default the spec's; early stopping applies).
        num_threads: torch threads for simulation and training (1: deterministic and
            fastest on a shared CPU; None leaves torch's setting).

    Returns the path written. The file's metadata records the samples, seed, priors,
    noise, epochs and validation loss.
    """
    spec = network_spec(name)
    n = n_samples or spec.n_samples
    start = time.perf_counter()
    config = SimulationConfig()
    data = simulate_for(spec, n, seed, progress, config, num_threads)
    sim_seconds = time.perf_counter() - start
    torch.manual_seed(seed)  # weight initialisation
    model = InverseModel(spec.inputs, spec.outputs, output_attrs(spec.outputs), spec.hidden)
    with torch_threads(num_threads):
        history = fit(
            model,
            arrays(data, spec.inputs),
            arrays(data, spec.outputs),
            epochs=epochs or spec.epochs,
            patience=spec.patience,
            seed=seed,
            progress=progress,
        )
    metadata = {
        "network": spec.name,
        "sensor": spec.sensor,
        "n_samples": n,
        "seed": seed,
        "epochs_run": len(history["val"]),
        "best_val_nll": min(history["val"]),
        "simulation_seconds": round(sim_seconds, 1),
        "train_seconds": round(time.perf_counter() - start - sim_seconds, 1),
        "simulation": config.describe(),
        "loss": "Gaussian negative log-likelihood on normalised targets",
        "torch": str(torch.__version__),
        "retrain": f"xr_physcube.inverse.train.train_pretrained({spec.name!r}, {n}, {seed})",
    }
    return model.save(out_path or WEIGHTS_DIR / f"{spec.name}.pt", metadata)


def load_pretrained(name: str = "s2") -> InverseModel:
    """A shipped network, ready for :meth:`InverseModel.predict` (no training needed).

    "s2" / "pretrained-s2": B2, B3, B4, B5, B6, B7, B8, B8A, B11, B12 (reflectance 0–1),
    tts, tto, psi (deg) -> lai, cab, cw, cm, fcover, fapar, ccc, cwc.
    "s1" / "pretrained-s1": VV, VH (linear sigma0), theta (deg), ndvi -> mv (m³/m³).
    """
    spec = network_spec(name)
    path = WEIGHTS_DIR / f"{spec.name}.pt"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing; rebuild it with "
            f"`xr-physcube train-inverse {spec.name} --replace-shipped`"
        )
    model = InverseModel.load(path)
    model.name = f"pretrained-{spec.name}"
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="rebuild a shipped inverse network")
    parser.add_argument("name", choices=sorted(NETWORKS))
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    print(train_pretrained(args.name, args.samples, args.seed, args.out))


if __name__ == "__main__":
    main()
