"""Training of :class:`~xr_physcube.vae.model.PhysVAE`: simulations, cube sampling, fit loop.

* :func:`simulate_pixels` draws physical parameters from the uniform priors of the
  latents, runs full-resolution PROSAIL-D (S2A SRFs) and the Water Cloud Model over Oh,
  and adds S2 noise (2 % multiplicative + 0.003 additive, Weiss & Baret 2016 S2 ATBD)
  and S1 speckle (gamma, 8 looks): pre-training data with known truth.
* :class:`CubeSampler` streams pixels of an xarray cube chunk by chunk (one spatial
  block in memory at a time), for unsupervised training/fine-tuning on real pixels.
* :func:`fit` minimises the negative ELBO (+ optional LAI smoothness, + optional
  supervised term on simulations) with Adam, with a tqdm progress bar and checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from xr_physcube.models.prosail import PROSAIL_PARAMETERS, Prosail, ProsailParameters
from xr_physcube.models.sar import water_cloud_backscatter
from xr_physcube.sensors.sentinel2 import BANDS, SCL_INVALID, Sentinel2Bands
from xr_physcube.vae.losses import (
    gaussian_nll,
    kl_logit_normal_uniform,
    kl_standard_normal,
    temporal_smoothness,
)
from xr_physcube.vae.model import ANGLES, PhysVAE

INPUT_NAMES: tuple[str, ...] = (*BANDS, "VV", "VH", *ANGLES)
"""Variables read from a cube, in this order (S2 bands, S1 linear sigma0, angles)."""
NOISE_FLOOR = math.log(1e-3)


def split_inputs(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., 16) stacked :data:`INPUT_NAMES` -> obs (..., 12, S1 in dB), angles (..., 4)."""
    n = len(BANDS)
    s1 = x[..., n : n + 2]
    s1_db = 10.0 * torch.log10(torch.where(s1 > 0, s1, torch.full_like(s1, float("nan"))))
    return torch.cat([x[..., :n], s1_db], dim=-1), x[..., n + 2 :]


# ----------------------------------------------------------------------------------------
# Simulations
# ----------------------------------------------------------------------------------------


@dataclass
class SimulatedPixels:
    """Simulated observations with their truth: ``obs`` (n, 12), ``angles`` (n, 4),
    ``truth`` (n, n_latent) in the order of ``names``."""

    obs: torch.Tensor
    angles: torch.Tensor
    truth: torch.Tensor
    names: tuple[str, ...]

    def __len__(self) -> int:
        return self.obs.shape[0]

    def batches(self, batch_size: int, gen: torch.Generator) -> Iterator[tuple]:
        order = torch.randperm(len(self), generator=gen)
        for i in range(0, len(self), batch_size):
            idx = order[i : i + batch_size]
            yield self.obs[idx], self.angles[idx], None, self.truth[idx]


def simulate_pixels(
    n: int,
    ranges: dict[str, tuple[float, float]],
    seed: int = 0,
    missing_s2: float = 0.1,
    missing_s1: float = 0.05,
    spectral_step: int = 1,
) -> SimulatedPixels:
    """Draw ``n`` pixels from uniform priors on ``ranges`` and simulate S2 + S1.

    Parameters not in ``ranges`` vary too, so the decoder's fixed values are not the
    truth: Car = Cab × U(0.15, 0.25), hot spot U(0.01, 0.1), others their defaults.
    Angles: tts U(20, 60)°, tto U(0, 12)°, psi U(0, 180)°, theta U(29, 46)° (IW swath).
    A fraction ``missing_s2`` / ``missing_s1`` of rows have that modality set to NaN.
    """
    rng = np.random.default_rng(seed)
    names = tuple(ranges)
    truth = np.stack([rng.uniform(*ranges[k], n) for k in names], axis=-1)
    p = {k: truth[:, i] for i, k in enumerate(names)}
    p.setdefault("cab", np.full(n, PROSAIL_PARAMETERS["cab"].default))
    angles = np.stack(
        [
            rng.uniform(20, 60, n),
            rng.uniform(0, 12, n),
            rng.uniform(0, 180, n),
            rng.uniform(29, 46, n),
        ],
        axis=-1,
    )
    prosail_in = {k: v for k, v in p.items() if k in PROSAIL_PARAMETERS}
    prosail_in.update(
        car=p["cab"] * rng.uniform(0.15, 0.25, n),
        hspot=rng.uniform(0.01, 0.1, n),
        tts=angles[:, 0],
        tto=angles[:, 1],
        psi=angles[:, 2],
    )
    model = Prosail(
        "D", sensor=Sentinel2Bands(spectral_step=spectral_step), spectral_step=spectral_step
    )
    with torch.no_grad():
        t = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in prosail_in.items()}
        refl = model(ProsailParameters(**t)).reflectance.numpy().astype(np.float64)
        sar = water_cloud_backscatter(
            mv=torch.as_tensor(p["mv"]),
            hrms=torch.as_tensor(p.get("hrms", np.full(n, 1.0))),
            theta=torch.as_tensor(angles[:, 3]),
            lai=torch.as_tensor(p["lai"]),
        )
    refl = refl * (1 + 0.02 * rng.standard_normal(refl.shape)) + 0.003 * rng.standard_normal(
        refl.shape
    )
    refl = np.clip(refl, 0.0, 1.0)
    s1 = np.stack([sar.vv.numpy(), sar.vh.numpy()], -1) * rng.gamma(8.0, 1 / 8.0, (n, 2))
    refl[rng.random(n) < missing_s2] = np.nan
    s1[rng.random(n) < missing_s1] = np.nan
    obs = np.concatenate([refl, 10 * np.log10(s1)], axis=-1)
    f = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    return SimulatedPixels(f(obs), f(angles), f(truth), names)


# ----------------------------------------------------------------------------------------
# Cube sampling
# ----------------------------------------------------------------------------------------


def prepare_cube(ds: xr.Dataset) -> xr.Dataset:
    """Dataset with all :data:`INPUT_NAMES` (missing modality -> NaN, lazily), SCL-masked
    S2 bands, and a ``doy`` coordinate from ``time`` when there is one."""
    present = [n for n in (*BANDS, "VV", "VH") if n in ds.data_vars]
    if not present:
        raise ValueError(
            f"the VAE needs Sentinel-2 bands {list(BANDS)} and/or Sentinel-1 'VV', 'VH'; "
            f"found none in {list(ds.data_vars)}"
        )
    has_s2 = any(b in ds.data_vars for b in BANDS)
    if has_s2:
        missing_angles = [a for a in ("tts", "tto", "psi") if a not in ds.variables]
        if missing_angles:
            raise ValueError(
                f"the VAE needs sun/view angles {missing_angles} for the Sentinel-2 bands: add "
                "them as per-date coordinates (degrees), e.g. ds.assign_coords(tts=('time', ...))"
            )
    ref = ds[present[0]]
    out = ds
    nan = xr.full_like(ref, np.nan, dtype=np.float32)
    for name in INPUT_NAMES:
        if name not in out.variables:
            out = out.assign({name: nan})
    if "SCL" in ds.data_vars and has_s2:
        bad = ds["SCL"].isin(list(SCL_INVALID))
        out = out.assign({b: out[b].where(~bad) for b in BANDS})
    if "time" in out.dims and "doy" not in out.variables:
        out = out.assign_coords(doy=("time", out["time"].dt.dayofyear.values.astype(np.float32)))
    return out


class CubeSampler:
    """Minibatches of pixels from a (dask-backed) cube, one spatial chunk in memory at a time.

    Per-pixel models get rows (one pixel-date each); temporal models get whole
    time series (n, T, ...). Rows without any valid observation are skipped.
    """

    def __init__(self, ds: xr.Dataset, temporal: bool = False):
        from xr_physcube.accessors import _gather

        self.temporal = temporal
        self.ds = prepare_cube(ds)
        names = list(INPUT_NAMES) + (["doy"] if temporal else [])
        arrays = _gather(self.ds, names)
        self.stacked = xr.concat(arrays, dim="_var").transpose(..., "_var")
        if temporal and "time" not in self.stacked.dims:
            raise ValueError("a temporal VAE needs a 'time' dimension")
        spatial = [d for d in self.stacked.dims if d not in ("time", "_var")]
        chunks = self.stacked.chunksizes if self.stacked.chunks else {}
        self.blocks: list[dict[str, slice]] = [{}]
        for dim in spatial:
            sizes = chunks.get(dim, (self.stacked.sizes[dim],))
            edges = np.cumsum((0, *sizes))
            self.blocks = [
                {**b, dim: slice(int(a), int(c))}
                for b in self.blocks
                for a, c in zip(edges[:-1], edges[1:], strict=True)
            ]

    def _block_rows(self, block: dict[str, slice]) -> torch.Tensor:
        arr = self.stacked.isel(block)
        if self.temporal:
            arr = arr.transpose(..., "time", "_var")
        x = torch.as_tensor(np.asarray(arr.values, dtype=np.float32))
        if self.temporal:
            x = x.reshape(-1, *x.shape[-2:])
            keep = torch.isfinite(x[..., : len(BANDS) + 2]).any(-1).any(-1)
        else:
            x = x.reshape(-1, x.shape[-1])
            keep = torch.isfinite(x[..., : len(BANDS) + 2]).any(-1)
        return x[keep]

    def batches(self, batch_size: int, gen: torch.Generator) -> Iterator[tuple]:
        for b in torch.randperm(len(self.blocks), generator=gen).tolist():
            x = self._block_rows(self.blocks[b])
            order = torch.randperm(x.shape[0], generator=gen)
            for i in range(0, x.shape[0], batch_size):
                rows = x[order[i : i + batch_size]]
                doy = rows[..., -1] if self.temporal else None
                body = rows[..., :-1] if self.temporal else rows
                obs, angles = split_inputs(body)
                yield obs, angles, doy, None


# ----------------------------------------------------------------------------------------
# Fit
# ----------------------------------------------------------------------------------------


def loss_terms(
    model: PhysVAE,
    obs: torch.Tensor,
    angles: torch.Tensor,
    doy: torch.Tensor | None = None,
    truth: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Negative-ELBO terms of one batch: ``nll`` (per row), ``kl`` (per row), ``smooth``
    (LAI second differences, temporal models), ``sup`` (NLL of the true latents under the
    posterior, when ``truth`` is given)."""
    out = model(obs, angles, doy)
    log_noise = model.log_noise.clamp_min(NOISE_FLOOR)
    nll = gaussian_nll(obs, out.recon, log_noise)
    rows = max(out.mu[..., 0].numel(), 1)
    kl = kl_logit_normal_uniform(out.mu, out.log_sigma, out.u).sum() / rows
    if out.free_mu is not None:
        kl = kl + kl_standard_normal(out.free_mu, out.free_log_sigma).sum() / rows
    terms = {"nll": nll, "kl": kl}
    if model.config.temporal and doy is not None:
        lai = out.z[..., model.latent_names.index("lai")]
        terms["smooth"] = temporal_smoothness(lai, doy.expand_as(lai))
    if truth is not None:
        target = model.to_logit(truth.to(out.mu))
        sigma = out.log_sigma.exp()
        sup = 0.5 * ((target - out.mu) / sigma) ** 2 + out.log_sigma
        terms["sup"] = sup.sum() / rows
    return terms


def fit(
    model: PhysVAE,
    data: SimulatedPixels | CubeSampler,
    *,
    epochs: int = 1,
    max_steps: int | None = None,
    batch_size: int = 512,
    lr: float = 1e-3,
    kl_weight: float = 1.0,
    smooth_weight: float = 0.0,
    supervised_weight: float = 0.0,
    device: str | torch.device | None = None,
    seed: int = 0,
    progress: bool = True,
    checkpoint: str | Path | None = None,
) -> list[float]:
    """Train ``model`` in place; returns the loss of every step.

    Loss = NLL + ``kl_weight`` KL + ``smooth_weight`` smoothness (temporal models, in
    (m²/m²/day)² × 1e4) + ``supervised_weight`` × NLL of the true latents (simulations
    only: a hybrid pre-training). ``checkpoint``: path saved after each epoch.
    """
    from xr_physcube.accessors import resolve_device

    dev = resolve_device(device)
    model.to(dev).train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    history: list[float] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_steps, desc="vae.fit", unit="step")
    step = 0
    for _ in range(epochs):
        for obs, angles, doy, truth in data.batches(batch_size, gen):
            obs, angles = obs.to(dev), angles.to(dev)
            doy = doy.to(dev) if doy is not None else None
            truth = truth.to(dev) if truth is not None and supervised_weight > 0 else None
            terms = loss_terms(model, obs, angles, doy, truth)
            loss = terms["nll"] + kl_weight * terms["kl"]
            if "smooth" in terms and smooth_weight:
                loss = loss + smooth_weight * 1e4 * terms["smooth"]
            if "sup" in terms:
                loss = loss + supervised_weight * terms["sup"]
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            history.append(float(loss.detach()))
            step += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{history[-1]:.3f}", nll=f"{float(terms['nll']):.3f}")
            if max_steps is not None and step >= max_steps:
                break
        if checkpoint is not None:
            model.save(checkpoint, steps=step)
        if max_steps is not None and step >= max_steps:
            break
    if bar is not None:
        bar.close()
    model.eval()
    return history


def pretrain(
    path: str | Path | None = None,
    n_sim: int = 80_000,
    steps: int = 2500,
    supervised_weight: float = 1.0,
    seed: int = 0,
    progress: bool = True,
) -> PhysVAE:
    """Recipe of the shipped ``weights/vae_pixel.pt``: a per-pixel model pre-trained on
    ``n_sim`` simulations (:func:`simulate_pixels`, seed ``seed``) with the negative ELBO
    plus a supervised term on the simulated truth (hybrid pre-training), ``steps`` Adam
    steps (lr 1e-3, then 3e-4 for the last quarter). ``python -m xr_physcube.vae.train``.
    """
    torch.manual_seed(seed)
    model = PhysVAE()
    sim = simulate_pixels(n_sim, model.config.ranges, seed=seed)
    first = steps - steps // 4
    kw = dict(batch_size=512, supervised_weight=supervised_weight, progress=progress)
    fit(model, sim, epochs=100, max_steps=first, lr=1e-3, seed=seed, **kw)
    fit(model, sim, epochs=100, max_steps=steps - first, lr=3e-4, seed=seed + 1, **kw)
    if path is not None:
        model.save(path, recipe=f"pretrain(n_sim={n_sim}, steps={steps}, seed={seed})")
    return model


if __name__ == "__main__":
    from xr_physcube.vae.model import WEIGHTS_DIR

    torch.set_num_threads(2)
    pretrain(WEIGHTS_DIR / "vae_pixel.pt")
