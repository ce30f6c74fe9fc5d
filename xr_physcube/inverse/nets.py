"""Inverse networks: per-pixel MLPs predicting a Gaussian (mean, std) per variable.

:class:`InverseModel` takes raw inputs in physical units, in the order of its
``input_names`` (e.g. S2 reflectances B2…B12 and the angles tts, tto, psi in degrees;
angles enter as cosines, S1 sigma0 in dB), normalises them with statistics stored in
the model, and returns the mean and standard deviation of each output in physical
units. It is trained with the Gaussian negative log-likelihood (Nix & Weigend 1994,
"Estimating the mean and variance of the target probability distribution", Proc.
IEEE ICNN), so the predicted std is the network's own, input-dependent uncertainty
(simulation noise + ill-posedness of the inversion). Rows with any non-finite input
give NaN outputs.

:class:`BVNet` is the baseline of the SNAP Sentinel-2 biophysical processor: one
network per variable with one hidden layer of 5 tanh neurons (Weiss, M. & Baret, F.
(2016), *S2ToolBox Level 2 products: LAI, FAPAR, FCOVER*, v1.1, INRA-EMMAH).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from xr_physcube.checkpoints import load_checkpoint, save_checkpoint
from xr_physcube.exceptions import (
    CheckpointError,
    DimensionError,
    InvalidArgumentError,
    MissingVariableError,
)
from xr_physcube.inverse.observations import check_observations
from xr_physcube.sensors.sentinel1 import linear_to_db
from xr_physcube.validation import check_not_empty, check_real, positive_int

ANGLE_INPUTS = ("tts", "tto", "psi", "theta")
"""Inputs given in degrees and fed to the network as cosines."""
DB_INPUTS = ("VV", "VH")
"""Inputs given as linear sigma0 and fed to the network in dB."""
PREDICT_BATCH = 16_384
"""Rows per pass of :meth:`InverseModel.predict` (~11 MB of temporaries for the S2
network; faster per thread than 65,536, which leaves the CPU caches)."""
LOG_VAR_RANGE = (-12.0, 6.0)
"""Clamp of the normalised log-variance (std from 0.25 % to 20x the target's spread)."""
ACTIVATIONS = {
    "silu": (nn.SiLU, lambda h: functional.silu(h, inplace=True)),
    "hardswish": (nn.Hardswish, lambda h: functional.hardswish(h, inplace=True)),
    "relu": (nn.ReLU, torch.relu_),
}
"""Hidden-layer activations: module class (training) and in-place function (inference).
On one CPU thread, in-place ReLU costs ~1/12 and Hardswish ~1/5 of SiLU per value."""


def check_inputs(required: Iterable[str], available: Iterable[str]) -> None:
    """Raise ``ValueError`` naming every required input missing from ``available``."""
    required = list(required)
    available = set(available)
    missing = [name for name in required if name not in available]
    if missing:
        raise MissingVariableError(f"missing input(s) {missing}; the network needs {required}")


def _cos_deg(x: torch.Tensor) -> torch.Tensor:
    return torch.cos(x * (math.pi / 180.0))


class InverseModel(nn.Module):
    """MLP (inputs -> mean and std of each output), with its normalisation and metadata.

    Args:
        input_names: raw input names, in order (S2 bands, angles, VV/VH, ndvi ...).
        output_names: predicted variables, in order.
        output_attrs: CF attributes per output (units, long_name).
        hidden: hidden layer widths.
        activation: hidden-layer activation, a key of :data:`ACTIVATIONS` (``"silu"``,
            ``"hardswish"``, ``"relu"``).
        model_error: per output, ``(a, b)`` of a model-error standard deviation
            ``a + b·|mean|`` (output units) added in quadrature to the network's own std
            by :meth:`predict`: the spread between the forward model and real data that
            simulations cannot show, calibrated on field data
            (:func:`xr_physcube.inverse.calibration.fit_model_error`). Default none.

    Attributes ``input_names``, ``output_names``, ``output_attrs``, ``model_error`` and
    ``metadata`` (how it was trained and calibrated) travel with the saved file.
    """

    def __init__(
        self,
        input_names: Sequence[str],
        output_names: Sequence[str],
        output_attrs: dict[str, dict] | None = None,
        hidden: Sequence[int] = (64, 64),
        model_error: dict[str, Sequence[float]] | None = None,
        activation: str = "silu",
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise InvalidArgumentError(
                f"unknown activation {activation!r}; known: {sorted(ACTIVATIONS)}"
            )
        self.activation = activation
        self.input_names = tuple(input_names)
        self.output_names = tuple(output_names)
        self.output_attrs = {k: dict(v) for k, v in (output_attrs or {}).items()}
        self.hidden = tuple(int(h) for h in hidden)
        self.model_error = self._check_model_error(model_error or {})
        self.metadata: dict = {}
        n_in, n_out = len(self.input_names), len(self.output_names)
        if len(set(self.input_names)) != n_in or len(set(self.output_names)) != n_out:
            raise InvalidArgumentError("input and output names must be unique")
        layers: list[nn.Module] = []
        width = n_in
        for h in self.hidden:
            layers += [nn.Linear(width, h), ACTIVATIONS[activation][0]()]
            width = h
        layers.append(nn.Linear(width, 2 * n_out))
        self.mlp = nn.Sequential(*layers)
        self.register_buffer("x_mean", torch.zeros(n_in))
        self.register_buffer("x_std", torch.ones(n_in))
        self.register_buffer("y_mean", torch.zeros(n_out))
        self.register_buffer("y_std", torch.ones(n_out))
        self.register_buffer("y_min", torch.full((n_out,), -math.inf))
        self.register_buffer("y_max", torch.full((n_out,), math.inf))
        self._angle_idx = [i for i, n in enumerate(self.input_names) if n in ANGLE_INPUTS]
        self._db_idx = [i for i, n in enumerate(self.input_names) if n in DB_INPUTS]

    def extra_repr(self) -> str:
        return f"inputs={list(self.input_names)}, outputs={list(self.output_names)}"

    def _check_model_error(self, model_error: dict) -> dict[str, tuple[float, float]]:
        out = {}
        for name, ab in model_error.items():
            if name not in self.output_names:
                raise InvalidArgumentError(f"model_error for unknown output {name!r}")
            a, b = (float(v) for v in ab)
            if not (a >= 0.0 and b >= 0.0):
                raise InvalidArgumentError(f"model_error of {name!r} must be >= 0; got {ab}")
            out[name] = (a, b)
        return out

    def with_model_error(self, model_error: dict[str, Sequence[float]]) -> InverseModel:
        """A copy of this network whose :meth:`predict` adds exactly ``model_error`` (see
        the class docstring; ``{}``: none) to the std; the network itself is unchanged."""
        import copy

        net = copy.deepcopy(self)
        net.model_error = net._check_model_error(model_error)
        return net

    # ---- inputs ------------------------------------------------------------------------
    def check_inputs(self, available_names: Iterable[str]) -> None:
        """Raise ``ValueError`` naming this network's inputs absent from ``available_names``."""
        check_inputs(self.input_names, available_names)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Raw inputs (..., n_in) -> network features (cosines of angles, dB of sigma0)."""
        if not self._angle_idx and not self._db_idx:
            return x
        f = x.clone()
        for idx, fn in ((self._angle_idx, _cos_deg), (self._db_idx, linear_to_db)):
            if not idx:
                continue
            if idx == list(range(idx[0], idx[-1] + 1)):  # contiguous: cheap slices
                f[..., idx[0] : idx[-1] + 1] = fn(x[..., idx[0] : idx[-1] + 1])
            else:
                index = torch.tensor(idx, device=x.device)
                f[..., index] = fn(x[..., index])
        return f

    def set_normalisation(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Store feature and target statistics (from the training set)."""
        f = self.features(x)
        self.x_mean.copy_(f.mean(0))
        self.x_std.copy_(f.std(0).clamp_min(1e-6))
        self.y_mean.copy_(y.mean(0))
        self.y_std.copy_(y.std(0).clamp_min(1e-9))
        self.y_min.copy_(y.min(0).values)
        self.y_max.copy_(y.max(0).values)

    # ---- training view -----------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised mean and log-variance (..., n_out): what training optimises."""
        z = (self.features(x) - self.x_mean) / self.x_std
        mean, log_var = self.mlp(z).chunk(2, dim=-1)
        return mean, log_var.clamp(*LOG_VAR_RANGE)

    # ---- inference ---------------------------------------------------------------------
    def _folded(self, dtype: torch.dtype, device) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Linear layers with the input/output normalisation folded in (exact algebra):
        first layer W/σx, b - W μx/σx; last layer scaled to physical mean and to
        log(std) = 0.5 log_var + log σy."""
        linears = [m for m in self.mlp if isinstance(m, nn.Linear)]
        out = []
        for i, lin in enumerate(linears):
            w, b = lin.weight.detach(), lin.bias.detach()
            if i == 0:
                w = w / self.x_std
                b = b - w @ self.x_mean
            if i == len(linears) - 1:
                n = len(self.output_names)
                scale = torch.cat([self.y_std, torch.full_like(self.y_std, 0.5)])
                shift = torch.cat([self.y_mean, torch.log(self.y_std)])
                w = w * scale[:, None]
                b = b * scale + shift
                assert w.shape[0] == 2 * n
            out.append((w.to(device=device, dtype=dtype).T.contiguous(), b.to(device, dtype)))
        return out

    @torch.no_grad()
    def predict(
        self,
        x: torch.Tensor | np.ndarray,
        *,
        batch_size: int = PREDICT_BATCH,
        check_units: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation (..., n_out) in physical units, from raw inputs
        (..., n_in) in the order of ``input_names``. Rows with NaN/inf inputs give NaN.

        Runs ``batch_size`` rows at a time through buffers allocated once per call
        (:class:`_Workspace`) into preallocated outputs, so memory beyond the inputs and
        outputs is bounded by one batch (<1 kB a row) for any number of rows, and no
        batch pays for fresh pages. ``check_units``: refuse inputs in wrong units, batch
        by batch (:func:`~xr_physcube.inverse.observations.check_observations`: digital
        numbers, dB, radians, angles out of range; ``InputUnitsError``/``OutOfRangeError``).

        Raises:
            InputDtypeError: complex or non-numeric ``x``.
            DimensionError: ``x`` is 0-d, empty, or its last dimension is not n_in.
            InvalidArgumentError: ``batch_size`` is not a whole number ≥ 1.
        """
        batch_size = positive_int(batch_size, "batch_size")
        check_real("x (network inputs)", x)
        if not isinstance(x, torch.Tensor):
            x = np.asarray(x)
        n_in = len(self.input_names)
        if x.ndim == 0 or x.shape[-1] != n_in:
            raise DimensionError(
                f"expected {n_in} inputs {list(self.input_names)} in the "
                f"last dimension; got shape {tuple(x.shape)}"
            )
        check_not_empty({"x (network inputs)": x}, "InverseModel.predict")
        x = torch.as_tensor(x)
        dtype, device = self.x_mean.dtype, x.device
        shape = x.shape[:-1]
        rows = x.reshape(-1, n_in)
        n, n_out = rows.shape[0], len(self.output_names)
        mean, std = (
            _empty_outputs((n, n_out), dtype, device),
            _empty_outputs((n, n_out), dtype, device),
        )
        work = _Workspace(self, min(batch_size, n), dtype, device)
        for i in range(0, n, batch_size):
            part = work.load(rows[i : i + batch_size])
            if check_units:
                check_observations(part, self.input_names)
            self._predict_rows(part, work, out=(mean[i : i + batch_size], std[i : i + batch_size]))
        return mean.reshape(*shape, n_out), std.reshape(*shape, n_out)

    def _predict_rows(
        self, x: torch.Tensor, work: _Workspace, out: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std (m, n_out) of a view ``x`` (m, n_in) from :meth:`_Workspace.load`
        (overwritten) through the folded layers, written into ``out`` (two (m, n_out)
        tensors) and returned."""
        m = x.shape[0]
        # one cheap reduction: a finite sum means every input is finite
        finite = bool(torch.isfinite(x.sum()))
        bad = None if finite else ~torch.isfinite(x).all(-1, keepdim=True)
        if bad is not None and not bool(bad.any()):
            bad = None  # the sum overflowed but every value is finite
        if bad is not None:
            x.masked_fill_(bad, 0.0)
        h = work.features(x)
        activate = ACTIVATIONS[self.activation][1]
        for (w, b), buf in zip(work.layers[:-1], work.hidden, strict=True):
            h = activate(torch.addmm(b, h, w, out=buf[:m]))
        w, b = work.layers[-1]
        raw = torch.addmm(b, h, w, out=work.out[:m])
        n = len(self.output_names)
        mean = torch.clamp(raw[:, :n], self.y_min, self.y_max, out=out[0])
        std = torch.clamp(raw[:, n:], *work.log_std_range, out=out[1]).exp_()
        if work.model_error is not None:
            a, b = work.model_error
            error = torch.abs(mean, out=work.error[:m]).mul_(b).add_(a)
            std.mul_(std).addcmul_(error, error).sqrt_()  # hypot, 2.5x faster on CPU
        if bad is not None:
            mean.masked_fill_(bad, math.nan)
            std.masked_fill_(bad, math.nan)
        return mean, std

    def predict_numpy(self, x: np.ndarray, **kwargs) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`predict` on a NumPy array (..., n_in); returns float32 arrays."""
        check_real("x (network inputs)", x)
        mean, std = self.predict(torch.as_tensor(np.asarray(x, dtype=np.float32)), **kwargs)
        return mean.cpu().numpy(), std.cpu().numpy()

    # ---- persistence -------------------------------------------------------------------
    def config(self) -> dict:
        return {
            "input_names": list(self.input_names),
            "output_names": list(self.output_names),
            "output_attrs": self.output_attrs,
            "hidden": list(self.hidden),
            "model_error": {k: list(v) for k, v in self.model_error.items()},
            "activation": self.activation,
        }

    def save(self, path: str | Path, metadata: dict | None = None) -> Path:
        """Write a small ``.pt`` (:mod:`xr_physcube.checkpoints` layout): config, float32
        state_dict and a JSON-able metadata dict."""
        if metadata is not None:
            self.metadata = dict(metadata)
        return save_checkpoint(path, "InverseModel", self.config(), self, self.metadata)

    @classmethod
    def load(cls, path: str | Path) -> InverseModel:
        """Load a network written by :meth:`save` (a ``CheckpointError`` for other files)."""
        blob = load_checkpoint(path, "InverseModel")
        try:
            model = cls(**blob["config"])
        except (TypeError, ValueError, KeyError) as err:
            raise CheckpointError(f"checkpoint {path} has an unusable config: {err}") from err
        try:
            model.load_state_dict(blob["state_dict"])
        except RuntimeError as err:
            raise CheckpointError(f"checkpoint {path} does not fit its config: {err}") from err
        model.metadata = dict(blob["meta"])
        return model.eval()


def _empty_outputs(shape: tuple[int, ...], dtype: torch.dtype, device) -> torch.Tensor:
    """An uninitialised output tensor. On the CPU it is allocated by NumPy, which asks
    Linux for transparent huge pages on large arrays: writing a 32 MB output batch by
    batch then costs ~2 ms instead of ~13 ms of page faults (measured, 2-core CI
    machine); the tensor shares NumPy's memory and behaves as any other."""
    if torch.device(device).type == "cpu" and dtype in (torch.float32, torch.float64):
        np_dtype = np.float32 if dtype == torch.float32 else np.float64
        return torch.from_numpy(np.empty(shape, np_dtype))
    return torch.empty(shape, dtype=dtype, device=device)


class _Workspace:
    """What one :meth:`InverseModel.predict` call reuses across its batches: the folded
    layers, a buffer for the inputs stored column by column (so that the unit checks
    and the angles' cosines run along contiguous memory: ~10x faster than down the
    columns of a row-major batch, and the first layer reads the transposed view at the
    same speed), each layer's output, and the model error (``batch`` rows each, so no
    batch allocates: fresh pages cost more than the arithmetic of a batch), the
    log-std clamp and the model-error coefficients ``(a, b)`` per output (None without
    model error)."""

    def __init__(self, model: InverseModel, batch: int, dtype: torch.dtype, device):
        self.model = model
        self.layers = model._folded(dtype, device)
        n_in = len(model.input_names)
        self.by_column = torch.empty(n_in, batch, dtype=dtype, device=device)
        widths = [w.shape[1] for w, _ in self.layers]
        self.hidden = [torch.empty(batch, k, dtype=dtype, device=device) for k in widths[:-1]]
        self.out = torch.empty(batch, widths[-1], dtype=dtype, device=device)
        n = len(model.output_names)
        self.error = torch.empty(batch, n, dtype=dtype, device=device)
        log_y_std = torch.log(model.y_std).to(device=device, dtype=dtype)
        self.log_std_range = tuple(0.5 * bound + log_y_std for bound in LOG_VAR_RANGE)
        self.model_error = None
        if model.model_error:
            a = torch.zeros(n, dtype=dtype, device=device)
            b = torch.zeros_like(a)
            for name, (ai, bi) in model.model_error.items():
                i = model.output_names.index(name)
                a[i], b[i] = ai, bi
            self.model_error = (a, b)

    def load(self, rows: torch.Tensor) -> torch.Tensor:
        """Copy ``rows`` (m, n_in), m ≤ batch, into the column buffer (in the
        workspace's dtype) and return the (m, n_in) view of it."""
        buffer = self.by_column[:, : rows.shape[0]]
        buffer.copy_(rows.T)
        return buffer.T

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`InverseModel.features` of a view from :meth:`load`: the angles' cosines
        in place, row by row of the column buffer; dB of sigma0 as the model computes it."""
        idx = self.model._angle_idx
        if self.model._db_idx or (idx and idx != list(range(idx[0], idx[-1] + 1))):
            return self.model.features(x)
        if idx:
            self.by_column[idx[0] : idx[-1] + 1, : x.shape[0]].mul_(math.pi / 180.0).cos_()
        return x


class BVNet(nn.Module):
    """SNAP BV-NET design: per variable, inputs -> 5 tanh -> 1 linear (Weiss & Baret 2016).

    Works on normalised features and targets (as SNAP, which maps both to [-1, 1]).
    """

    def __init__(self, n_inputs: int, n_outputs: int):
        super().__init__()
        self.nets = nn.ModuleList(
            nn.Sequential(nn.Linear(n_inputs, 5), nn.Tanh(), nn.Linear(5, 1))
            for _ in range(n_outputs)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.cat([net(z) for net in self.nets], dim=-1)
