"""The data-cube VAE: S1 and S2 at their own dates in, physical latents at any date out.

Encoder (:class:`DataCubeEncoder`): every acquisition is a token — an S2 date (10
reflectances, sun/view angles) or an S1 date (VV, VH in dB, incidence angle), with its
day of year — embedded by the features of :func:`~xr_physcube.vae.model.features` (a
validity flag per modality; cloudy or missing acquisitions are not attended to). One
self-attention layer mixes the tokens (so an S1 token knows the canopy of the S2 dates
around it); then each *query date* attends to the tokens with a learned penalty on the
time lag per head (the linear bias of ALiBi, Press et al. 2022, *Train Short, Test
Long*, ICLR, on days rather than positions), heads looking both ways, only back or only
forward in time, plus a learned "no token" slot so a query far from any acquisition
falls back on the season prior. The output per query date is the posterior (mean and
log std, logit space) of every physical latent, as in :class:`~xr_physcube.vae.model.PhysVAE`.

Decoder: the physics of :class:`~xr_physcube.vae.model.PhysicalDecoder` (PROSAIL-D →
S2 bands, Water Cloud over Oh → S1 σ0) applied at the observation dates, by querying
the encoder at those dates. Trained (:mod:`xr_physcube.vae.datacube_train`) to
reconstruct held-out acquisitions from the others and, on simulated seasons, to give
the daily truth at any date.

Time is in days (float) since 1 January of a reference year (:func:`days_since_new_year`);
only lags and the day of year enter the model, so the reference does not matter.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from xr_physcube.checkpoints import load_checkpoint, save_checkpoint
from xr_physcube.exceptions import CheckpointError, DimensionError, InvalidArgumentError
from xr_physcube.vae.model import (
    DEFAULT_LATENTS,
    N_FEATURES,
    N_S2,
    OUTPUTS,
    S1_COLUMNS,
    S2_COLUMNS,
    PhysVAE,
    VAEConfig,
    _mlp,
    doy_encoding,
    features,
)

WEIGHTS_DIR = Path(__file__).parent / "weights"
DATACUBE_WEIGHTS = WEIGHTS_DIR / "vae_datacube.pt"
LAG_SCALE_DAYS = 30.0
"""Lags enter the output head as (query − token) / 30 days."""


def days_since_new_year(times: np.ndarray, year: int | None = None) -> np.ndarray:
    """Dates (datetime64) -> float days since 1 January of ``year`` (default: the year of
    the earliest date), so that ``days % 365.25`` is close to the day of year - 1."""
    t = np.asarray(times).astype("datetime64[s]")
    if t.size == 0:
        return np.zeros(0, np.float32)
    if year is None:
        year = int(t.min().astype("datetime64[Y]").astype(int)) + 1970
    ref = np.datetime64(f"{year:04d}-01-01", "s")
    return ((t - ref).astype(np.float64) / 86400.0).astype(np.float32)


@dataclass
class SeriesBatch:
    """The acquisitions of a batch of pixels, each modality on its own dates.

    ``s2`` (B, T2, 10) surface reflectance (NaN: cloudy/missing), ``s2_angles``
    (B, T2, 3) tts, tto, psi (deg), ``s2_day`` (B or 1, T2); ``s1_db`` (B, T1, 2) VV, VH
    in dB (NaN: missing), ``s1_theta`` (B, T1) incidence (deg), ``s1_day`` (B or 1, T1).
    Days as in :func:`days_since_new_year`. A modality may have T = 0 dates.
    """

    s2: torch.Tensor
    s2_angles: torch.Tensor
    s2_day: torch.Tensor
    s1_db: torch.Tensor
    s1_theta: torch.Tensor
    s1_day: torch.Tensor

    def __post_init__(self) -> None:
        b = max(self.s2.shape[0], self.s1_db.shape[0])
        checks = {
            "s2": (self.s2, 3, N_S2), "s2_angles": (self.s2_angles, 3, 3),
            "s1_db": (self.s1_db, 3, 2), "s1_theta": (self.s1_theta, 2, None),
        }  # fmt: skip
        for name, (t, ndim, last) in checks.items():
            if t.ndim != ndim or (last is not None and t.shape[-1] != last):
                raise DimensionError(f"{name} has shape {tuple(t.shape)}; see SeriesBatch")
        if self.s2.shape[1] != self.s2_angles.shape[1] or self.s2.shape[1] != self.s2_day.shape[-1]:
            raise DimensionError("s2, s2_angles and s2_day must have the same number of dates")
        if (
            self.s1_db.shape[1] != self.s1_theta.shape[1]
            or self.s1_db.shape[1] != self.s1_day.shape[-1]
        ):
            raise DimensionError("s1_db, s1_theta and s1_day must have the same number of dates")
        self.batch = b

    def tokens(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(obs (B, T, 12), angles (B, T, 4), day (B, T), valid (B, T)) of the S2 tokens
        then the S1 tokens, in the layout of :class:`~xr_physcube.vae.model.Observations`."""
        b, t2, t1 = self.batch, self.s2.shape[1], self.s1_db.shape[1]
        ref = self.s2 if t2 else self.s1_db
        nan = lambda *s: torch.full(s, float("nan"), dtype=ref.dtype, device=ref.device)  # noqa: E731
        s2_obs = torch.cat([self.s2.expand(b, t2, N_S2), nan(b, t2, 2)], -1)
        s1_obs = torch.cat([nan(b, t1, N_S2), self.s1_db.expand(b, t1, 2)], -1)
        s2_ang = torch.cat([self.s2_angles.expand(b, t2, 3), nan(b, t2, 1)], -1)
        s1_ang = torch.cat([nan(b, t1, 3), self.s1_theta.expand(b, t1)[..., None]], -1)
        obs = torch.cat([s2_obs, s1_obs], 1)
        angles = torch.cat([s2_ang, s1_ang], 1)
        day = torch.cat([self.s2_day.expand(b, t2), self.s1_day.expand(b, t1)], 1).to(ref)
        valid = torch.cat([torch.isfinite(self.s2).all(-1), torch.isfinite(self.s1_db).all(-1)], 1)
        return obs, angles, day, valid


class DataCubeEncoder(nn.Module):
    """Tokens (B, T, N_FEATURES) at days (B, T) -> posterior (mu, log_sigma) (B, Q, n_out)
    at query days (B or 1, Q); see the module docstring. ``heads`` is split into heads
    looking both ways, back only and forward only (half, a quarter, a quarter)."""

    def __init__(self, n_out: int, hidden: int = 64, heads: int = 8, depth: int = 2):
        super().__init__()
        if hidden % heads or heads < 4:
            raise InvalidArgumentError(f"hidden ({hidden}) must be a multiple of heads (≥ 4)")
        self.n_out, self.heads, self.dh = n_out, heads, hidden // heads
        self.embed = _mlp(N_FEATURES + 4, hidden, hidden, depth)
        self.mix = nn.TransformerEncoderLayer(
            hidden, 4, dim_feedforward=2 * hidden, dropout=0.0, batch_first=True
        )
        self.query = _mlp(4, hidden, hidden, 1)
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(hidden, hidden) for _ in range(3))
        # ALiBi-like lag penalties, geometric from 1/day to 1/128 days per head
        self.log_slope = nn.Parameter(torch.log(torch.logspace(0, -2.1, heads)))
        self.null_logit = nn.Parameter(torch.zeros(heads))
        direction = torch.zeros(heads)  # 0 both ways, 1 back only, -1 forward only
        direction[heads // 2 : 3 * heads // 4] = 1.0
        direction[3 * heads // 4 :] = -1.0
        self.register_buffer("direction", direction)
        self.head = _mlp(2 * hidden + 2 * heads, 2 * hidden, 2 * n_out, depth)

    def forward(self, feats, day, valid, query_day):
        b, t = feats.shape[:2]
        qd = query_day.expand(b, query_day.shape[-1]).to(feats)
        h = self.embed(torch.cat([feats, doy_encoding(day)], -1))
        pad = ~valid
        if t:
            mix_pad = pad & ~pad.all(-1, keepdim=True)  # an empty series keeps its keys
            h = self.mix(h, src_key_padding_mask=mix_pad)
        q_in = self.query(doy_encoding(qd))
        split = lambda x: x.view(b, -1, self.heads, self.dh).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q_proj(q_in)), split(self.k_proj(h)), split(self.v_proj(h))
        lag = qd[:, :, None] - day[:, None, :]  # (B, Q, T), > 0: token before the query
        scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(self.dh)
        scores = scores - self.log_slope.exp()[:, None, None] * lag.abs()[:, None]
        d = self.direction[:, None, None]
        wrong_side = (d * lag[:, None] < 0) | pad[:, None, None, :]
        scores = scores.masked_fill(wrong_side, float("-inf"))
        null = self.null_logit[:, None, None].expand(b, self.heads, qd.shape[1], 1)
        w = torch.softmax(torch.cat([scores, null], -1), -1)
        w_tok = w[..., :t]
        out = torch.einsum("bhqk,bhkd->bhqd", w_tok, v).transpose(1, 2).reshape(b, qd.shape[1], -1)
        mean_lag = torch.einsum("bhqk,bqk->bqh", w_tok, lag / LAG_SCALE_DAYS)
        null_mass = w[..., t].transpose(1, 2)
        mu, log_sigma = self.head(torch.cat([q_in, out, mean_lag, null_mass], -1)).chunk(2, -1)
        return mu, log_sigma.clamp(-7.0, 2.0)


@dataclass
class DataCubeConfig(VAEConfig):
    """Architecture of a :class:`DataCubeVAE` (stored in checkpoints). The latents'
    prior is uniform on their boxes by default (the simulated seasons are not drawn from
    the inverse networks' priors)."""

    hidden: int = 64
    depth: int = 2
    heads: int = 8
    prior: Any = "uniform"

    def __post_init__(self) -> None:
        if self.temporal or self.n_free:
            raise InvalidArgumentError("a DataCubeVAE has no 'temporal' flag nor free latents")
        super().__post_init__()


class DataCubeVAE(PhysVAE):
    """The data-cube VAE (module docstring): a :class:`PhysVAE` whose encoder reads
    S1 and S2 tokens on their own dates and answers at query dates.

    Args:
        config: a :class:`DataCubeConfig` (or its fields as keywords).
    """

    def __init__(self, config: DataCubeConfig | None = None, **kwargs: Any):
        config = config or DataCubeConfig(**kwargs)
        super().__init__(config)
        self.encoder = DataCubeEncoder(
            len(config.latents), config.hidden, config.heads, config.depth
        )

    def encode_series(self, batch: SeriesBatch, query_day: torch.Tensor):
        """Posterior (mu, log_sigma) in logit space (B, Q, n_latent) at ``query_day``
        (B or 1, Q), from the acquisitions of ``batch``."""
        obs, angles, day, valid = batch.tokens()
        return self.encoder(features(obs, angles), day, valid, query_day)

    @torch.no_grad()
    def infer_series(self, batch: SeriesBatch, query_day: torch.Tensor):
        """Posterior (mean, std) in physical units (B, Q, n_latent) at ``query_day``."""
        return self.posterior_stats(*self.encode_series(batch, query_day))

    def decode_at(self, z: torch.Tensor, batch: SeriesBatch) -> torch.Tensor:
        """Latents at the acquisitions of ``batch`` (B, T2 + T1, n_latent), S2 dates then
        S1 dates -> (B, T2 + T1, 12) modelled S2 reflectance and S1 dB."""
        _, angles, _, _ = batch.tokens()
        return self.decode(z, angles)

    def encode(self, *args: Any, **kwargs: Any):
        raise InvalidArgumentError(
            "a DataCubeVAE encodes series of acquisitions: use encode_series(SeriesBatch, "
            "query_day), or ds.vae.datacube() on cubes"
        )

    def save(self, path: str | Path, **extra: Any) -> Path:
        """Save config and weights to ``path`` (:mod:`xr_physcube.checkpoints` layout)."""
        return save_checkpoint(path, "DataCubeVAE", asdict(self.config), self, extra)

    @classmethod
    def load(cls, path: str | Path = DATACUBE_WEIGHTS, map_location: Any = "cpu") -> DataCubeVAE:
        """Load a model written by :meth:`save` (default: the shipped one)."""
        blob = load_checkpoint(path, "DataCubeVAE", map_location)
        try:
            config = dict(blob["config"])
            config["ranges"] = {k: tuple(v) for k, v in config.get("ranges", {}).items()}
            model = cls(DataCubeConfig(**config))
        except (TypeError, ValueError, KeyError, AttributeError) as err:
            raise CheckpointError(f"checkpoint {path} has an unusable config: {err}") from err
        missing, unexpected = model.load_state_dict(blob["state_dict"], strict=False)
        if missing or unexpected:
            raise CheckpointError(
                f"checkpoint {path} does not fit: missing {missing}, unexpected {unexpected}"
            )
        model.meta = blob["meta"]
        return model.eval()


def load_datacube(model: DataCubeVAE | str | Path | None = None) -> DataCubeVAE:
    """``model`` itself, a checkpoint path, or ``None``/``"datacube"``: the shipped model
    (``weights/vae_datacube.pt``, pre-trained on simulated seasons by
    :func:`xr_physcube.vae.datacube_train.pretrain_datacube`)."""
    if isinstance(model, DataCubeVAE):
        return model
    if model is None or str(model) == "datacube":
        return DataCubeVAE.load(DATACUBE_WEIGHTS)
    if isinstance(model, PhysVAE):
        raise InvalidArgumentError(
            "ds.vae.datacube needs a DataCubeVAE (S1 and S2 on their own dates); got a "
            "PhysVAE, which needs them on the same dates (use ds.vae.encode)"
        )
    return DataCubeVAE.load(Path(model))


__all__ = [
    "DEFAULT_LATENTS", "OUTPUTS", "S1_COLUMNS", "S2_COLUMNS", "DataCubeConfig",
    "DataCubeEncoder", "DataCubeVAE", "SeriesBatch", "days_since_new_year", "load_datacube",
]  # fmt: skip
