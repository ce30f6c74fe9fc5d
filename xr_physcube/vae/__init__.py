"""Physics-constrained variational autoencoder (PROSAIL + Water Cloud Model decoder).

``PhysVAE`` (per-pixel or temporal encoder), its losses and training loop, and the
``ds.vae`` Dataset accessor (registered on import). ``load_pretrained()`` gives the
shipped per-pixel S1+S2 model.
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
from xr_physcube.vae.train import CubeSampler, fit, simulate_pixels

__all__ = [
    "DEFAULT_LATENTS",
    "LATENT_RANGES",
    "OUTPUTS",
    "CubeSampler",
    "PhysVAE",
    "VAEConfig",
    "fit",
    "load_pretrained",
    "simulate_pixels",
]
