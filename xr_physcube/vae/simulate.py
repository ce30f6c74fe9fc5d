"""Simulated pixels and pixel time series with known truth, to pre-train the VAE.

* :func:`simulate_prior_pixels` / :func:`simulate_prior_series`: drawn from the shared
  priors (:mod:`xr_physcube.inverse.priors`) with the inverse module's simulation and
  noise model (the inverse networks' training design); :func:`simulate_like` picks the
  one that fits a model; :func:`simulate_pixels`: the older uniform-box design (2 % +
  0.003 S2 noise).
* :class:`SimulatedPixels` / :class:`SimulatedSeries` are batch sources
  (:class:`~xr_physcube.vae.train.BatchSource`) for :func:`~xr_physcube.vae.train.fit`.

Observations are in the VAE's layout (:class:`~xr_physcube.vae.model.Observations`):
S2 reflectance then S1 VV, VH in dB.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from xr_physcube.models.prosail import PROSAIL_PARAMETERS, Prosail, ProsailParameters
from xr_physcube.models.sar import water_cloud_backscatter
from xr_physcube.sensors.sentinel1 import linear_to_db
from xr_physcube.sensors.sentinel2 import BANDS, Sentinel2Bands
from xr_physcube.vae.model import ANGLES, PhysVAE


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
    obs = np.concatenate([refl, linear_to_db(s1)], axis=-1)
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
    its noise model (:class:`~xr_physcube.inverse.simulate.S2Noise`, L2A error budget),
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
    obs = np.concatenate([refl, linear_to_db(s1)], axis=-1)
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
    obs = np.concatenate([refl, linear_to_db(s1)], axis=-1)
    truth = np.stack([p[k] for k in names], -1)
    f = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
    return SimulatedSeries(f(obs), f(ang), f(truth), tuple(names), doy=f(doy))


def simulate_like(
    model: PhysVAE, n: int, seed: int = 1, n_dates: int = 8, num_threads: int | None = 1
) -> SimulatedPixels:
    """``n`` simulations from the shared priors in ``model``'s latents and of its kind
    (pre-training data, or the ``anchor`` of a fine-tuning): :func:`simulate_prior_series`
    (``n_dates`` dates) for temporal models, else :func:`simulate_prior_pixels`."""
    if model.config.temporal:
        return simulate_prior_series(n, model.latent_names, n_dates, seed, num_threads=num_threads)
    return simulate_prior_pixels(n, model.latent_names, seed, num_threads=num_threads)
