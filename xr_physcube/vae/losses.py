"""Loss terms of the physics-constrained VAE: masked NLL, KL, LAI temporal smoothness.

The evidence lower bound (Kingma & Welling, 2014, ICLR) is
``E_q[log p(x | z)] - KL(q(z | x) || p(z))``; we minimise its negative, per valid
observation, plus optional regularisers of the LAI trajectory.
"""

from __future__ import annotations

import math

import torch

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
