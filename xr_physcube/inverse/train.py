"""Training the inverse networks on forward simulations (and rebuilding the shipped ones).

python -m xr_physcube.inverse.train s2 [--samples 200000] [--seed 0]
xr-physcube train-inverse s2
"""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from xr_physcube.inverse.nets import BVNet, InverseModel
from xr_physcube.inverse.priors import S1_PRIORS
from xr_physcube.inverse.simulate import DERIVED_ATTRS, simulate_s1, simulate_s2
from xr_physcube.models.prosail import PROSAIL_PARAMETERS
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


NETWORKS = {
    "s2": NetworkSpec(
        "s2",
        "S2",
        (*BANDS, "tts", "tto", "psi"),
        ("lai", "cab", "cw", "cm", "fcover", "fapar", "ccc", "cwc"),
        200_000,
    ),
    "s1": NetworkSpec("s1", "S1", ("VV", "VH", "theta", "ndvi"), ("mv",), 200_000, (32, 32)),
}
ALIASES = {"pretrained-s2": "s2", "pretrained-s1": "s1"}


def output_attrs(names) -> dict[str, dict]:
    attrs = {}
    for n in names:
        if n in PROSAIL_PARAMETERS:
            a = PROSAIL_PARAMETERS[n].attrs()
            attrs[n] = {"long_name": a["long_name"], "units": a["units"]}
        elif n in DERIVED_ATTRS:
            attrs[n] = dict(DERIVED_ATTRS[n])
        else:
            a = S1_PRIORS[n].spec.attrs()
            attrs[n] = {"long_name": a["long_name"], "units": a["units"]}
    return attrs


def arrays(ds: xr.Dataset, names) -> torch.Tensor:
    return torch.as_tensor(np.stack([ds[n].values for n in names], -1), dtype=torch.float32)


def gaussian_nll(mean: torch.Tensor, log_var: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * (log_var + (y - mean) ** 2 * torch.exp(-log_var)).mean()


def _split(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, int(n * val_fraction))
    return perm[n_val:], perm[:n_val]


def fit(
    model: InverseModel,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int = 80,
    batch_size: int = 1024,
    lr: float = 3e-3,
    val_fraction: float = 0.1,
    patience: int = 8,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Train with the Gaussian NLL; early stopping on a validation split (best kept)."""
    torch.manual_seed(seed)
    train_idx, val_idx = _split(len(x), val_fraction, seed)
    model.set_normalisation(x[train_idx], y[train_idx])
    y_n = (y - model.y_mean) / model.y_std
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    history: dict[str, list[float]] = {"train": [], "val": []}
    best, best_state, waited = float("inf"), None, 0
    bar = tqdm(range(epochs), desc="training", disable=not progress, leave=False)
    for _ in bar:
        model.train()
        order = train_idx[torch.randperm(len(train_idx))]
        total = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            loss = gaussian_nll(*model(x[idx]), y_n[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        model.eval()
        with torch.no_grad():
            val = float(gaussian_nll(*model(x[val_idx]), y_n[val_idx]))
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
    return history


def fit_bvnet(
    model: InverseModel,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int = 40,
    seed: int = 0,
    batch_size: int = 512,
) -> BVNet:
    """The BV-NET baseline (MSE, one 5-tanh net per variable) on ``model``'s features and
    normalisation, trained on the same samples."""
    torch.manual_seed(seed)
    net = BVNet(len(model.input_names), len(model.output_names))
    z = (model.features(x) - model.x_mean) / model.x_std
    y_n = (y - model.y_mean) / model.y_std
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    for _ in range(epochs):
        order = torch.randperm(len(z))
        for i in range(0, len(z), batch_size):
            idx = order[i : i + batch_size]
            loss = ((net(z[idx]) - y_n[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return net


def simulate_for(spec: NetworkSpec, n: int, seed: int, progress: bool = True) -> xr.Dataset:
    sim = simulate_s2 if spec.sensor == "S2" else simulate_s1
    return sim(n, seed=seed, progress=progress)


def train_pretrained(
    name: str,
    n_samples: int | None = None,
    seed: int = 0,
    out_path: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """Simulate, train and save one of the shipped networks (reproducible from ``seed``)."""
    spec = NETWORKS[ALIASES.get(name, name)]
    n = n_samples or spec.n_samples
    start = time.perf_counter()
    data = simulate_for(spec, n, seed, progress)
    model = InverseModel(spec.inputs, spec.outputs, output_attrs(spec.outputs), spec.hidden)
    history = fit(
        model, arrays(data, spec.inputs), arrays(data, spec.outputs), seed=seed, progress=progress
    )
    metadata = {
        "network": spec.name,
        "n_samples": n,
        "seed": seed,
        "epochs": len(history["val"]),
        "best_val_nll": min(history["val"]),
        "train_seconds": round(time.perf_counter() - start, 1),
        "priors": "xr_physcube.inverse.priors (S2_PRIORS, S2_GEOMETRY, S1_PRIORS)",
        "torch": str(torch.__version__),
    }
    return model.save(out_path or WEIGHTS_DIR / f"{spec.name}.pt", metadata)


def load_pretrained(name: str = "s2") -> InverseModel:
    """A shipped network: "s2" / "pretrained-s2" (10 bands + angles -> LAI, Cab, Cw, Cm,
    FCOVER, FAPAR, CCC, CWC) or "s1" / "pretrained-s1" (VV, VH, theta, NDVI -> mv)."""
    key = ALIASES.get(name, name)
    if key not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; shipped: {sorted(NETWORKS) + sorted(ALIASES)}")
    path = WEIGHTS_DIR / f"{key}.pt"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing; rebuild it with `xr-physcube train-inverse {key}`"
        )
    model = InverseModel.load(path)
    model.name = f"pretrained-{key}"
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
