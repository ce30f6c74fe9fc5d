"""The shipped VAEs: their registry (:data:`RECIPES`), weights, loading and rebuild.

:func:`load_pretrained` gives a shipped model (``weights/vae_<name>.pt``);
:func:`default_model_name` the one the ``.vae`` accessor uses when none is given;
:func:`pretrain` rebuilds one reproducibly (``xr-physcube train-vae NAME``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from xr_physcube.exceptions import InvalidArgumentError
from xr_physcube.inverse.simulate import torch_threads
from xr_physcube.models import sar
from xr_physcube.vae.model import LEGACY_LATENTS, PhysVAE
from xr_physcube.vae.simulate import simulate_like
from xr_physcube.vae.train import fit, fit_encoder_supervised

WEIGHTS_DIR = Path(__file__).parent / "weights"


DEFAULT_PIXEL_MODEL = "pixel_hybrid"
"""Shipped model used by the ``.vae`` accessor on cubes with a single date."""
DEFAULT_TEMPORAL_MODEL = "temporal_hybrid"
"""Shipped model used by the ``.vae`` accessor on cubes with two or more dates."""


def default_model_name(n_dates: int) -> str:
    """The shipped model the ``.vae`` accessor uses when none is given: the temporal one
    (:data:`DEFAULT_TEMPORAL_MODEL`) for a time series of ``n_dates`` ≥ 2, else the
    per-pixel one (:data:`DEFAULT_PIXEL_MODEL`)."""
    return DEFAULT_TEMPORAL_MODEL if n_dates >= 2 else DEFAULT_PIXEL_MODEL


def load_pretrained(name: str = DEFAULT_PIXEL_MODEL) -> PhysVAE:
    """A shipped model ``weights/vae_<name>.pt``. All were pre-trained on simulations from
    the shared priors (``benchmarks/bench_vae.py`` compares them):

    * ``"pixel_hybrid"`` (default): per pixel, every simulated PROSAIL input a latent;
      supervised encoder pre-training, then ELBO + supervised term. Matches the inverse
      networks on their simulations.
    * ``"temporal_hybrid"``: attention over a pixel's dates, same latents and training;
      beats the per-date inverse networks on simulated series and on the demo cube, and
      gives LAI under clouds. The accessor's default on time series.
    * ``"pixel"`` / ``"temporal"``: the same encoders with the legacy latents (Car, hot
      spot, Cbrown fixed), trained with the plain VAE objective only.

    Rebuild one with :func:`pretrain` (``xr-physcube train-vae <name>``)."""
    path = WEIGHTS_DIR / f"vae_{name}.pt"
    if not path.exists():
        known = sorted(p.stem.removeprefix("vae_") for p in WEIGHTS_DIR.glob("vae_*.pt"))
        raise InvalidArgumentError(f"no shipped VAE named {name!r}; available: {known}")
    return PhysVAE.load(path)


RECIPES: dict[str, dict] = {
    "pixel": {
        "config": {"temporal": False, "hidden": 128, "depth": 3, "latents": LEGACY_LATENTS},
        "n_sim": 100_000,
        "steps": 3000,
        "batch_size": 512,
        "supervised_weight": 0.0,
    },
    "pixel_hybrid": {
        "config": {"temporal": False, "hidden": 128, "depth": 3},
        "n_sim": 200_000,
        "encoder_steps": 40_000,
        "steps": 3000,
        "batch_size": 512,
        "supervised_weight": 10.0,
    },
    "temporal": {
        "config": {"temporal": True, "hidden": 64, "depth": 2, "latents": LEGACY_LATENTS},
        "n_sim": 12_000,
        "n_dates": 8,
        "steps": 3000,
        "batch_size": 64,
        "supervised_weight": 0.0,
    },
    "temporal_hybrid": {
        "config": {"temporal": True, "hidden": 64, "depth": 2},
        "n_sim": 30_000,
        "n_dates": 8,
        "encoder_steps": 20_000,
        "steps": 3000,
        "batch_size": 64,
        "supervised_weight": 10.0,
    },
}
"""Recipes of the shipped models (``weights/vae_<name>.pt``); see :func:`pretrain`."""


def pretrain(
    name: str = "pixel",
    path: str | Path | None = None,
    seed: int = 0,
    supervised_weight: float | None = None,
    steps: int | None = None,
    n_sim: int | None = None,
    progress: bool = True,
    num_threads: int | None = 1,
    encoder_steps: int | None = None,
) -> PhysVAE:
    """Rebuild a shipped model reproducibly: simulate from the shared priors, train, save.

    ``name="pixel"``: per-pixel model with the :data:`~xr_physcube.vae.model.LEGACY_LATENTS`
    (Car = 0.2 Cab, hot spot 0.01 and Cbrown 0 fixed in the decoder), ``n_sim`` = 100k
    pixels of :func:`simulate_prior_pixels` (the inverse networks' simulation design,
    seed ``seed``), pure ELBO. ``name="pixel_hybrid"``: per-pixel model with
    :data:`~xr_physcube.vae.model.DEFAULT_LATENTS` (Car, hot spot, Cbrown are latents, so
    the decoder is the simulations' forward model), 200k pixels, ``encoder_steps`` =
    40k steps of encoder-only supervised pre-training (:func:`fit_encoder_supervised`),
    then the ELBO phase with ``supervised_weight`` = 10. ``name="temporal"``: attention
    encoder (hidden 64, legacy latents), 12k series of 8 irregular dates from
    :func:`simulate_prior_series`, pure ELBO. ``name="temporal_hybrid"``: the same encoder
    with :data:`~xr_physcube.vae.model.DEFAULT_LATENTS`, 30k series, 20k encoder-only
    supervised steps, then ELBO + 10 × supervised (batches of 64 series). All: ``steps``
    = 3000 Adam steps (lr 1e-3, then 3e-4 for the last quarter) on the negative ELBO
    (masked Gaussian NLL + KL to the shared priors) plus ``supervised_weight`` × the NLL
    of the simulated truth under the posterior (hybrid pre-training; 0 gives the pure VAE
    objective). Weight initialisation and batches are seeded; with ``num_threads=1`` the
    result is bitwise reproducible on a given machine.

    Time on the project's shared 2-core CPU, 1 thread each, with other jobs running
    (the shipped files' metadata): pixel 2.2 min simulation + 8.9 min training;
    temporal 1.9 min + 9.3 min; pixel_hybrid: see its metadata; temporal_hybrid 2.4 min +
    9.8 min.
    CLI: ``xr-physcube train-vae <name> [--seed 0] [--out PATH | --replace-shipped]``.
    """
    if name not in RECIPES:
        raise InvalidArgumentError(f"unknown recipe {name!r}; known: {sorted(RECIPES)}")
    r = dict(RECIPES[name])
    steps = steps or r["steps"]
    n_sim = n_sim or r["n_sim"]
    sup = r["supervised_weight"] if supervised_weight is None else supervised_weight
    enc_steps = r.get("encoder_steps", 0) if encoder_steps is None else encoder_steps
    start = time.perf_counter()
    with torch_threads(num_threads):
        torch.manual_seed(seed)  # weight initialisation
        model = PhysVAE(**r["config"])
        data = simulate_like(model, n_sim, seed, r.get("n_dates", 8), num_threads=None)
        sim_s = time.perf_counter() - start
        if enc_steps:
            fit_encoder_supervised(model, data, steps=enc_steps, batch_size=r["batch_size"],
                                   seed=seed + 2, progress=progress)  # fmt: skip
        first = steps - steps // 4
        kw = dict(batch_size=r["batch_size"], supervised_weight=sup, progress=progress)
        hist = fit(model, data, epochs=1000, max_steps=first, lr=1e-3, seed=seed, **kw)
        if steps > first:
            hist += fit(model, data, epochs=1000, max_steps=steps - first, lr=3e-4,
                        seed=seed + 1, **kw)  # fmt: skip
    train_s = time.perf_counter() - start - sim_s
    model.meta = {
        "recipe": f"pretrain({name!r}, seed={seed}, supervised_weight={sup}, steps={steps}, "
        f"n_sim={n_sim}, encoder_steps={enc_steps})",
        "objective": (
            f"{enc_steps} steps of encoder-only supervised NLL of the simulated truth, then "
            if enc_steps
            else ""
        )
        + "negative ELBO (masked Gaussian NLL + KL to xr_physcube.inverse.priors)"
        + (f" + {sup} x supervised NLL of the simulated truth" if sup else " only"),
        "simulation_seconds": round(sim_s, 1),
        "train_seconds": round(train_s, 1),
        "final_loss": float(np.mean(hist[-50:])),
        "wcm_coefficients": repr(getattr(sar, "WCM_COEFFICIENTS", None)),
        "torch": str(torch.__version__),
    }
    out = Path(path) if path is not None else WEIGHTS_DIR / f"vae_{name}.pt"
    model.save(out, **model.meta)
    return model
