"""The shipped inverse networks: their registry (:data:`NETWORKS`), weights, loading and
rebuild.

:func:`load_pretrained` gives a shipped network ready for
:meth:`~xr_physcube.inverse.nets.InverseModel.predict` (inference needs no training
code); :func:`train_pretrained` rebuilds one reproducibly from its
:class:`NetworkSpec` (``xr-physcube train-inverse NAME``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import xarray as xr

from xr_physcube.exceptions import InvalidArgumentError
from xr_physcube.inverse.nets import InverseModel
from xr_physcube.inverse.simulate import (
    DERIVED_ATTRS,
    SimulationConfig,
    simulate_s1,
    simulate_s2,
    torch_threads,
)
from xr_physcube.models.prosail import PROSAIL_PARAMETERS
from xr_physcube.models.sar import MV
from xr_physcube.parameters import positive_int
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
            raise InvalidArgumentError(f"no attributes known for output {n!r}")
        attrs[n] = {"long_name": a["long_name"], "units": a["units"]}
    return attrs


def training_data(
    spec: NetworkSpec,
    n: int,
    seed: int,
    progress: bool = True,
    config: SimulationConfig | None = None,
    num_threads: int | None = 1,
) -> xr.Dataset:
    """``n`` training simulations (with truth) of the network described by ``spec``."""
    sim = simulate_s2 if spec.sensor == "S2" else simulate_s1
    return sim(n, seed=seed, config=config, progress=progress, num_threads=num_threads)


def network_spec(name: str) -> NetworkSpec:
    """The :class:`NetworkSpec` of a shipped network ("s2", "Pretrained-S1", ...)."""
    key = ALIASES.get(name.lower(), name.lower())  # "S2", "Pretrained-S2" are fine
    if key not in NETWORKS:
        known = sorted(NETWORKS) + sorted(ALIASES)
        raise InvalidArgumentError(f"unknown network {name!r}; known: {known}")
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
    n = spec.n_samples if n_samples is None else positive_int(n_samples, "n_samples")
    start = time.perf_counter()
    config = SimulationConfig()
    data = training_data(spec, n, seed, progress, config, num_threads)
    sim_seconds = time.perf_counter() - start
    torch.manual_seed(seed)  # weight initialisation
    model = InverseModel(spec.inputs, spec.outputs, output_attrs(spec.outputs), spec.hidden)
    from xr_physcube.inverse.train import arrays, fit

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
        "retrain": f"xr-physcube train-inverse {spec.name} --samples {n} --seed {seed}",
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
