"""The VAE's prior: the inverse module's priors, as a density over the VAE's latents.

The single owner of the priors is :mod:`xr_physcube.inverse.priors` (S2 ToolBox ATBD
design, Weiss & Baret 2016, v1.1 Table 3: truncated Gaussians and uniforms, with a
*co-distribution with LAI*). The VAE shares them, so that its KL term and the inverse
networks' training sets express the same prior knowledge.

**Parameterisation.** :meth:`~xr_physcube.inverse.priors.PriorSet.sample` draws each
variable ``x0`` independently from its 1-D distribution on ``[lo0, hi0]`` and then, for a
co-distributed variable, maps it linearly onto a LAI-dependent range::

    f = clip(LAI / lai_max, 0, 1)
    lo(f) = lo0 + f (lo1 - lo0),  hi(f) = hi0 + f (hi1 - hi0)
    x = lo(f) + (x0 - lo0) (hi(f) - lo(f)) / (hi0 - lo0)

The VAE's latents are the *base* variables ``(LAI, x0, ...)``, each with a logit-normal
posterior on its box ``[lo0, hi0]``; the decoder sees the physical ``x``. The map
``(LAI, x0) -> (LAI, x)`` is a bijection of the box onto the prior's support, and the
KL divergence is invariant under bijections, so

    KL(q(LAI, x | obs) || p(LAI, x)) = Σ_i KL(q_i(x0_i) || p0_i(x0_i)),

a sum of 1-D terms against the independent base densities ``p0_i`` (truncated Gaussian
or uniform). Each is computed in the logit space ``u = logit((x0 - lo0)/(hi0 - lo0))``:
``KL_i = E_q[log q(u)] - E_q[log p0(x0(u)) + log |dx0/du|]``, the first term exact
(negative Gaussian entropy), the second by Gauss–Hermite quadrature (or one Monte-Carlo
sample). A ``"uniform"`` prior (the previous design: uniform boxes, no co-distribution)
is the special case with the standard logistic density on ``u``.

Posterior moments of a co-distributed variable follow exactly from the 1-D moments of
``x0`` and ``f`` (they are independent under the mean-field posterior):
``x - lo0 = X a + Δlo f`` with ``X = x0 - lo0``, ``a = 1 + r f``, ``r = (w1 - w0)/w0``, so
``E[x] = lo0 + E[X] E[a] + Δlo E[f]`` and
``Var[x] = Var[X] E[a²] + Var[f] (r E[X] + Δlo)²``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import nn

from xr_physcube.exceptions import InvalidArgumentError

LOG_2PI = math.log(2.0 * math.pi)

PriorTable = dict[str, Any]
"""JSON-able prior description stored in :class:`~xr_physcube.vae.model.VAEConfig`:
``{"lai_max": float, "latents": {name: [kind, mean, std, lo0, hi0, lo1, hi1]}}`` with
``kind`` "uniform" or "truncnorm" (mean, std None for uniform) and ``lo1, hi1`` the
range at ``lai_max`` (None: no co-distribution)."""


def inverse_prior_table(names: Sequence[str]) -> PriorTable:
    """The priors of :mod:`xr_physcube.inverse.priors` (``S2_PRIORS`` and ``S1_PRIORS``)
    for the latents ``names``, as a :data:`PriorTable`."""
    from xr_physcube.inverse.priors import (
        S1_PRIORS,
        S2_PRIORS,
        Fixed,
        Gaussian,
        TruncatedGaussian,
        Uniform,
    )

    if S1_PRIORS.lai_max != S2_PRIORS.lai_max and any(
        n in S1_PRIORS.priors and S1_PRIORS[n].codistribution for n in names
    ):
        raise InvalidArgumentError("S1 and S2 priors disagree on lai_max")
    table: dict[str, list] = {}
    for name in names:
        if name in S2_PRIORS.priors:
            prior = S2_PRIORS[name]
        elif name in S1_PRIORS.priors:
            prior = S1_PRIORS[name]
        else:
            raise InvalidArgumentError(
                f"no prior for latent {name!r} in xr_physcube.inverse.priors"
            )
        d = prior.distribution
        if isinstance(d, Fixed):
            raise InvalidArgumentError(f"the prior of {name!r} is Fixed; it cannot be a latent")
        if isinstance(d, Uniform):
            row = ["uniform", None, None, d.lower, d.upper]
        elif isinstance(d, TruncatedGaussian | Gaussian):
            if not (math.isfinite(d.lower) and math.isfinite(d.upper)):
                raise InvalidArgumentError(f"the prior of {name!r} must have finite bounds")
            gauss = math.isfinite(d.std)
            row = ["truncnorm" if gauss else "uniform", d.mean if gauss else None,
                   d.std if gauss else None, d.lower, d.upper]  # fmt: skip
        else:  # pragma: no cover - new distribution types
            raise InvalidArgumentError(f"unsupported prior {type(d).__name__} for {name!r}")
        co = prior.codistribution
        if co is None or name == "lai":
            row += [None, None]
        else:
            row += [co.lower_at_max_lai, co.upper_at_max_lai]
        table[name] = [row[0], *(None if v is None else float(v) for v in row[1:])]
    return {"lai_max": float(S2_PRIORS.lai_max), "latents": table}


def uniform_prior_table(ranges: Mapping[str, tuple[float, float]]) -> PriorTable:
    """Uniform priors on boxes, no co-distribution."""
    return {
        "lai_max": 8.0,
        "latents": {n: ["uniform", None, None, float(lo), float(hi), None, None]
                    for n, (lo, hi) in ranges.items()},
    }  # fmt: skip


class LatentPrior(nn.Module):
    """Tensor form of a :data:`PriorTable` for latents ``names`` (order of the model).

    Buffers are not persistent (they are rebuilt from the config when loading).
    """

    def __init__(self, names: Sequence[str], table: PriorTable):
        super().__init__()
        self.names = tuple(names)
        rows = [table["latents"][n] for n in self.names]
        self.lai_max = float(table["lai_max"])
        self.lai_index = self.names.index("lai")
        nan = math.nan
        f64 = lambda i: torch.tensor(  # noqa: E731
            [nan if r[i] is None else float(r[i]) for r in rows], dtype=torch.float64
        )
        gauss = torch.tensor([r[0] == "truncnorm" for r in rows])
        mean, std, lo, hi, lo1, hi1 = (f64(i) for i in range(1, 7))
        log_z = torch.zeros(len(rows), dtype=torch.float64)
        for i, r in enumerate(rows):
            if r[0] == "truncnorm":  # log of the Gaussian mass inside [lo, hi]
                a, b = (r[3] - r[1]) / r[2], (r[4] - r[1]) / r[2]
                log_z[i] = float(np.log(stats.norm.cdf(b) - stats.norm.cdf(a)))
        co = torch.isfinite(lo1) & torch.isfinite(hi1)
        width = hi - lo
        d_lo = torch.where(co, lo1 - lo, torch.zeros_like(lo))
        ratio = torch.where(co, ((hi1 - lo1) - width) / width, torch.zeros_like(lo))
        buffers = {
            "gauss": gauss,
            "mean": torch.where(gauss, mean, torch.zeros_like(mean)),
            "std": torch.where(gauss, std, torch.ones_like(std)),
            "log_z": log_z,
            "lower": lo,
            "upper": hi,
            "co": co,
            "d_lo": d_lo,
            "ratio": ratio,
        }
        for k, v in buffers.items():
            self.register_buffer(k, v.float() if v.is_floating_point() else v, persistent=False)

    # -- co-distribution with LAI ------------------------------------------------------
    def lai_fraction(self, lai: torch.Tensor) -> torch.Tensor:
        return (lai / self.lai_max).clamp(0.0, 1.0)

    def to_physical(self, x0: torch.Tensor) -> torch.Tensor:
        """Base variables (..., n) in their boxes -> physical values (co-distributed)."""
        f = self.lai_fraction(x0[..., self.lai_index])[..., None]
        lo, d_lo, r = self.lower.to(x0), self.d_lo.to(x0), self.ratio.to(x0)
        x = lo + (x0 - lo) * (1.0 + r * f) + d_lo * f
        return torch.where(self.co, x, x0)

    def to_base(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`to_physical` (LAI is unchanged by the map)."""
        f = self.lai_fraction(x[..., self.lai_index])[..., None]
        lo, d_lo, r = self.lower.to(x), self.d_lo.to(x), self.ratio.to(x)
        x0 = lo + (x - lo - d_lo * f) / (1.0 + r * f)
        return torch.where(self.co, x0, x)

    def physical_moments(
        self, mean0: torch.Tensor, var0: torch.Tensor, f_mean: torch.Tensor, f_var: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of the physical variables from the independent base moments
        (``mean0``, ``var0``: (..., n)) and those of ``f = clip(LAI/lai_max)`` (...)."""
        lo, d_lo, r = self.lower.to(mean0), self.d_lo.to(mean0), self.ratio.to(mean0)
        ef, vf = f_mean[..., None], f_var[..., None]
        ex = mean0 - lo
        ea = 1.0 + r * ef
        mean = lo + ex * ea + d_lo * ef
        var = var0 * (ea**2 + r**2 * vf) + vf * (r * ex + d_lo) ** 2
        return torch.where(self.co, mean, mean0), torch.where(self.co, var, var0)

    # -- densities ---------------------------------------------------------------------
    def log_density_u(self, u: torch.Tensor) -> torch.Tensor:
        """log p(u) per latent (..., n) of the base prior in the logit space
        ``u = logit((x0 - lo0)/(hi0 - lo0))``: log p0(x0) + log |dx0/du|."""
        lo, hi = self.lower.to(u), self.upper.to(u)
        width = hi - lo
        s = torch.sigmoid(u)
        x0 = lo + width * s
        z = (x0 - self.mean.to(u)) / self.std.to(u)
        log_gauss = -0.5 * z**2 - torch.log(self.std.to(u)) - 0.5 * LOG_2PI - self.log_z.to(u)
        log_p0 = torch.where(self.gauss, log_gauss, -torch.log(width))
        log_jac = torch.log(width) + nn.functional.logsigmoid(u) + nn.functional.logsigmoid(-u)
        return log_p0 + log_jac


_KL_NODES, _KL_WEIGHTS = (torch.as_tensor(a) for a in np.polynomial.hermite_e.hermegauss(16))
_KL_WEIGHTS = _KL_WEIGHTS / _KL_WEIGHTS.sum()


def kl_logit_normal_prior(
    mu: torch.Tensor,
    log_sigma: torch.Tensor,
    prior: LatentPrior,
    u: torch.Tensor | None = None,
) -> torch.Tensor:
    """KL(N(mu, σ²) on u || prior on u) per latent (..., n) — see the module docstring.

    Negative entropy exact (``-log σ - ½(1 + log 2π)``); cross-entropy
    ``-E_q[log p(u)]`` by 16-node Gauss–Hermite quadrature, or, if the sample ``u`` is
    given, by one-sample Monte Carlo (unbiased).
    """
    neg_entropy = -log_sigma - 0.5 * (1.0 + LOG_2PI)
    if u is not None:
        return neg_entropy - prior.log_density_u(u)
    nodes, w = _KL_NODES.to(mu), _KL_WEIGHTS.to(mu)
    uk = mu[..., None, :] + log_sigma.exp()[..., None, :] * nodes[:, None]  # (..., K, n)
    cross = (prior.log_density_u(uk) * w[:, None]).sum(-2)
    return neg_entropy - cross
