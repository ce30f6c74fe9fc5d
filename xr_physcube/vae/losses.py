"""Loss terms of the physics-constrained VAE: masked NLL, KL, LAI temporal smoothness
and SAFY consistency.

The evidence lower bound (Kingma & Welling, 2014, ICLR) is
``E_q[log p(x | z)] - KL(q(z | x) || p(z))``; we minimise its negative, per valid
observation, plus optional regularisers of the LAI trajectory.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from xr_physcube.exceptions import InvalidArgumentError
from xr_physcube.models.safy import SafyParameters, safy, shipped_climate

LOG_2PI = math.log(2.0 * math.pi)


def gaussian_nll(
    obs: torch.Tensor, pred: torch.Tensor, log_sigma: torch.Tensor, reduce: bool = True
) -> torch.Tensor:
    """Heteroscedastic Gaussian negative log-likelihood with masking of missing data.

    ``0.5 ((x - m)/σ)² + log σ + 0.5 log 2π`` per element, where ``obs`` is finite;
    NaN observations (clouds, missing S1) contribute exactly zero and no gradient.
    ``log_sigma`` broadcasts against ``obs`` (a per-band vector or per-element).

    Returns the sum over valid elements divided by the number of observation rows
    (``reduce=True``), or the elementwise NLL with zeros where masked.
    """
    valid = torch.isfinite(obs)
    safe_obs = torch.where(valid, obs, pred.detach())
    log_sigma = log_sigma.expand_as(pred)
    nll = 0.5 * ((safe_obs - pred) / log_sigma.exp()) ** 2 + log_sigma + 0.5 * LOG_2PI
    nll = torch.where(valid, nll, torch.zeros_like(nll))
    if not reduce:
        return nll
    rows = max(obs[..., 0].numel(), 1)
    return nll.sum() / rows


def kl_logit_normal_uniform(
    mu: torch.Tensor, log_sigma: torch.Tensor, u: torch.Tensor
) -> torch.Tensor:
    """KL(q || p) per latent for q = N(mu, σ²) on u = logit of the scaled variable and p
    the uniform prior on its bounds (a standard logistic density on u).

    ``KL = E_q[log q(u)] - E_q[log p(u)]``: the first term is the exact negative entropy
    ``-log σ - ½(1 + log 2π)``; the second is estimated with the sample ``u`` (one-sample
    Monte Carlo, unbiased), ``log p(u) = log sigmoid(u) + log sigmoid(-u)``.
    The Jacobian of the bijection u -> z cancels, so this is also the KL in physical units.
    """
    neg_entropy = -log_sigma - 0.5 * (1.0 + LOG_2PI)
    log_prior = torch.nn.functional.logsigmoid(u) + torch.nn.functional.logsigmoid(-u)
    return neg_entropy - log_prior


def kl_standard_normal(mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """Closed-form KL(N(mu, σ²) || N(0, 1)) per dimension (free latents)."""
    return 0.5 * (mu**2 + torch.exp(2 * log_sigma) - 1.0) - log_sigma


def temporal_smoothness(lai: torch.Tensor, doy: torch.Tensor) -> torch.Tensor:
    """Mean squared change of LAI growth rate between consecutive dates ((m²/m²/day)² ).

    ``lai`` (..., T), ``doy`` (..., T) sorted; rates r_k = ΔLAI/Δt over each interval,
    penalty mean((r_{k+1} - r_k)²) — a discrete second derivative on an irregular grid
    (zero for linear trajectories). Returns 0 for fewer than 3 dates.
    """
    if lai.shape[-1] < 3:
        return lai.new_zeros(())
    dt = (doy[..., 1:] - doy[..., :-1]).to(lai).clamp_min(1.0)
    rate = (lai[..., 1:] - lai[..., :-1]) / dt
    return ((rate[..., 1:] - rate[..., :-1]) ** 2).mean()


class SafyConsistency(nn.Module):
    """Distance from a pixel's LAI trajectory to the nearest SAFY season under a climate.

    SAFY (:mod:`xr_physcube.models.safy`, Duchemin et al. 2008) is run once, at
    construction, over a grid of the parameters that Battude et al. (2016) calibrate per
    field — emergence day ``d0``, light-use efficiency ``elue`` and senescence onset
    ``stt`` — with the other crop parameters at ``params`` (default: the maize set) and
    the daily ``temperature`` (°C) / ``radiation`` (MJ m⁻² day⁻¹) forcing starting on
    day-of-year ``first_doy`` (default: the shipped synthetic Toulouse climate). The
    penalty of a trajectory ``lai`` (..., T) observed on ``doy`` (..., T) is a soft
    minimum over the G grid seasons of the mean squared difference (m²/m²)²,
    ``-tau · log Σ_g exp(-d_g / tau)`` + ``tau · log G`` (so it is ≥ the hard minimum and
    within ``tau · log G`` of it), averaged over pixels; dates outside the forcing are
    clamped to its ends. Differentiable w.r.t. ``lai``; the grid is a buffer (moves with
    ``.to(device)``).

    Args:
        temperature, radiation: daily forcing, °C and MJ m⁻² day⁻¹, same length.
        first_doy: day of year of the forcing's first day.
        d0: emergence days of the grid, day of year. elue: g MJ⁻¹. stt: °C·day.
        params: :class:`~xr_physcube.models.safy.SafyParameters` (scalars) for the other
            crop parameters; its ``d0``, ``elue`` and ``stt`` are replaced by the grid.
        tau: soft-minimum temperature, (m²/m²)².
    """

    def __init__(
        self,
        temperature: Sequence[float] | np.ndarray | None = None,
        radiation: Sequence[float] | np.ndarray | None = None,
        first_doy: int = 1,
        d0: Sequence[float] = tuple(range(40, 221, 5)),
        elue: Sequence[float] = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0),
        stt: Sequence[float] = (400.0, 700.0, 1100.0, 1500.0),
        params: SafyParameters | None = None,
        tau: float = 0.01,
    ):
        super().__init__()
        if temperature is None or radiation is None:
            clim = shipped_climate()
            temperature, radiation = clim.temperature, clim.radiation
            first_doy = int(clim.doy[0])
        if tau <= 0:
            raise InvalidArgumentError(f"tau must be > 0 (m²/m²)²; got {tau}")
        grid = np.array(list(itertools.product(d0, elue, stt)), dtype=np.float64)
        fixed = params.as_dict() if params is not None else {}
        fixed = {k: v for k, v in fixed.items() if k not in ("d0", "elue", "stt")}
        crop = SafyParameters(
            d0=torch.as_tensor(grid[:, 0] - first_doy),
            elue=torch.as_tensor(grid[:, 1]),
            stt=torch.as_tensor(grid[:, 2]),
            **fixed,
        )
        temp = torch.from_numpy(np.array(temperature, dtype=np.float64))  # a writable copy
        rad = torch.from_numpy(np.array(radiation, dtype=np.float64))
        with torch.no_grad():
            glai = safy(temp, rad, crop).glai  # (G, n_days)
        self.register_buffer("glai", glai.float())
        self.register_buffer("grid", torch.as_tensor(grid, dtype=torch.float32))
        self.first_doy = int(first_doy)
        self.tau = float(tau)

    def distances(self, lai: torch.Tensor, doy: torch.Tensor) -> torch.Tensor:
        """Mean squared difference (G, ...) between ``lai`` and each grid season."""
        doy = doy.expand_as(lai)
        day = (doy.round().long() - self.first_doy).clamp(0, self.glai.shape[-1] - 1)
        curves = self.glai.to(lai)[:, day]  # (G, ..., T)
        return ((lai.unsqueeze(0) - curves) ** 2).mean(-1)

    def forward(self, lai: torch.Tensor, doy: torch.Tensor) -> torch.Tensor:
        d = self.distances(lai, doy)
        log_g = math.log(d.shape[0])
        soft_min = -self.tau * (torch.logsumexp(-d / self.tau, dim=0) - log_g)
        return soft_min.mean()
