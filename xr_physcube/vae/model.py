"""A physics-constrained variational autoencoder for Sentinel-1 + Sentinel-2 pixels.

The idea is that of PROSAIL-VAE (Zérah, Valero, Inglada, 2024, *Physics-constrained
deep learning for biophysical parameter retrieval from Sentinel-2 images: inversion of
the PROSAIL model*, Remote Sensing of Environment 312:114309): the decoder of a VAE
(Kingma & Welling, 2014, *Auto-Encoding Variational Bayes*, ICLR) is the physical
forward model, so the latent variables *are* the physical parameters. Here it is
extended to two modalities sharing their LAI (and soil moisture):

* Sentinel-2 bands = PROSAIL-D (:class:`~xr_physcube.models.prosail.Prosail`) convolved
  with the S2A spectral responses (on a coarser spectral grid for speed);
* Sentinel-1 VV/VH (dB) = Water Cloud Model over the Oh (2004) bare-soil model
  (:func:`~xr_physcube.models.sar.water_cloud_backscatter`) with the same LAI.

Prior: by default (``prior="inverse"``) the priors of the inverse networks,
:mod:`xr_physcube.inverse.priors` (S2 ToolBox ATBD design, truncated Gaussians with a
co-distribution with LAI; one owner of priors for both retrieval methods), see
:mod:`xr_physcube.vae.priors`. The latents are the prior's *base* variables, each in its
box [lo, hi]; the decoder sees the physical values after the LAI co-distribution map.
Posterior: for each base latent a normal distribution of ``u = logit((x0 - lo)/(hi - lo))``
("logit-normal" in its box); the KL to the prior is exact in its entropy term and uses
Gauss–Hermite quadrature in its cross-entropy term
(:func:`~xr_physcube.vae.priors.kl_logit_normal_prior`). ``prior="uniform"`` gives
uniform priors on :data:`LATENT_RANGES` without co-distribution.

Encoders: :class:`PixelEncoder` (an MLP per observation) and :class:`TemporalEncoder`
(self-attention over the dates of one pixel, with a day-of-year encoding so that
irregular sampling and missing dates are handled). Optional free (non-physical)
latents with a standard-normal prior feed a small residual decoder (``n_free=0``
switches them off).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xr_physcube.checkpoints import load_checkpoint, save_checkpoint
from xr_physcube.exceptions import (
    CheckpointError,
    InvalidArgumentError,
    MissingVariableError,
    OutOfRangeError,
)
from xr_physcube.models.prosail import PROSAIL_PARAMETERS, Prosail, ProsailParameters
from xr_physcube.models.sar import SOIL_PARAMETERS, water_cloud_backscatter
from xr_physcube.parameters import ParameterSet, ParameterSpec
from xr_physcube.sensors.sentinel1 import POLARISATIONS, linear_to_db
from xr_physcube.sensors.sentinel2 import BAND_MODE_STEP, BANDS, Sentinel2Bands
from xr_physcube.vae.priors import (
    LatentPrior,
    PriorTable,
    inverse_prior_table,
    uniform_prior_table,
)
from xr_physcube.validation import positive_int

ALL_SPECS: ParameterSet = PROSAIL_PARAMETERS | SOIL_PARAMETERS.subset(["mv", "hrms"])

LATENT_RANGES: dict[str, tuple[float, float]] = {
    "lai": (0.0, 8.0),
    "cab": (10.0, 90.0),
    "cw": (0.002, 0.05),
    "cm": (0.002, 0.02),
    "N": (1.2, 2.2),
    "ala": (30.0, 80.0),
    "psoil": (0.0, 1.0),
    "rsoil": (0.5, 1.5),
    "mv": (0.02, 0.45),
    "hrms": (0.3, 3.0),
    "car": (4.0, 16.0),
    "hspot": (0.1, 0.5),
    "cbrown": (0.0, 2.0),
}
"""Boxes of the ``prior="uniform"`` design: sub-ranges of the ParameterSpec bounds
covering agricultural canopies (the ranges of the S2 biophysical processor training set,
Weiss & Baret 2016, S2ToolBox Level 2 products ATBD v1.1, widened for the soil and S1 terms).
"""
LEGACY_LATENTS: tuple[str, ...] = (
    "lai", "cab", "cw", "cm", "N", "ala", "psoil", "rsoil", "mv", "hrms",
)  # fmt: skip
"""The latents of the first models (shipped ``pixel`` and ``temporal``): Car tied to Cab
(:data:`CAR_RATIO`), hot spot and brown pigments at their ``ParameterSpec`` defaults."""
DEFAULT_LATENTS: tuple[str, ...] = (*LEGACY_LATENTS, "car", "hspot", "cbrown")
"""Every PROSAIL/soil input that the simulations of :mod:`xr_physcube.inverse.simulate`
vary (:data:`~xr_physcube.inverse.priors.S2_PRIORS`, ``S1_PRIORS``) is a latent, so that
the decoder is the forward model that generated the training and test data. Carotenoids,
hot spot and brown pigments are nuisance latents (their priors are the shared ones); the
decoder with the legacy latents fixed hspot at 0.01 and Cbrown at 0, which differ from
those simulations by up to 0.036 in reflectance (B6–B8A), 3× the sensor noise."""
CAR_RATIO = 0.2
"""Carotenoids tied to chlorophyll when Car is not a latent, Car = 0.2 Cab (the Car/Cab
ratio ≈ 0.2 of the LOPEX and ANGERS leaves, Féret et al. 2008, RSE 112:3030–3043)."""
OUTPUTS: tuple[str, ...] = (*BANDS, *POLARISATIONS)
"""Decoded variables: 10 S2 surface reflectances, then S1 VV and VH (in dB in the model)."""
N_S2 = len(BANDS)
S2_COLUMNS = slice(0, N_S2)
"""The S2 reflectances in the 12 observation (and decoded) columns of :data:`OUTPUTS`."""
S1_COLUMNS = slice(N_S2, N_S2 + len(POLARISATIONS))
"""The S1 VV, VH (dB) in the 12 observation (and decoded) columns of :data:`OUTPUTS`."""
ANGLES: tuple[str, ...] = ("tts", "tto", "psi", "theta")
INPUT_NAMES: tuple[str, ...] = (*BANDS, *POLARISATIONS, *ANGLES)
"""Variables read from a cube, in this order (S2 bands, S1 linear sigma0, angles)."""


@dataclass(frozen=True)
class Observations:
    """A batch of VAE inputs by meaning rather than by column position.

    ``obs`` (..., 12): S2 surface reflectances then S1 VV, VH in dB (NaN = missing; the
    layout of :data:`OUTPUTS`, sliced by :data:`S2_COLUMNS` / :data:`S1_COLUMNS`);
    ``angles`` (..., 4): :data:`ANGLES` tts, tto, psi, theta in degrees.
    """

    obs: torch.Tensor
    angles: torch.Tensor

    @classmethod
    def from_columns(cls, x: torch.Tensor) -> Observations:
        """From (..., 16) columns stacked in :data:`INPUT_NAMES` order, S1 as linear sigma0
        (a value ≤ 0 is no measurement and becomes NaN)."""
        n_obs = len(OUTPUTS)
        s1_db = linear_to_db(x[..., S1_COLUMNS], mask_invalid=True)
        return cls(torch.cat([x[..., S2_COLUMNS], s1_db], dim=-1), x[..., n_obs:])

    @property
    def s2(self) -> torch.Tensor:
        return self.obs[..., S2_COLUMNS]

    @property
    def s1_db(self) -> torch.Tensor:
        return self.obs[..., S1_COLUMNS]

    def observed(self) -> torch.Tensor:
        """Rows (...) with at least one valid S2 or S1 value."""
        return torch.isfinite(self.obs).any(-1)


# Gauss–Hermite nodes for the deterministic posterior mean/std in physical units.
_GH_NODES, _GH_WEIGHTS = (
    torch.as_tensor(a) for a in __import__("numpy").polynomial.hermite_e.hermegauss(24)
)
_GH_WEIGHTS = _GH_WEIGHTS / _GH_WEIGHTS.sum()


def latent_spec(name: str) -> ParameterSpec:
    """The :class:`ParameterSpec` of a physical latent (units, long name, CF attrs)."""
    return ALL_SPECS[name]


@dataclass
class VAEConfig:
    """Architecture of a :class:`PhysVAE` (stored in checkpoints)."""

    latents: tuple[str, ...] = DEFAULT_LATENTS
    temporal: bool = False
    n_free: int = 0
    hidden: int = 128
    depth: int = 3
    spectral_step: int = 5
    """Uniform PROSAIL grid step (nm), used only when ``band_step`` is None."""
    band_step: int | dict[str, int] | None = field(default_factory=lambda: dict(BAND_MODE_STEP))
    """PROSAIL on the S2 SRFs' support every ``band_step`` nm, one step or one per band
    (the band mode, :data:`~xr_physcube.sensors.sentinel2.BAND_MODE_STEP`: <= 1e-3
    reflectance from the full convolution; the old uniform 5 nm grid was 5.5e-3 off)."""
    noise: str = "learned"  # "learned" (per-output sigma) or "fixed"
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    prior: str | PriorTable = "inverse"
    """"inverse" (the inverse module's priors), "uniform" (boxes ``ranges``) or a
    :data:`~xr_physcube.vae.priors.PriorTable` (resolved to one after init)."""

    def __post_init__(self) -> None:
        for name in ("hidden", "depth", "spectral_step"):
            setattr(self, name, positive_int(getattr(self, name), name))
        if isinstance(self.n_free, bool) or not isinstance(self.n_free, int) or self.n_free < 0:
            raise InvalidArgumentError(f"n_free must be a whole number ≥ 0; got {self.n_free!r}")
        self.latents = tuple(self.latents)
        for required in ("lai", "mv"):
            if required not in self.latents:
                raise InvalidArgumentError(
                    f"latents must include {required!r} (shared S1/S2 variable)"
                )
        unknown = [n for n in self.latents if n not in ALL_SPECS]
        if unknown:
            raise InvalidArgumentError(f"unknown latent(s) {unknown}; valid: {list(ALL_SPECS)}")
        if self.noise not in ("learned", "fixed"):
            raise InvalidArgumentError(f"noise must be 'learned' or 'fixed'; got {self.noise!r}")
        if self.prior == "inverse":
            self.prior = inverse_prior_table(self.latents)
        if isinstance(self.prior, dict):
            box = {n: tuple(self.prior["latents"][n][3:5]) for n in self.latents}
            for n, r in self.ranges.items():
                if n in box and tuple(r) != box[n]:
                    raise InvalidArgumentError(
                        f"range of {n!r} {tuple(r)} differs from its prior's bounds {box[n]}; "
                        "with a prior table the latent boxes are the prior bounds"
                    )
            ranges = box
        elif self.prior == "uniform":
            ranges = {
                n: tuple(self.ranges.get(n, LATENT_RANGES.get(n, _spec_range(n))))
                for n in self.latents
            }
            self.prior = uniform_prior_table(ranges)
        else:
            raise InvalidArgumentError(
                f"prior must be 'inverse', 'uniform' or a table; got {self.prior!r}"
            )
        for n, (lo, hi) in ranges.items():
            spec = ALL_SPECS[n]
            if not spec.lower <= lo < hi <= spec.upper:
                raise OutOfRangeError(f"range of {n!r} ({lo}, {hi}) not inside {spec.range_text}")
        self.ranges = ranges


def _spec_range(name: str) -> tuple[float, float]:
    s = ALL_SPECS[name]
    return (s.lower, s.upper)


# ----------------------------------------------------------------------------------------
# Input features
# ----------------------------------------------------------------------------------------

N_FEATURES = N_S2 + 2 + 2 + 5
"""Encoder input per observation: 10 S2 reflectances, VV/VH dB, two validity flags,
cos tts, cos tto, cos psi, sin psi, scaled theta."""
FLAG_FEATURES = slice(N_S2 + 2, N_S2 + 4)
"""The two validity flags (S2 observed, S1 observed) among the :data:`N_FEATURES`."""


def features(obs: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Encoder features (..., N_FEATURES) from observations (..., 12) and angles (..., 4).

    Missing values (NaN) become 0 with a flag per modality (S2 valid, S1 valid); the
    encoder therefore never sees NaN. Missing angles are set to their defaults. The
    relative azimuth enters as cos psi and |sin psi|: PROSAIL depends on cos psi only, so
    psi and 360° − psi give the same features (the encoders were trained on 0–180°).
    """
    s2, s1 = obs[..., S2_COLUMNS], obs[..., S1_COLUMNS]
    s2_ok = torch.isfinite(s2).all(-1, keepdim=True)
    s1_ok = torch.isfinite(s1).all(-1, keepdim=True)
    s2n = torch.where(s2_ok, s2, torch.zeros_like(s2)) * 4.0
    s1n = torch.where(s1_ok, (s1 + 15.0) / 5.0, torch.zeros_like(s1))
    ang = torch.nan_to_num(angles, nan=0.0)
    rad = ang * (math.pi / 180.0)
    geo = torch.stack(
        [
            torch.cos(rad[..., 0]),
            torch.cos(rad[..., 1]),
            torch.cos(rad[..., 2]),
            torch.sin(rad[..., 2]).abs(),  # psi and 360 - psi are the same geometry
            (ang[..., 3] - 38.0) / 10.0,
        ],
        dim=-1,
    )
    return torch.cat([s2n, s1n, s2_ok.to(s2.dtype), s1_ok.to(s2.dtype), geo], dim=-1)


def doy_encoding(doy: torch.Tensor) -> torch.Tensor:
    """(..., T) day of year -> (..., T, 4) sin/cos at yearly and half-yearly periods."""
    w = 2.0 * math.pi * doy / 365.25
    return torch.stack([torch.sin(w), torch.cos(w), torch.sin(2 * w), torch.cos(2 * w)], dim=-1)


# ----------------------------------------------------------------------------------------
# Encoders
# ----------------------------------------------------------------------------------------


def _mlp(n_in: int, hidden: int, n_out: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.SiLU()]
        width = hidden
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


class PixelEncoder(nn.Module):
    """MLP per observation: features (..., N_FEATURES) -> (mu, log_sigma) (..., n_latent)."""

    def __init__(self, n_latent: int, hidden: int = 128, depth: int = 3):
        super().__init__()
        self.n_latent = n_latent
        self.net = _mlp(N_FEATURES, hidden, 2 * n_latent, depth)

    def forward(self, feats: torch.Tensor, doy: torch.Tensor | None = None):
        mu, log_sigma = self.net(feats).chunk(2, dim=-1)
        return mu, log_sigma.clamp(-7.0, 2.0)


class TemporalEncoder(nn.Module):
    """Self-attention over a pixel's dates (B, T, N_FEATURES) -> per-date (mu, log_sigma).

    Each date is embedded with its features and a day-of-year encoding
    (:func:`doy_encoding`), so irregular revisits need no resampling; dates with no
    valid observation are excluded as attention keys (their own outputs come from the
    other dates). One Transformer encoder layer (Vaswani et al. 2017) mixes the dates.
    """

    def __init__(self, n_latent: int, hidden: int = 128, depth: int = 3, heads: int = 4):
        super().__init__()
        self.n_latent = n_latent
        self.embed = _mlp(N_FEATURES + 4, hidden, hidden, max(depth - 1, 1))
        self.mix = nn.TransformerEncoderLayer(
            hidden, heads, dim_feedforward=2 * hidden, dropout=0.0, batch_first=True
        )
        self.head = nn.Sequential(nn.SiLU(), nn.Linear(2 * hidden, 2 * n_latent))

    def forward(self, feats: torch.Tensor, doy: torch.Tensor | None = None):
        if doy is None:
            raise MissingVariableError("the temporal encoder needs the day of year of each date")
        lead = feats.shape[:-2]
        f = feats.reshape(-1, *feats.shape[-2:])
        d = doy.expand(*lead, doy.shape[-1]).reshape(-1, doy.shape[-1]).to(f.dtype)
        h = self.embed(torch.cat([f, doy_encoding(d)], dim=-1))
        valid = (f[..., FLAG_FEATURES] > 0).any(-1)  # any modality observed
        pad = ~valid
        pad = pad & ~pad.all(-1, keepdim=True)  # keep at least the keys of empty series
        mixed = self.mix(h, src_key_padding_mask=pad)
        mu, log_sigma = self.head(torch.cat([h, mixed], dim=-1)).chunk(2, dim=-1)
        shape = (*lead, feats.shape[-2], self.n_latent)
        return mu.reshape(shape), log_sigma.clamp(-7.0, 2.0).reshape(shape)


# ----------------------------------------------------------------------------------------
# Decoder: the physics
# ----------------------------------------------------------------------------------------


class PhysicalDecoder(nn.Module):
    """Physical latents (..., n_latent) + angles (..., 4) -> (..., 12) S2 reflectance, S1 dB.

    PROSAIL-D (Campbell LIDF) in band mode (the S2A SRFs' support every ``band_step``
    nm; or a uniform ``spectral_step`` nm grid when ``band_step`` is None), and the
    Water Cloud Model over Oh (2004) with the LAI-form coefficients of
    :data:`~xr_physcube.models.sar.WCM_COEFFICIENTS`. Parameters that are not latents
    take their ``ParameterSpec`` defaults, except carotenoids (``CAR_RATIO`` × Cab) when
    Car is not a latent (with :data:`DEFAULT_LATENTS` only ``anth``, ``skyl`` and the
    unused ``lidfb`` are fixed, as in the inverse module's simulations).
    """

    def __init__(
        self,
        latents: Sequence[str],
        spectral_step: int = 5,
        band_step: int | Mapping[str, int] | None = BAND_MODE_STEP,
    ):
        super().__init__()
        self.latents = tuple(latents)
        if band_step is not None:
            sensor, spectral_step = Sentinel2Bands(band_step=band_step), 1
        else:
            sensor = Sentinel2Bands(spectral_step=spectral_step)
        self.prosail = Prosail(
            "D", "campbell", sensor=sensor, validate=False, spectral_step=spectral_step
        )

    def forward(self, z: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        values = dict(zip(self.latents, z.unbind(-1), strict=True))
        tts, tto, psi, theta = torch.nan_to_num(angles, nan=0.0).unbind(-1)
        theta = torch.where(torch.isfinite(angles[..., 3]), theta, torch.full_like(theta, 38.0))
        p = {n: values.get(n, s.default) for n, s in PROSAIL_PARAMETERS.items()}
        if "car" not in values:
            p["car"] = CAR_RATIO * p["cab"]
        p.update(tts=tts.clamp(0.0, 80.0), tto=tto.clamp(0.0, 80.0), psi=psi.remainder(360.0))
        refl = self.prosail(ProsailParameters(**p)).reflectance
        sar = water_cloud_backscatter(
            mv=values["mv"],
            hrms=values.get("hrms", SOIL_PARAMETERS["hrms"].default),
            theta=theta.clamp(10.0, 70.0),
            lai=values["lai"],
            validate=False,
        )
        vv, vh = linear_to_db(sar.vv), linear_to_db(sar.vh)
        return torch.cat([refl, vv[..., None], vh[..., None]], dim=-1)


# ----------------------------------------------------------------------------------------
# The VAE
# ----------------------------------------------------------------------------------------


@dataclass
class VAEOutput:
    """One forward pass: posterior parameters, samples and the decoded observations."""

    mu: torch.Tensor  # (..., n_latent), logit space
    log_sigma: torch.Tensor
    u: torch.Tensor  # sample in logit space
    z: torch.Tensor  # sample in physical units
    recon: torch.Tensor  # (..., 12)
    free_mu: torch.Tensor | None = None
    free_log_sigma: torch.Tensor | None = None


class PhysVAE(nn.Module):
    """Physics-constrained VAE (see module docstring).

    Args:
        config: a :class:`VAEConfig` (or its fields as keywords).

    Shapes: per-pixel model: ``obs`` (..., 12) (S2 reflectances then S1 VV/VH dB, NaN =
    missing), ``angles`` (..., 4) = tts, tto, psi, theta (deg). Temporal model: a date
    dim before the last, ``obs`` (..., T, 12), ``angles`` (..., T, 4), ``doy`` (..., T).
    """

    def __init__(self, config: VAEConfig | None = None, **kwargs: Any):
        super().__init__()
        self.config = config = config or VAEConfig(**kwargs)
        n = len(config.latents)
        enc = TemporalEncoder if config.temporal else PixelEncoder
        self.encoder = enc(n + config.n_free, config.hidden, config.depth)
        self.decoder = PhysicalDecoder(config.latents, config.spectral_step, config.band_step)
        self.prior = LatentPrior(config.latents, config.prior)
        lo = torch.tensor([config.ranges[k][0] for k in config.latents])
        hi = torch.tensor([config.ranges[k][1] for k in config.latents])
        self.register_buffer("lower", lo)
        self.register_buffer("upper", hi)
        # Per-output noise std: S2 reflectance ~0.01, S1 ~1.5 dB (speckle of ENL ~8 looks).
        init = torch.log(torch.tensor([0.01] * N_S2 + [1.5, 1.5]))
        self.log_noise = nn.Parameter(init, requires_grad=config.noise == "learned")
        if config.n_free:
            self.free_decoder = nn.Sequential(
                nn.Linear(config.n_free + 5, 64), nn.SiLU(), nn.Linear(64, len(OUTPUTS))
            )
        else:
            self.free_decoder = None

    # -- transforms ------------------------------------------------------------------
    @property
    def latent_names(self) -> tuple[str, ...]:
        return self.config.latents

    def to_physical(self, u: torch.Tensor) -> torch.Tensor:
        """Logit-space latents -> physical values (box, then LAI co-distribution)."""
        lo, hi = self.lower.to(u), self.upper.to(u)
        return self.prior.to_physical(lo + (hi - lo) * torch.sigmoid(u))

    def to_logit(self, z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
        """Inverse of :meth:`to_physical` (values outside the prior support are clamped)."""
        lo, hi = self.lower.to(z), self.upper.to(z)
        x0 = self.prior.to_base(z)
        return torch.logit(((x0 - lo) / (hi - lo)).clamp(eps, 1 - eps))

    # -- encoder / decoder -----------------------------------------------------------
    def encode(self, obs: torch.Tensor, angles: torch.Tensor, doy: torch.Tensor | None = None):
        """Posterior (mu, log_sigma) in logit space, (..., n_latent + n_free)."""
        return self.encoder(features(obs, angles), doy)

    def posterior_stats(self, mu: torch.Tensor, log_sigma: torch.Tensor):
        """Posterior mean and std in physical units: 1-D moments of the base latents by
        Gauss–Hermite quadrature (exact to 1e-4), then the exact moments through the LAI
        co-distribution (:meth:`~xr_physcube.vae.priors.LatentPrior.physical_moments`)."""
        n = len(self.config.latents)
        mu, sigma = mu[..., :n], log_sigma[..., :n].exp()
        nodes = _GH_NODES.to(mu)
        w = _GH_WEIGHTS.to(mu)
        lo, hi = self.lower.to(mu)[:, None], self.upper.to(mu)[:, None]
        z = lo + (hi - lo) * torch.sigmoid(mu[..., None] + sigma[..., None] * nodes)  # (..., n, K)
        mean = (z * w).sum(-1)
        var = ((z - mean[..., None]) ** 2 * w).sum(-1)
        if bool(self.prior.co.any()):
            f = self.prior.lai_fraction(z[..., self.prior.lai_index, :])
            f_mean = (f * w).sum(-1)
            f_var = ((f - f_mean[..., None]) ** 2 * w).sum(-1)
            mean, var = self.prior.physical_moments(mean, var, f_mean, f_var)
        return mean, var.clamp_min(0.0).sqrt()

    def decode(
        self, z: torch.Tensor, angles: torch.Tensor, free: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Physical latents (..., n_latent) -> (..., 12) S2 reflectance and S1 dB."""
        out = self.decoder(z, angles)
        if self.free_decoder is not None:
            if free is None:
                free = torch.zeros(
                    *z.shape[:-1], self.config.n_free, dtype=z.dtype, device=z.device
                )
            geo = features(torch.full_like(out, float("nan")), angles)[..., -5:]
            scale = torch.tensor([0.02] * N_S2 + [1.0, 1.0], dtype=z.dtype, device=z.device)
            out = out + scale * torch.tanh(self.free_decoder(torch.cat([free, geo], -1)))
        return out

    def forward(
        self,
        obs: torch.Tensor,
        angles: torch.Tensor,
        doy: torch.Tensor | None = None,
        sample: bool = True,
    ) -> VAEOutput:
        mu, log_sigma = self.encode(obs, angles, doy)
        eps = torch.randn_like(mu) if sample else torch.zeros_like(mu)
        u_all = mu + log_sigma.exp() * eps
        n = len(self.config.latents)
        u, free = u_all[..., :n], u_all[..., n:]
        z = self.to_physical(u)
        recon = self.decode(z, angles, free if self.config.n_free else None)
        extra = (mu[..., n:], log_sigma[..., n:]) if self.config.n_free else (None, None)
        return VAEOutput(mu[..., :n], log_sigma[..., :n], u, z, recon, *extra)

    @torch.no_grad()
    def infer(self, obs: torch.Tensor, angles: torch.Tensor, doy: torch.Tensor | None = None):
        """Posterior (mean, std) in physical units, (..., n_latent)."""
        mu, log_sigma = self.encode(obs, angles, doy)
        return self.posterior_stats(mu, log_sigma)

    # -- checkpoints -----------------------------------------------------------------
    def save(self, path: str | Path, **extra: Any) -> Path:
        """Save config and weights (:mod:`xr_physcube.checkpoints` layout) to ``path``;
        ``extra`` goes in the metadata. The decoder's tables are not saved: they are
        non-persistent buffers rebuilt from the config."""
        return save_checkpoint(path, "PhysVAE", asdict(self.config), self, extra)

    @classmethod
    def load(cls, path: str | Path, map_location: Any = "cpu") -> PhysVAE:
        """Load a model written by :meth:`save` (a ``CheckpointError`` for other files)."""
        blob = load_checkpoint(path, "PhysVAE", map_location)
        try:
            config = dict(blob["config"])
            config["ranges"] = {k: tuple(v) for k, v in config.get("ranges", {}).items()}
            config.setdefault("prior", "uniform")  # checkpoints from before the shared priors
            model = cls(VAEConfig(**config))
        except (TypeError, ValueError, KeyError, AttributeError) as err:
            raise CheckpointError(f"checkpoint {path} has an unusable config: {err}") from err
        missing, unexpected = model.load_state_dict(blob["state_dict"], strict=False)
        if missing or unexpected:
            raise CheckpointError(
                f"checkpoint {path} does not fit: missing {missing}, unexpected {unexpected}"
            )
        model.meta = blob["meta"]
        return model.eval()
