"""Training of :class:`~xr_physcube.vae.model.PhysVAE`: losses and the fit loops.

* :func:`loss_terms`: the negative-ELBO terms of one batch (+ LAI smoothness, SAFY
  consistency, supervised NLL of a known truth);
* :func:`fit` minimises them with Adam over any :class:`BatchSource` (simulations from
  :mod:`xr_physcube.vae.simulate`, or a cube's pixels through
  :class:`xr_physcube.cube.sampling.CubeSampler`), with a tqdm progress bar and
  checkpoints;
* :func:`fit_encoder_supervised` pre-trains the encoder alone on simulations.

The shipped models are rebuilt by :func:`xr_physcube.vae.pretrained.pretrain`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import torch

from xr_physcube.devices import resolve_device
from xr_physcube.exceptions import InvalidArgumentError
from xr_physcube.vae.losses import (
    SafyConsistency,
    gaussian_nll,
    kl_standard_normal,
    temporal_smoothness,
)
from xr_physcube.vae.model import PhysVAE
from xr_physcube.vae.priors import kl_logit_normal_prior
from xr_physcube.validation import non_negative_float, positive_float, positive_int

NOISE_FLOOR = math.log(1e-3)
"""Smallest log noise std of the reconstruction likelihood."""


class BatchSource(Protocol):
    """Anything :func:`fit` can train on: one shuffled pass of
    ``(obs, angles, doy or None, truth or None)`` batches per call, in the layout of
    :class:`~xr_physcube.vae.model.Observations` (``obs`` (n, [T,] 12), ``angles``
    (n, [T,] 4), ``doy`` (n, T) for series)."""

    def batches(self, batch_size: int, gen: torch.Generator) -> Iterator[tuple]: ...


def loss_terms(
    model: PhysVAE,
    obs: torch.Tensor,
    angles: torch.Tensor,
    doy: torch.Tensor | None = None,
    truth: torch.Tensor | None = None,
    safy: SafyConsistency | None = None,
) -> dict[str, torch.Tensor]:
    """Negative-ELBO terms of one batch: ``nll`` (per row), ``kl`` (per row), ``smooth``
    (LAI second differences, temporal models), ``safy`` (distance of the sampled LAI
    trajectory to the nearest SAFY season, temporal models, when ``safy`` is given),
    ``sup`` (NLL of the true latents under the posterior, when ``truth`` is given)."""
    out = model(obs, angles, doy)
    log_noise = model.log_noise.clamp_min(NOISE_FLOOR)
    nll = gaussian_nll(obs, out.recon, log_noise)
    rows = max(out.mu[..., 0].numel(), 1)
    kl = kl_logit_normal_prior(out.mu, out.log_sigma, model.prior).sum() / rows
    if out.free_mu is not None:
        kl = kl + kl_standard_normal(out.free_mu, out.free_log_sigma).sum() / rows
    terms = {"nll": nll, "kl": kl}
    if model.config.temporal and doy is not None:
        lai = out.z[..., model.latent_names.index("lai")]
        terms["smooth"] = temporal_smoothness(lai, doy.expand_as(lai))
        if safy is not None:
            terms["safy"] = safy(lai, doy)
    if truth is not None:
        terms["sup"] = posterior_nll(model, out.mu, out.log_sigma, truth)
    return terms


def supervised_nll(
    model: PhysVAE,
    obs: torch.Tensor,
    angles: torch.Tensor,
    doy: torch.Tensor | None,
    truth: torch.Tensor,
) -> torch.Tensor:
    """NLL (per row, in logit space, constant dropped) of the true physical latents under
    the posterior; runs the encoder only (no decoder, no PROSAIL)."""
    n = len(model.latent_names)
    mu, log_sigma = model.encode(obs, angles, doy)
    return posterior_nll(model, mu[..., :n], log_sigma[..., :n], truth)


def posterior_nll(
    model: PhysVAE, mu: torch.Tensor, log_sigma: torch.Tensor, truth: torch.Tensor
) -> torch.Tensor:
    """NLL per row (logit space, constant dropped) of the true physical latents ``truth``
    under the posterior (``mu``, ``log_sigma``) of the physical latents."""
    target = model.to_logit(truth.to(mu))
    sup = 0.5 * ((target - mu) / log_sigma.exp()) ** 2 + log_sigma
    return sup.sum() / max(mu[..., 0].numel(), 1)


def _endless_batches(data: BatchSource, batch_size: int, gen: torch.Generator) -> Iterator[tuple]:
    while True:
        yield from data.batches(batch_size, gen)


def fit(
    model: PhysVAE,
    data: BatchSource,
    *,
    epochs: int | None = None,
    max_steps: int | None = None,
    batch_size: int = 512,
    lr: float = 1e-3,
    kl_weight: float = 1.0,
    smooth_weight: float = 0.0,
    supervised_weight: float = 0.0,
    anchor: BatchSource | None = None,
    anchor_weight: float = 10.0,
    safy: SafyConsistency | None = None,
    safy_weight: float = 10.0,
    device: str | torch.device | None = None,
    seed: int = 0,
    progress: bool = True,
    checkpoint: str | Path | None = None,
) -> list[float]:
    """Train ``model`` in place; returns the loss of every step.

    Runs ``epochs`` passes over ``data``, stopping early after ``max_steps`` steps;
    ``epochs=None``: as many passes as ``max_steps`` needs, or one pass without it.

    Loss = NLL + ``kl_weight`` KL + ``smooth_weight`` smoothness (temporal models, in
    (m²/m²/day)² × 1e4) + ``supervised_weight`` × NLL of the true latents (simulations
    only: a hybrid pre-training). ``anchor``: simulations with known truth (e.g.
    :func:`simulate_prior_pixels`, or :func:`simulate_prior_series` for temporal models);
    each step then adds ``anchor_weight`` × :func:`supervised_nll` of one batch of them,
    so fine-tuning on unlabelled pixels keeps the encoder tied to the physics it was
    pre-trained on. ``safy``: a :class:`~xr_physcube.vae.losses.SafyConsistency` (temporal
    models only) adds ``safy_weight`` × the distance, (m²/m²)², of each pixel's sampled
    LAI trajectory to the nearest SAFY season under its climate. ``checkpoint``: path
    saved after each epoch.
    """
    if safy is not None and not model.config.temporal:
        raise InvalidArgumentError(
            "the SAFY-consistency term needs a temporal model (LAI trajectories)"
        )
    positive_int(batch_size, "batch_size")
    for name, count in (("epochs", epochs), ("max_steps", max_steps)):
        if count is not None:
            positive_int(count, name)
    lr = positive_float(lr, "lr (learning rate)")
    weights = {"kl_weight": kl_weight, "smooth_weight": smooth_weight,
               "supervised_weight": supervised_weight, "anchor_weight": anchor_weight,
               "safy_weight": safy_weight}  # fmt: skip
    for name, weight in weights.items():
        non_negative_float(weight, name)
    dev = resolve_device(device)
    model.to(dev).train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    anchors = None
    if anchor is not None:
        anchors = _endless_batches(anchor, batch_size, torch.Generator().manual_seed(seed + 1))
    history: list[float] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_steps, desc="vae.fit", unit="step")
    step = 0
    n_epochs = epochs if epochs is not None else (1 if max_steps is None else sys.maxsize)
    for _ in range(n_epochs):
        epoch_start = step
        for obs, angles, doy, truth in data.batches(batch_size, gen):
            obs, angles = obs.to(dev), angles.to(dev)
            doy = doy.to(dev) if doy is not None else None
            truth = truth.to(dev) if truth is not None and supervised_weight > 0 else None
            terms = loss_terms(model, obs, angles, doy, truth, safy)
            loss = terms["nll"] + kl_weight * terms["kl"]
            if "smooth" in terms and smooth_weight:
                loss = loss + smooth_weight * 1e4 * terms["smooth"]
            if "safy" in terms:
                loss = loss + safy_weight * terms["safy"]
            if "sup" in terms:
                loss = loss + supervised_weight * terms["sup"]
            if anchors is not None:
                a_obs, a_angles, a_doy, a_truth = (
                    t.to(dev) if t is not None else None for t in next(anchors)
                )
                loss = loss + anchor_weight * supervised_nll(model, a_obs, a_angles, a_doy, a_truth)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            history.append(float(loss.detach()))
            step += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(
                    loss=f"{history[-1]:.3f}", nll=f"{float(terms['nll'].detach()):.3f}"
                )
            if max_steps is not None and step >= max_steps:
                break
        if checkpoint is not None:
            model.save(checkpoint, steps=step)
        if (max_steps is not None and step >= max_steps) or step == epoch_start:
            break  # done, or no data to train on
    if bar is not None:
        bar.close()
    model.eval()
    return history


def fit_encoder_supervised(
    model: PhysVAE,
    data: BatchSource,
    *,
    steps: int,
    batch_size: int = 512,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
) -> list[float]:
    """Pre-train the encoder alone on simulations with known truth: minimise the NLL of the
    true latents under the posterior (the ``sup`` term of :func:`loss_terms`), Adam with a
    cosine learning-rate decay to ``lr``/100 over ``steps``. The decoder is not run, so a
    step costs only the encoder's forward/backward pass (no PROSAIL); this is the
    amortised-inference analogue of training the inverse networks, before the ELBO phase
    makes the posterior consistent with the physics. Returns the loss of every step.
    """
    model.train()
    params = [p for p in model.encoder.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr / 100)
    gen = torch.Generator().manual_seed(seed)
    history: list[float] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="vae.encoder", unit="step")
    while len(history) < steps:
        for obs, angles, doy, truth in data.batches(batch_size, gen):
            loss = supervised_nll(model, obs, angles, doy, truth)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 10.0)
            opt.step()
            sched.step()
            history.append(float(loss.detach()))
            if bar is not None:
                bar.update(1)
            if len(history) >= steps:
                break
    if bar is not None:
        bar.close()
    model.eval()
    return history
