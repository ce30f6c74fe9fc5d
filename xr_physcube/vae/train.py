"""Training of :class:`~xr_physcube.vae.model.PhysVAE`: simulations, cube sampling, fit loop.

* :func:`simulate_prior_pixels` / :func:`simulate_prior_series`: pre-training data with
  known truth drawn from the shared priors (:mod:`xr_physcube.inverse.priors`) with the
  inverse module's simulation and noise model (the inverse networks' training design);
  :func:`simulate_pixels`: the older uniform-box design (2 % + 0.003 S2 noise).
* :class:`CubeSampler` streams pixels of an xarray cube chunk by chunk (one spatial
  block in memory at a time), for unsupervised training/fine-tuning on real pixels.
* :func:`fit` minimises the negative ELBO (+ optional LAI smoothness, + optional
  supervised term on simulations) with Adam, with a tqdm progress bar and checkpoints.
* :func:`pretrain` rebuilds the shipped weights (:data:`RECIPES`), seeded.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from xr_physcube.models.prosail import PROSAIL_PARAMETERS, Prosail, ProsailParameters
from xr_physcube.models.sar import water_cloud_backscatter
from xr_physcube.sensors.checks import check_observations
from xr_physcube.sensors.sentinel2 import BANDS, SCL_INVALID, Sentinel2Bands
from xr_physcube.vae.losses import (
    SafyConsistency,
    gaussian_nll,
    kl_standard_normal,
    temporal_smoothness,
)
from xr_physcube.vae.model import ANGLES, LEGACY_LATENTS, PhysVAE
from xr_physcube.vae.priors import kl_logit_normal_prior

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


def shuffled_batches(n: int, batch_size: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """Index tensors of one shuffled pass over ``n`` rows, ``batch_size`` at a time."""
    order = torch.randperm(n, generator=gen)
    for i in range(0, n, batch_size):
        yield order[i : i + batch_size]


@dataclass
class SimulatedPixels:
    """Simulated observations with their truth: ``obs`` (n, 12), ``angles`` (n, 4),
    ``truth`` (n, n_latent) in the order of ``names``; ``doy`` (n, T) for series."""

    obs: torch.Tensor
    angles: torch.Tensor
    truth: torch.Tensor
    names: tuple[str, ...]
    doy: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.obs.shape[0]

    def batches(self, batch_size: int, gen: torch.Generator) -> Iterator[tuple]:
        """Shuffled ``(obs, angles, doy or None, truth)`` batches, one pass."""
        for idx in shuffled_batches(len(self), batch_size, gen):
            doy = self.doy[idx] if self.doy is not None else None
            yield self.obs[idx], self.angles[idx], doy, self.truth[idx]


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


def simulate_prior_pixels(
    n: int,
    names: tuple[str, ...],
    seed: int = 0,
    missing_s2: float = 0.1,
    missing_s1: float = 0.05,
    num_threads: int | None = 1,
    progress: bool = False,
) -> SimulatedPixels:
    """``n`` pixels simulated exactly as the inverse networks' training data.

    :func:`xr_physcube.inverse.simulate.simulate_s1` with its default
    :class:`~xr_physcube.inverse.simulate.SimulationConfig`: parameters from the shared
    priors (:mod:`xr_physcube.inverse.priors`, ATBD design with LAI co-distribution;
    hot spot, Car, Cbrown vary too), S2 geometry, PROSAIL-D at 1 nm with S2A SRFs and
    its noise model (1 % multiplicative, 0.01 band-correlated + 0.002 per-band additive),
    WCM/Oh S1 with gamma speckle (8 looks). Then a fraction ``missing_s2`` /
    ``missing_s1`` of rows lose that modality (NaN). ``truth`` in the order ``names``.
    """
    from xr_physcube.inverse.simulate import simulate_s1

    ds = simulate_s1(n, seed=seed, progress=progress, num_threads=num_threads)
    rng = np.random.default_rng(seed + 7_919)
    refl = np.stack([ds[b].values for b in BANDS], -1).astype(np.float64)
    s1 = np.stack([ds.VV.values, ds.VH.values], -1).astype(np.float64)
    refl[rng.random(n) < missing_s2] = np.nan
    s1[rng.random(n) < missing_s1] = np.nan
    obs = np.concatenate([refl, 10 * np.log10(s1)], axis=-1)
    angles = np.stack([ds[a].values for a in ANGLES], -1)
    truth = np.stack([ds[k].values for k in names], -1)
    f = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    return SimulatedPixels(f(obs), f(angles), f(truth), tuple(names))


@dataclass
class SimulatedSeries(SimulatedPixels):
    """Simulated pixel time series: ``obs`` (n, T, 12), ``angles`` (n, T, 4), ``doy``
    (n, T), ``truth`` (n, T, n_latent) in the order of ``names``."""


def double_logistic(doy, lmax, up, down, s_up, s_down):
    """Green LAI of a double-logistic season (Fisher et al. 2006, RSE 100:265–279 form)."""
    return lmax * (1 / (1 + np.exp(-(doy - up) / s_up)) - 1 / (1 + np.exp(-(doy - down) / s_down)))


def simulate_prior_series(
    n: int,
    names: tuple[str, ...],
    n_dates: int = 8,
    seed: int = 0,
    cloud: float = 0.25,
    missing_s1: float = 0.1,
    num_threads: int | None = 1,
) -> SimulatedSeries:
    """``n`` pixel time series for pre-training the temporal encoder, from the shared priors.

    Per pixel: the *base* value of every leaf/soil variable is drawn once from its
    prior (:data:`~xr_physcube.inverse.priors.S2_PRIORS`, ``S1_PRIORS``) and mapped on
    each date through the LAI co-distribution of that date (so the joint per-date
    marginal keeps the prior's support); LAI follows a double-logistic season
    (:func:`double_logistic`: maximum U(0.2, 7), green-up DOY U(60, 200), season length
    U(50, 150) d, slopes U(5, 15) d) with 5 % date-to-date jitter; soil moisture, soil
    brightness ``psoil`` and sun/view angles are drawn per date (S2 geometry prior),
    incidence per pixel. ``n_dates`` irregular dates in DOY 60–300; a random number
    (0 to ``n_dates`` - 3) of them are dropped entirely, then each remaining date loses
    S2 with probability ``cloud`` and S1 with ``missing_s1``. Noise: the inverse
    module's S2 and S1 noise models. Truth: physical values per date, order ``names``.
    """
    from xr_physcube.inverse.priors import S1_GEOMETRY, S1_PRIORS, S2_GEOMETRY, S2_PRIORS
    from xr_physcube.inverse.simulate import S1Noise, S2Noise, torch_threads
    from xr_physcube.vae.priors import LatentPrior, inverse_prior_table

    rng = np.random.default_rng(seed)
    t = n_dates
    doy = np.sort(rng.uniform(60, 300, (n, t)), axis=-1)
    lmax = rng.uniform(0.2, 7.0, (n, 1))
    up = rng.uniform(60, 200, (n, 1))
    lai = double_logistic(
        doy, lmax, up, up + rng.uniform(50, 150, (n, 1)),
        rng.uniform(5, 15, (n, 1)), rng.uniform(5, 15, (n, 1)),
    )  # fmt: skip
    lai = np.clip(lai * (1 + 0.05 * rng.standard_normal((n, t))), 0.0, S2_PRIORS.lai_max)
    base: dict[str, np.ndarray] = {}
    for ps in (S2_PRIORS, S1_PRIORS):
        for k, p in ps.priors.items():
            base[k] = np.broadcast_to(p.distribution.sample(n, rng)[:, None], (n, t))
    for k in ("psoil", "mv"):
        prior = S2_PRIORS if k in S2_PRIORS.priors else S1_PRIORS
        base[k] = prior[k].distribution.sample(n * t, rng).reshape(n, t)
    base["lai"] = lai
    # co-distribution on each date (the same map as PriorSet.sample)
    all_names = tuple(k for k in (*S2_PRIORS.priors, *S1_PRIORS.priors) if k != "car")
    table = LatentPrior(all_names, inverse_prior_table(all_names)).double()
    x0 = torch.as_tensor(np.stack([base[k] for k in all_names], -1))
    phys = table.to_physical(x0).numpy()
    p = {k: phys[..., i] for i, k in enumerate(all_names)}
    p["car"] = base["car"]
    geo = S2_GEOMETRY.sample(n * t, rng)
    ang = np.stack([geo[a].reshape(n, t) for a in ("tts", "tto", "psi")], -1)
    theta = np.broadcast_to(S1_GEOMETRY.sample(n, rng)["theta"][:, None], (n, t))
    ang = np.concatenate([ang, theta[..., None]], -1)
    prosail = Prosail("D", "campbell", sensor=Sentinel2Bands("S2A"))
    flat = lambda a: torch.as_tensor(np.ascontiguousarray(a).reshape(-1))  # noqa: E731
    with torch.no_grad(), torch_threads(num_threads):
        refl_parts = []
        for i in range(0, n * t, 16_384):
            sl = slice(i, i + 16_384)
            prm = {k: flat(v)[sl].float() for k, v in p.items() if k in PROSAIL_PARAMETERS}
            prm.update(
                {a: flat(ang[..., j])[sl].float() for j, a in enumerate(("tts", "tto", "psi"))}
            )
            refl_parts.append(prosail(ProsailParameters(**prm)).reflectance.double().numpy())
        refl = np.concatenate(refl_parts)
        sar = water_cloud_backscatter(
            mv=flat(p["mv"]), hrms=flat(p["hrms"]), theta=flat(ang[..., 3]), lai=flat(p["lai"])
        )
    refl = S2Noise().apply(refl, rng).reshape(n, t, -1)
    s1 = S1Noise().apply(np.stack([sar.vv.numpy(), sar.vh.numpy()], -1), rng).reshape(n, t, 2)
    dropped = rng.random((n, t)) < (rng.integers(0, t - 2, (n, 1)) / t)
    refl[(rng.random((n, t)) < cloud) | dropped] = np.nan
    s1[(rng.random((n, t)) < missing_s1) | dropped] = np.nan
    obs = np.concatenate([refl, 10 * np.log10(s1)], axis=-1)
    truth = np.stack([p[k] for k in names], -1)
    f = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
    return SimulatedSeries(f(obs), f(ang), f(truth), tuple(names), doy=f(doy))


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
        missing_bands = [b for b in BANDS if b not in ds.data_vars]
        if missing_bands:
            raise ValueError(
                f"the VAE needs all Sentinel-2 bands {list(BANDS)} (or none, for an S1-only "
                f"cube); missing {missing_bands}"
            )
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
        self.names = [*INPUT_NAMES, *(["doy"] if temporal else [])]
        arrays = _gather(self.ds, self.names)
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
        values = np.asarray(arr.values, dtype=np.float32)
        check_observations(values, self.names)
        x = torch.as_tensor(values)
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
        target = model.to_logit(truth.to(out.mu))
        sigma = out.log_sigma.exp()
        sup = 0.5 * ((target - out.mu) / sigma) ** 2 + out.log_sigma
        terms["sup"] = sup.sum() / rows
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
    mu, log_sigma = mu[..., :n], log_sigma[..., :n]
    target = model.to_logit(truth.to(mu))
    sup = 0.5 * ((target - mu) / log_sigma.exp()) ** 2 + log_sigma
    return sup.sum() / max(mu[..., 0].numel(), 1)


def simulate_for(
    model: PhysVAE, n: int, seed: int = 1, n_dates: int = 8, num_threads: int | None = 1
) -> SimulatedPixels:
    """``n`` simulations from the shared priors in ``model``'s latents (pre-training data,
    or the ``anchor`` of a fine-tuning): :func:`simulate_prior_series` (``n_dates``
    dates) for temporal models, else :func:`simulate_prior_pixels`."""
    if model.config.temporal:
        return simulate_prior_series(n, model.latent_names, n_dates, seed, num_threads=num_threads)
    return simulate_prior_pixels(n, model.latent_names, seed, num_threads=num_threads)


def _endless_batches(
    data: SimulatedPixels, batch_size: int, gen: torch.Generator
) -> Iterator[tuple]:
    while True:
        yield from data.batches(batch_size, gen)


def fit(
    model: PhysVAE,
    data: SimulatedPixels | CubeSampler,
    *,
    epochs: int | None = None,
    max_steps: int | None = None,
    batch_size: int = 512,
    lr: float = 1e-3,
    kl_weight: float = 1.0,
    smooth_weight: float = 0.0,
    supervised_weight: float = 0.0,
    anchor: SimulatedPixels | None = None,
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
        raise ValueError("the SAFY-consistency term needs a temporal model (LAI trajectories)")
    from xr_physcube.accessors import resolve_device

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
    data: SimulatedPixels | SimulatedSeries,
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
    CLI: ``python -m xr_physcube.vae <name> [--seed 0] [--out PATH]``.
    """
    import time

    from xr_physcube.inverse.simulate import torch_threads
    from xr_physcube.vae.model import WEIGHTS_DIR

    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; known: {sorted(RECIPES)}")
    r = dict(RECIPES[name])
    steps = steps or r["steps"]
    n_sim = n_sim or r["n_sim"]
    sup = r["supervised_weight"] if supervised_weight is None else supervised_weight
    enc_steps = r.get("encoder_steps", 0) if encoder_steps is None else encoder_steps
    start = time.perf_counter()
    with torch_threads(num_threads):
        torch.manual_seed(seed)  # weight initialisation
        model = PhysVAE(**r["config"])
        data = simulate_for(model, n_sim, seed, r.get("n_dates", 8), num_threads=None)
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
    from xr_physcube.models import sar

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


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="rebuild a shipped VAE (weights/vae_<name>.pt)")
    parser.add_argument("name", choices=sorted(RECIPES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--supervised-weight", type=float, default=None)
    parser.add_argument("--encoder-steps", type=int, default=None)
    args = parser.parse_args(argv)
    model = pretrain(args.name, args.out, args.seed, args.supervised_weight, args.steps,
                     encoder_steps=args.encoder_steps)  # fmt: skip
    print(model.meta)


if __name__ == "__main__":
    main()
