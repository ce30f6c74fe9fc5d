"""The shipped inverse networks: their registry (:data:`NETWORKS`), weights, loading and
rebuild.

:func:`load_pretrained` gives a shipped network ready for
:meth:`~xr_physcube.inverse.nets.InverseModel.predict` (inference needs no training
code); :func:`train_pretrained` rebuilds one reproducibly from its
:class:`NetworkSpec` (``xr-physcube train-inverse NAME``).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
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
from xr_physcube.sensors.sentinel2 import BANDS
from xr_physcube.validation import positive_int

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
    activation: str = "silu"


S2_OUTPUTS = ("lai", "cab", "cw", "cm", "fcover", "fapar", "ccc", "cwc")
NETWORKS = {
    "s2": NetworkSpec(
        "s2",
        "S2",
        (*BANDS, "tts", "tto", "psi"),
        S2_OUTPUTS,
        300_000,
        (32, 32),
        activation="hardswish",
    ),
    "s1": NetworkSpec("s1", "S1", ("VV", "VH", "theta", "ndvi"), ("mv",), 200_000, (32, 32)),
    "s1_lai": NetworkSpec("s1_lai", "S1", ("VV", "VH", "theta", "lai"), ("mv",), 200_000, (32, 32)),
}
"""The shipped networks: S2 (10 bands + angles), S1 with NDVI (VV, VH, incidence, NDVI)
and S1 with LAI (VV, VH, incidence, LAI). The S2 network has two hidden layers of 32
(2.2x the pixels/s of 64 x 64 on one CPU thread, relative RMSEs within 1 % of it on
held-out simulations, all 8 outputs) with Hardswish activations (SiLU costs more per
pixel than the three matrix products together; Hardswish ~1/5 of it; relative RMSEs
within 0.6 % of the SiLU network's on 30,000 held-out simulations, LAI RMSE 0.83 vs
0.83 on the independent PROSAIL noise test and 1.35 vs 1.34 on SENSAGRI; ReLU lost
0.3–1.3 %). One comparison each, same simulations and seed.
``s1`` and ``s1_lai`` share one training design (the same simulations, seed, size and
training); only the vegetation input differs."""
ALIASES: dict[str, tuple[str, ...]] = {
    "pretrained-s2": ("s2",),
    "pretrained-s1": ("s1", "s1_lai"),
}
"""Names that stand for shipped networks; with several, the cube's variables choose
(:func:`choose_network`), and the first is the one :func:`network_spec` gives."""


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
    """The :class:`NetworkSpec` of a shipped network ("s2", "Pretrained-S1", "s1_lai",
    "pretrained-s1_lai", ...); an alias with several networks gives its first."""
    key = name.lower()  # "S2", "Pretrained-S2" are fine
    if key in ALIASES:
        key = ALIASES[key][0]
    elif key.startswith("pretrained-"):
        key = key.removeprefix("pretrained-")
    if key not in NETWORKS:
        known = sorted(NETWORKS) + sorted(ALIASES)
        raise InvalidArgumentError(f"unknown network {name!r}; known: {known}")
    return NETWORKS[key]


def alias_networks(name: str) -> tuple[NetworkSpec, ...]:
    """The shipped networks ``name`` may stand for (one for a plain network name)."""
    key = name.lower()
    if key in ALIASES:
        return tuple(NETWORKS[k] for k in ALIASES[key])
    return (network_spec(name),)


def choose_network(
    name: str, variables: Collection[str], derivable: Collection[str] = ()
) -> NetworkSpec:
    """The shipped network that ``name`` stands for, given what a cube holds.

    For an alias with several networks (``"pretrained-s1"``: ``s1`` reads NDVI,
    ``s1_lai`` reads LAI), the first network whose inputs are all in ``variables``;
    else the first whose inputs are in ``variables`` or ``derivable`` (inputs the
    caller can derive, e.g. NDVI from bands B4 and B8); else the alias's first network
    (whose missing inputs the caller then reports). So a cube with ``ndvi`` gets ``s1``,
    one with ``lai`` and no ``ndvi`` gets ``s1_lai``, one with only B4 and B8 gets
    ``s1``. A plain network name gives that network.
    """
    candidates = alias_networks(name)
    have = set(variables)
    for pool in (have, have | set(derivable)):
        for spec in candidates:
            if set(spec.inputs) <= pool:
                return spec
    return candidates[0]


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
        name: "s2", "s1" or "s1_lai" (or "pretrained-s2"/"pretrained-s1", the latter
            meaning "s1").
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
    model = InverseModel(
        spec.inputs,
        spec.outputs,
        output_attrs(spec.outputs),
        spec.hidden,
        activation=spec.activation,
    )
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
    "s1_lai": VV, VH (linear sigma0), theta (deg), lai (m²/m²) -> mv (m³/m³).
    (On a cube, ``retrieve(model="pretrained-s1")`` picks ``s1`` or ``s1_lai`` from the
    cube's variables: :func:`choose_network`.)
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
