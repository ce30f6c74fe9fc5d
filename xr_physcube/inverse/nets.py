"""Inverse networks: per-pixel MLPs predicting a Gaussian (mean, std) per variable.

:class:`InverseModel` takes raw inputs in physical units, in the order of its
``input_names`` (e.g. S2 reflectances B2…B12 and the angles tts, tto, psi in degrees;
angles enter as cosines), normalises them with statistics stored in the model, and
returns the mean and standard deviation of each output in physical units. Rows with
any NaN input give NaN outputs. :class:`BVNet` is the SNAP biophysical-processor
baseline (one hidden layer of 5 tanh neurons, one network per variable; Weiss & Baret
2016) used for comparison.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

ANGLE_INPUTS = ("tts", "tto", "psi", "theta")
"""Inputs given in degrees and fed to the network as cosines."""
DB_INPUTS = ("VV", "VH")
"""Inputs given as linear sigma0 and fed to the network in dB."""


def check_inputs(required: Iterable[str], available: Iterable[str]) -> None:
    """Raise ``ValueError`` naming every required input missing from ``available``."""
    available = set(available)
    missing = [name for name in required if name not in available]
    if missing:
        raise ValueError(f"missing input(s) {missing}; the network needs {list(required)}")


class InverseModel(nn.Module):
    """MLP (inputs -> mean and std of each output), with its normalisation and metadata.

    Args:
        input_names: raw input names, in order (S2 bands, angles, VV/VH, ndvi ...).
        output_names: predicted variables, in order.
        output_attrs: CF attributes per output (units, long_name).
        hidden: hidden layer widths.
    """

    def __init__(
        self,
        input_names: Sequence[str],
        output_names: Sequence[str],
        output_attrs: dict[str, dict] | None = None,
        hidden: Sequence[int] = (64, 64),
    ):
        super().__init__()
        self.input_names = tuple(input_names)
        self.output_names = tuple(output_names)
        self.output_attrs = dict(output_attrs or {})
        self.hidden = tuple(hidden)
        n_in, n_out = len(self.input_names), len(self.output_names)
        layers: list[nn.Module] = []
        width = n_in
        for h in self.hidden:
            layers += [nn.Linear(width, h), nn.SiLU()]
            width = h
        layers.append(nn.Linear(width, 2 * n_out))
        self.mlp = nn.Sequential(*layers)
        self.register_buffer("x_mean", torch.zeros(n_in))
        self.register_buffer("x_std", torch.ones(n_in))
        self.register_buffer("y_mean", torch.zeros(n_out))
        self.register_buffer("y_std", torch.ones(n_out))
        self.register_buffer("y_min", torch.full((n_out,), -math.inf))
        self.register_buffer("y_max", torch.full((n_out,), math.inf))
        angle = [n in ANGLE_INPUTS for n in self.input_names]
        db = [n in DB_INPUTS for n in self.input_names]
        self.register_buffer("_angle_mask", torch.tensor(angle), persistent=False)
        self.register_buffer("_db_mask", torch.tensor(db), persistent=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Raw inputs (..., n_in) -> network features (cosines of angles, dB of sigma0)."""
        x = torch.where(self._angle_mask, torch.cos(torch.deg2rad(x)), x)
        return torch.where(self._db_mask, 10.0 * torch.log10(x.clamp_min(1e-6)), x)

    def set_normalisation(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Store feature and target statistics (from the training set)."""
        f = self.features(x)
        self.x_mean.copy_(f.mean(0))
        self.x_std.copy_(f.std(0).clamp_min(1e-6))
        self.y_mean.copy_(y.mean(0))
        self.y_std.copy_(y.std(0).clamp_min(1e-9))
        self.y_min.copy_(y.min(0).values)
        self.y_max.copy_(y.max(0).values)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised mean and log-variance (..., n_out) — what training optimises."""
        z = (self.features(x) - self.x_mean) / self.x_std
        out = self.mlp(z)
        mean, log_var = out.chunk(2, dim=-1)
        return mean, log_var.clamp(-12.0, 6.0)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation (..., n_out) in physical units; NaN rows -> NaN."""
        if x.shape[-1] != len(self.input_names):
            raise ValueError(
                f"expected {len(self.input_names)} inputs {list(self.input_names)} in the "
                f"last dimension; got shape {tuple(x.shape)}"
            )
        x = x.to(self.x_mean.dtype)
        bad = ~torch.isfinite(x).all(-1, keepdim=True)
        mean, log_var = self(torch.where(bad, torch.zeros_like(x), x))
        std = torch.exp(0.5 * log_var) * self.y_std
        mean = (mean * self.y_std + self.y_mean).clamp(self.y_min, self.y_max)
        nan = torch.full_like(mean, math.nan)
        return torch.where(bad, nan, mean), torch.where(bad, nan, std)

    def predict_numpy(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std = self.predict(torch.as_tensor(np.asarray(x, dtype=np.float32)))
        return mean.numpy(), std.numpy()

    # ---- persistence -----------------------------------------------------------------
    def config(self) -> dict:
        return {
            "input_names": list(self.input_names),
            "output_names": list(self.output_names),
            "output_attrs": self.output_attrs,
            "hidden": list(self.hidden),
        }

    def save(self, path: str | Path, metadata: dict | None = None) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.clone() for k, v in self.state_dict().items()}
        torch.save({"config": self.config(), "state": state, "metadata": metadata or {}}, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> InverseModel:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        model = cls(**blob["config"])
        model.load_state_dict(blob["state"])
        model.metadata = blob.get("metadata", {})
        return model.eval()


class BVNet(nn.Module):
    """SNAP BV-NET design: per variable, inputs -> 5 tanh -> 1 (Weiss & Baret 2016)."""

    def __init__(self, n_inputs: int, n_outputs: int):
        super().__init__()
        self.nets = nn.ModuleList(
            nn.Sequential(nn.Linear(n_inputs, 5), nn.Tanh(), nn.Linear(5, 1))
            for _ in range(n_outputs)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.cat([net(z) for net in self.nets], dim=-1)
