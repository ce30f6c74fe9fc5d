"""Prior distributions of the forward-model inputs used to simulate training data.

Design of the Sentinel-2 Toolbox Level-2 ATBD (Weiss & Baret 2016, "S2ToolBox Level 2
products: LAI, FAPAR, FCOVER", v1.1, Table 3): truncated Gaussians for the main
variables and a *co-distribution with LAI*: as LAI grows, the range of each leaf/soil
variable shrinks linearly from its full prior range at LAI = 0 to a narrower range at
the maximum LAI, which prevents physically unlikely combinations (e.g. dense canopies
of yellow leaves) from dominating the training set. The values below follow that table
where our parameterisation matches it (leaf water is drawn as Cw directly rather than
through relative water content). Every prior is checked against the model's
:class:`~xr_physcube.parameters.ParameterSpec` at import (one owner of physical bounds);
plain :class:`Gaussian` priors are truncated to those bounds. Swap a distribution with
:meth:`PriorSet.replace`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from xr_physcube.exceptions import OutOfRangeError
from xr_physcube.models import prospect, sail, sar
from xr_physcube.parameters import ParameterSpec


@dataclass(frozen=True)
class Uniform:
    lower: float
    upper: float

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.lower, self.upper, n)


@dataclass(frozen=True)
class Gaussian:
    """Gaussian(mean, std); samples are truncated to the parameter's physical bounds."""

    mean: float
    std: float
    lower: float = -np.inf
    upper: float = np.inf

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return TruncatedGaussian(self.mean, self.std, self.lower, self.upper).sample(n, rng)


@dataclass(frozen=True)
class TruncatedGaussian:
    """Gaussian(mean, std) truncated to [lower, upper]; ``std = inf`` is uniform."""

    mean: float
    std: float
    lower: float
    upper: float

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        a, b = (self.lower - self.mean) / self.std, (self.upper - self.mean) / self.std
        return stats.truncnorm.rvs(a, b, loc=self.mean, scale=self.std, size=n, random_state=rng)


@dataclass(frozen=True)
class Fixed:
    value: float

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.full(n, self.value)


Distribution = Uniform | Gaussian | TruncatedGaussian | Fixed


@dataclass(frozen=True)
class Codistribution:
    """Range of a variable at the maximum LAI; at LAI 0 it is the full prior range."""

    lower_at_max_lai: float
    upper_at_max_lai: float


@dataclass(frozen=True)
class Prior:
    """A distribution for one model input, checked against the input's spec."""

    spec: ParameterSpec
    distribution: Distribution
    codistribution: Codistribution | None = None

    def __post_init__(self) -> None:
        d = self.distribution
        if isinstance(d, Gaussian):  # a plain Gaussian is truncated to the physical bounds
            lo = max(d.lower, self.spec.lower)
            hi = min(d.upper, self.spec.upper)
            object.__setattr__(self, "distribution", Gaussian(d.mean, d.std, lo, hi))
            d = self.distribution
        lo, hi = (d.value, d.value) if isinstance(d, Fixed) else (d.lower, d.upper)
        if self.codistribution is not None:
            lo = min(lo, self.codistribution.lower_at_max_lai)
            hi = max(hi, self.codistribution.upper_at_max_lai)
        if lo < self.spec.lower or hi > self.spec.upper:
            raise OutOfRangeError(
                f"prior of '{self.spec.name}' spans [{lo:g}, {hi:g}], outside the "
                f"physical bounds {self.spec.range_text}"
            )

    @property
    def bounds(self) -> tuple[float, float]:
        d = self.distribution
        return (d.value, d.value) if isinstance(d, Fixed) else (d.lower, d.upper)


@dataclass(frozen=True)
class PriorSet:
    """Priors for a set of inputs; ``lai`` drives the co-distributions."""

    priors: Mapping[str, Prior]
    lai_max: float = field(default=8.0)

    def __getitem__(self, name: str) -> Prior:
        return self.priors[name]

    def names(self) -> tuple[str, ...]:
        return tuple(self.priors)

    def replace(self, **distributions: Distribution | Prior) -> PriorSet:
        """A copy with some distributions swapped (co-distributions are kept), e.g.
        ``S2_PRIORS.replace(lai=Uniform(0, 6))``."""
        priors = dict(self.priors)
        for name, d in distributions.items():
            if isinstance(d, Prior):
                priors[name] = d
            else:
                old = self.priors[name]
                priors[name] = Prior(old.spec, d, old.codistribution)
        return PriorSet(priors, self.lai_max)

    def describe(self) -> dict[str, dict]:
        """JSON-able description (stored with trained networks)."""
        out = {}
        for name, p in self.priors.items():
            d = p.distribution
            out[name] = {"distribution": type(d).__name__, **dataclasses.asdict(d)}
            if p.codistribution is not None:
                out[name]["at_lai_max"] = [
                    p.codistribution.lower_at_max_lai,
                    p.codistribution.upper_at_max_lai,
                ]
        return {"lai_max": self.lai_max, "priors": out}

    def sample(self, n: int, seed: int | np.random.Generator = 0) -> dict[str, np.ndarray]:
        """Draw ``n`` joint samples (float64 arrays), reproducible for a given seed."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        out = {name: p.distribution.sample(n, rng) for name, p in self.priors.items()}
        if "lai" in out:
            frac = np.clip(out["lai"] / self.lai_max, 0.0, 1.0)
            for name, p in self.priors.items():
                if p.codistribution is None:
                    continue
                lo0, hi0 = p.bounds
                lo = lo0 + frac * (p.codistribution.lower_at_max_lai - lo0)
                hi = hi0 + frac * (p.codistribution.upper_at_max_lai - hi0)
                out[name] = lo + (out[name] - lo0) * (hi - lo) / (hi0 - lo0)
        return out


def _p(spec: ParameterSpec, dist: Distribution, co: tuple[float, float] | None = None) -> Prior:
    return Prior(spec, dist, Codistribution(*co) if co else None)


S2_PRIORS = PriorSet(
    {
        "lai": _p(sail.LAI, TruncatedGaussian(2.0, 3.0, 0.0, 8.0)),
        "ala": _p(sail.ALA, TruncatedGaussian(60.0, 20.0, 30.0, 80.0), (55.0, 65.0)),
        "hspot": _p(sail.HSPOT, TruncatedGaussian(0.2, 0.5, 0.1, 0.5), (0.1, 0.5)),
        "N": _p(prospect.N, TruncatedGaussian(1.5, 0.3, 1.2, 2.2), (1.3, 1.8)),
        "cab": _p(prospect.CAB, TruncatedGaussian(45.0, 30.0, 20.0, 90.0), (45.0, 90.0)),
        # to 25 µg/cm²: senescent and stressed leaves reach it (ANGERS, Féret et al. 2008)
        "car": _p(prospect.CAR, Uniform(4.0, 25.0)),
        "cbrown": _p(prospect.CBROWN, TruncatedGaussian(0.0, 0.3, 0.0, 2.0), (0.0, 0.2)),
        "cw": _p(prospect.CW, TruncatedGaussian(0.012, 0.01, 0.002, 0.04), (0.01, 0.03)),
        "cm": _p(prospect.CM, TruncatedGaussian(0.005, 0.005, 0.003, 0.011), (0.005, 0.011)),
        "psoil": _p(sail.PSOIL, Uniform(0.0, 1.0)),
        "rsoil": _p(sail.RSOIL, TruncatedGaussian(1.0, 0.2, 0.5, 1.5), (0.5, 1.2)),
    }
)
"""PROSAIL priors for the Sentinel-2 networks (ATBD Table 3 design)."""

S2_GEOMETRY = PriorSet(
    {
        # sun zenith over S2 acquisitions (mid-latitudes, all seasons)
        "tts": _p(sail.TTS, Uniform(15.0, 70.0)),
        # MSI view zenith: at most ~11.5 deg at the swath edges (field of view 20.6 deg)
        "tto": _p(sail.TTO, Uniform(0.0, 12.0)),
        "psi": _p(sail.PSI, Uniform(0.0, 180.0)),
    }
)
"""Sun/view geometry sampled with the S2 simulations (degrees), independent of LAI."""

S1_PRIORS = PriorSet(
    {
        "mv": _p(sar.MV, Uniform(0.03, 0.45)),
        "hrms": _p(sar.HRMS, Uniform(0.4, 3.0)),
    }
)
"""Soil priors for the Sentinel-1 network (volumetric moisture, roughness)."""

S1_GEOMETRY = PriorSet({"theta": _p(sar.THETA, Uniform(29.0, 46.0))})
"""Incidence angles (deg) within the Sentinel-1 IW swath (29.1-46.0 deg)."""
