"""Training the data-cube VAE on simulated seasons (:mod:`xr_physcube.vae.seasons`).

Each step draws a batch of seasons and makes it look like a real cube each time anew:
clouds re-drawn (cloudy fraction 10–70 %, persistent from date to date), a random
window of the season (40 days to all of it), S2 or S1 removed entirely now and then
(S1-only and S2-only cubes), 10 % of S1 acquisitions missing. A few valid acquisitions
per pixel are *held out*: removed from the encoder's input, queried at their dates,
decoded by the physics and scored against what was removed (self-supervised gap
filling). The loss per step is

    recon_weight × NLL(held-out S2/S1 | physical decoder)  +  kl_weight × KL
    + sup_weight × NLL(daily truth at the query dates | posterior)

(the last term exists because the seasons are simulated: a hybrid of the
self-supervised VAE and supervised pre-training, as for the shipped ``*_hybrid`` VAEs).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from xr_physcube.vae.datacube import DataCubeConfig, DataCubeVAE, SeriesBatch
from xr_physcube.vae.losses import gaussian_nll
from xr_physcube.vae.priors import kl_logit_normal_prior
from xr_physcube.vae.seasons import SimulatedSeasons, cloud_mask, simulate_seasons
from xr_physcube.vae.train import NOISE_FLOOR, posterior_nll


@dataclass
class TrainingBatch:
    """One step's inputs: acquisitions with the held-out ones removed, query days, the
    truth there (B, Q, n_latent), and the held-out acquisitions, queried last: targets
    (B, H, 12) (S2 slots then S1 slots, NaN where none was held out) and their angles
    (B, H, 4)."""

    series: SeriesBatch
    query_day: torch.Tensor
    truth: torch.Tensor
    heldout: torch.Tensor
    heldout_angles: torch.Tensor


def season_batch(
    seasons: SimulatedSeasons,
    idx: np.ndarray,
    names: tuple[str, ...],
    rng: np.random.Generator,
    n_queries: int = 24,
    n_heldout: int = 2,
) -> TrainingBatch:
    """A randomised batch of the seasons ``idx`` (module docstring)."""
    b = len(idx)
    n_days = seasons.truth["lai"].shape[1]
    start_doy = float(seasons.doy[0]) - 1.0
    # window of the season
    length = np.where(rng.random(b) < 0.4, n_days, rng.integers(40, n_days + 1, b))
    first = rng.integers(0, n_days - length + 1)
    last = first + length - 1
    inside = lambda day: (day[None] >= first[:, None]) & (day[None] <= last[:, None])  # noqa: E731
    # S2: re-drawn clouds, S1: missing acquisitions; whole modalities dropped
    cloudy = cloud_mask(
        (b, len(seasons.s2_day)), rng, rng.uniform(0.1, 0.7, b), rng.uniform(0.0, 0.7)
    )
    modality = rng.random(b)
    s2_ok = ~cloudy & inside(seasons.s2_day) & (modality[:, None] >= 0.12)
    s1_ok = (rng.random((b, len(seasons.s1_day))) > 0.1) & inside(seasons.s1_day)
    s1_ok &= (modality[:, None] < 0.12) | (modality[:, None] >= 0.24)
    # held out: up to n_heldout valid acquisitions per modality (when one more remains)
    s2_slot, s2_has = _pick(s2_ok, n_heldout, rng)
    s1_slot, s1_has = _pick(s1_ok, n_heldout, rng)
    s2_has &= s2_ok.sum(1, keepdims=True) > n_heldout
    s1_has &= s1_ok.sum(1, keepdims=True) > n_heldout
    rows = np.arange(b)[:, None]
    s2 = seasons.s2[idx]
    s1 = seasons.s1_db[idx]
    s2_ok[rows, s2_slot] &= ~s2_has
    s1_ok[rows, s1_slot] &= ~s1_has
    nan = np.float32(np.nan)
    target = np.full((b, 2 * n_heldout, 12), nan, np.float32)
    target[:, :n_heldout, :10] = np.where(s2_has[..., None], s2[rows, s2_slot], nan)
    target[:, n_heldout:, 10:] = np.where(s1_has[..., None], s1[rows, s1_slot], nan)
    angles = np.full((b, 2 * n_heldout, 4), nan, np.float32)
    angles[:, :n_heldout, :3] = seasons.s2_angles[idx][rows, s2_slot]
    angles[:, n_heldout:, 3] = seasons.s1_theta[idx][rows, s1_slot]
    held_day = np.concatenate([seasons.s2_day[s2_slot], seasons.s1_day[s1_slot]], 1)
    s2_in = np.where(s2_ok[..., None], s2, nan)
    s1_in = np.where(s1_ok[..., None], s1, nan)
    # queries: random days of the window, then the held-out acquisition days
    q_rand = first[:, None] + (rng.random((b, n_queries)) * length[:, None]).astype(int)
    q_days = np.concatenate([q_rand, held_day], 1)
    truth = np.stack([seasons.truth[n][idx[:, None], q_days] for n in names], -1)
    f = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
    series = SeriesBatch(
        f(s2_in), f(seasons.s2_angles[idx]), f(start_doy + seasons.s2_day[None]),
        f(s1_in), f(seasons.s1_theta[idx]), f(start_doy + seasons.s1_day[None]),
    )  # fmt: skip
    return TrainingBatch(series, f(start_doy + q_days), f(truth), f(target), f(angles))


def _pick(ok: np.ndarray, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``k`` random column indices per row of the mask ``ok`` (n, T), preferring True
    entries, and whether each picked entry is True."""
    score = np.where(ok, rng.random(ok.shape), -1.0)
    slot = np.argsort(-score, axis=1)[:, :k]
    return slot, np.take_along_axis(ok, slot, 1)


def batch_loss(
    model: DataCubeVAE,
    batch: TrainingBatch,
    recon_weight: float = 1.0,
    kl_weight: float = 0.01,
    sup_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    """The loss terms of one batch (module docstring); ``total`` is their weighted sum."""
    mu, log_sigma = model.encode_series(batch.series, batch.query_day)
    n_rand = batch.query_day.shape[1] - batch.heldout.shape[1]
    terms = {"sup": posterior_nll(model, mu, log_sigma, batch.truth)}
    terms["kl"] = kl_logit_normal_prior(mu, log_sigma, model.prior).sum(-1).mean()
    total = sup_weight * terms["sup"] + kl_weight * terms["kl"]
    if recon_weight:
        mu_a, ls_a = mu[:, n_rand:], log_sigma[:, n_rand:]
        rows = torch.isfinite(batch.heldout).any(-1)
        u = mu_a[rows] + ls_a[rows].exp() * torch.randn_like(mu_a[rows])
        recon = model.decode(model.to_physical(u), batch.heldout_angles[rows])
        log_noise = model.log_noise.clamp_min(NOISE_FLOOR)
        terms["recon"] = gaussian_nll(batch.heldout[rows], recon, log_noise) * rows.float().mean()
        total = total + recon_weight * terms["recon"]
    terms["total"] = total
    return terms


def train_datacube(
    model: DataCubeVAE,
    seasons: SimulatedSeasons,
    steps: int,
    *,
    batch_size: int = 128,
    lr: float = 1e-3,
    recon_weight: float = 1.0,
    kl_weight: float = 0.01,
    sup_weight: float = 1.0,
    seed: int = 0,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> list[float]:
    """Adam with a cosine learning-rate decay over ``steps`` steps; returns the total
    loss of every step. Trains ``model`` in place (then leaves it in eval mode)."""
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    history: list[float] = []
    model.train()
    names = model.latent_names
    bar = tqdm(range(steps), disable=not progress, desc="datacube VAE")
    for step in bar:
        idx = rng.integers(0, len(seasons), batch_size)
        batch = season_batch(seasons, idx, names, rng)
        terms = batch_loss(model, batch, recon_weight, kl_weight, sup_weight)
        opt.zero_grad()
        terms["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        history.append(float(terms["total"].detach()))
        if step % 100 == 0:
            bar.set_postfix({k: f"{float(v.detach()):.3f}" for k, v in terms.items()})
    model.eval()
    return history


PRETRAIN_RECIPE = {
    "seasons": 6000,
    "season_seed": 101,
    "supervised_steps": 6000,
    "hybrid_steps": 400,
    "recon_weight": 0.01,
}
"""How the shipped ``vae_datacube.pt`` was trained (:func:`pretrain_datacube`)."""


def pretrain_datacube(
    out: str | Path,
    *,
    seed: int = 0,
    seasons: SimulatedSeasons | None = None,
    recipe: dict | None = None,
    progress: bool = True,
) -> DataCubeVAE:
    """Rebuild the shipped data-cube VAE: simulate the seasons of
    :data:`PRETRAIN_RECIPE`, train the encoder on the supervised term, then add the
    self-supervised reconstruction of held-out acquisitions; save to ``out``."""
    r = {**PRETRAIN_RECIPE, **(recipe or {})}
    start = time.perf_counter()
    if seasons is None:
        seasons = simulate_seasons(r["seasons"], r["season_seed"], cloud_fraction=(0.2, 0.6))
    torch.manual_seed(seed)
    model = DataCubeVAE(DataCubeConfig())
    sup = train_datacube(
        model, seasons, r["supervised_steps"], recon_weight=0.0, seed=seed, progress=progress
    )
    hyb = train_datacube(
        model, seasons, r["hybrid_steps"], lr=2e-4, recon_weight=r["recon_weight"],
        seed=seed + 1, progress=progress,
    )  # fmt: skip
    meta = {
        "recipe": r,
        "seed": seed,
        "final_loss": {
            "supervised": float(np.mean(sup[-50:])),
            "hybrid": float(np.mean(hyb[-50:])),
        },
        "train_seconds": round(time.perf_counter() - start, 1),
    }
    model.save(out, **meta)
    model.meta = meta
    return model
