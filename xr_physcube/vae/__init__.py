"""Physics-constrained variational autoencoder (PROSAIL + Water Cloud Model decoder).

Same file shape as :mod:`xr_physcube.inverse`: :mod:`~xr_physcube.vae.model` (the
network), :mod:`~xr_physcube.vae.simulate` (training data), :mod:`~xr_physcube.vae.train`
(losses and fit loops), :mod:`~xr_physcube.vae.pretrained` (the shipped models: registry,
weights, loading, rebuild). ``load_pretrained(name)`` gives a shipped model:
``"temporal_hybrid"`` (the ``ds.vae`` accessor's default on time series),
``"pixel_hybrid"`` (default on single dates), ``"pixel"``, ``"temporal"``. The ``ds.vae``
accessor lives in :mod:`xr_physcube.cube.vae`.
"""

from xr_physcube.vae.model import (
    DEFAULT_LATENTS,
    LATENT_RANGES,
    OUTPUTS,
    Observations,
    PhysVAE,
    VAEConfig,
)
from xr_physcube.vae.pretrained import RECIPES, load_pretrained, pretrain
from xr_physcube.vae.simulate import simulate_pixels, simulate_prior_pixels, simulate_prior_series
from xr_physcube.vae.train import fit

__all__ = [
    "DEFAULT_LATENTS",
    "LATENT_RANGES",
    "OUTPUTS",
    "RECIPES",
    "Observations",
    "PhysVAE",
    "VAEConfig",
    "fit",
    "load_pretrained",
    "pretrain",
    "simulate_pixels",
    "simulate_prior_pixels",
    "simulate_prior_series",
]
