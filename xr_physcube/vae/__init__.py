"""Physics-constrained variational autoencoder (PROSAIL + Water Cloud Model decoder).

``PhysVAE`` (per-pixel or temporal encoder), its losses and training loop, and the
``ds.vae`` Dataset accessor (registered on import). ``load_pretrained(name)`` gives a
shipped model: ``"temporal_hybrid"`` (the accessor's default on time series),
``"pixel_hybrid"`` (default on single dates), ``"pixel"``, ``"temporal"`` (prior: the
inverse module's).
"""

from xr_physcube.vae import accessor  # noqa: F401  (registers ds.vae)
from xr_physcube.vae.model import (
    DEFAULT_LATENTS,
    LATENT_RANGES,
    OUTPUTS,
    PhysVAE,
    VAEConfig,
    load_pretrained,
)
from xr_physcube.vae.train import (
    CubeSampler,
    fit,
    pretrain,
    simulate_pixels,
    simulate_prior_pixels,
    simulate_prior_series,
)

__all__ = [
    "DEFAULT_LATENTS",
    "LATENT_RANGES",
    "OUTPUTS",
    "CubeSampler",
    "PhysVAE",
    "VAEConfig",
    "fit",
    "load_pretrained",
    "pretrain",
    "simulate_pixels",
    "simulate_prior_pixels",
    "simulate_prior_series",
]
