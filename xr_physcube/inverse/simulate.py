"""Training data for the inverse networks, simulated with the forward models.

:func:`simulate_s2` draws parameters from :data:`~xr_physcube.inverse.priors.S2_PRIORS`
with random S2 sun/view geometry, runs PROSAIL-D with the S2A spectral responses in
batches, derives FCOVER, FAPAR, canopy chlorophyll (LAI·Cab) and water (LAI·Cw), and adds
sensor noise. :func:`simulate_s1` adds soil moisture and roughness and runs the Water Cloud
Model over Oh 2004 with speckle. Both return an ``xarray.Dataset`` along ``sample``;
:func:`simulate_to_zarr` streams millions of samples to a zarr store batch by batch.
Everything is reproducible from the seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from xr_physcube.inverse.priors import S1_INCIDENCE, S1_PRIORS, S2_GEOMETRY, S2_PRIORS, PriorSet
from xr_physcube.models.canopy_variables import fapar, fcover
from xr_physcube.models.prosail import PROSAIL_PARAMETERS, Prosail, ProsailParameters
from xr_physcube.models.sar import water_cloud_backscatter
from xr_physcube.sensors.sentinel1 import linear_to_db
from xr_physcube.sensors.sentinel2 import BANDS, Sentinel2Bands

DERIVED_ATTRS = {
    "fcover": {"long_name": "fraction of green vegetation cover (nadir)", "units": "1"},
    "fapar": {"long_name": "instantaneous black-sky FAPAR at the sun zenith", "units": "1"},
    "ccc": {"long_name": "canopy chlorophyll content (LAI x Cab)", "units": "ug cm-2"},
    "cwc": {"long_name": "canopy water content (LAI x Cw)", "units": "cm"},
}


@dataclass(frozen=True)
class S2Noise:
    """Reflectance noise: r' = r (1 + m ε1) + a ε2, ε ~ N(0, 1) per band and sample.

    Defaults follow the S2 Toolbox ATBD design (Weiss & Baret 2016): a 1 % multiplicative
    term and a 0.01 additive term shared by the bands, plus 0.002 independent per band.
    """

    multiplicative: float = 0.01
    additive_correlated: float = 0.01
    additive_band: float = 0.002

    def apply(self, refl: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n, nb = refl.shape
        mult = 1.0 + self.multiplicative * rng.standard_normal((n, nb))
        shared = self.additive_correlated * rng.standard_normal((n, 1))
        own = self.additive_band * rng.standard_normal((n, nb))
        return refl * mult + shared + own


@dataclass(frozen=True)
class S1Noise:
    """Speckle: sigma0' = sigma0 · Gamma(L, 1/L), L = equivalent number of looks."""

    looks: float = 8.0  # IW GRD (ENL ~4.4) after a 3x3 boxcar/Lee filter, roughly

    def apply(self, sigma0: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return sigma0 * rng.gamma(self.looks, 1.0 / self.looks, sigma0.shape)


def _batches(n: int, batch: int, progress: bool, desc: str):
    starts = range(0, n, batch)
    return tqdm(starts, desc=desc, unit="batch", disable=not progress, leave=False)


def _s2_batch(
    n: int, rng: np.random.Generator, priors: PriorSet, noise: S2Noise, model: Prosail
) -> dict[str, np.ndarray]:
    params = priors.sample(n, rng)
    for name, dist in S2_GEOMETRY.items():
        params[name] = dist.sample(n, rng)
    t = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in params.items()}
    p = ProsailParameters(**t)
    with torch.no_grad():
        refl = model.run(p, validate=True).reflectance.numpy().astype(np.float64)
        out = dict(params)
        out["fcover"] = fcover(t["lai"], ala=t["ala"]).numpy().astype(np.float64)
        out["fapar"] = fapar(p, model.leaf_model).numpy().astype(np.float64)
    out["ccc"] = params["lai"] * params["cab"]
    out["cwc"] = params["lai"] * params["cw"]
    noisy = noise.apply(refl, rng)
    for i, b in enumerate(BANDS):
        out[b] = noisy[:, i]
        out[f"{b}_noiseless"] = refl[:, i]
    return out


def _s1_batch(
    n: int, rng: np.random.Generator, priors: PriorSet, noise: S2Noise, model: Prosail
) -> dict[str, np.ndarray]:
    out = _s2_batch(n, rng, S2_PRIORS, noise, model)
    soil = S1_PRIORS.sample(n, rng)
    theta = S1_INCIDENCE.sample(n, rng)
    with torch.no_grad():
        sig = water_cloud_backscatter(
            mv=torch.as_tensor(soil["mv"]),
            hrms=torch.as_tensor(soil["hrms"]),
            theta=torch.as_tensor(theta),
            lai=torch.as_tensor(out["lai"]),
        )
    speckle = S1Noise()
    out.update(soil)
    out["theta"] = theta
    out["VV"] = speckle.apply(sig.vv.numpy(), rng)
    out["VH"] = speckle.apply(sig.vh.numpy(), rng)
    out["VV_db"], out["VH_db"] = linear_to_db(out["VV"]), linear_to_db(out["VH"])
    out["ndvi"] = (out["B8"] - out["B4"]) / (out["B8"] + out["B4"])
    return out


def _to_dataset(columns: dict[str, np.ndarray], offset: int) -> xr.Dataset:
    n = len(next(iter(columns.values())))
    data = {}
    for name, values in columns.items():
        attrs = {}
        if name in PROSAIL_PARAMETERS:
            attrs = PROSAIL_PARAMETERS[name].attrs()
        elif name in DERIVED_ATTRS:
            attrs = DERIVED_ATTRS[name]
        elif name in S1_PRIORS.priors:
            attrs = S1_PRIORS[name].spec.attrs()
        data[name] = ("sample", values.astype(np.float32), attrs)
    return xr.Dataset(data, coords={"sample": np.arange(offset, offset + n)})


def _simulate(
    batch_fn: Callable,
    n: int,
    seed: int,
    priors: PriorSet,
    noise: S2Noise,
    batch_size: int,
    progress: bool,
    compile: bool,
    sink: Callable[[xr.Dataset], None] | None = None,
) -> xr.Dataset | None:
    rng = np.random.default_rng(seed)
    model = Prosail("D", "campbell", sensor=Sentinel2Bands("S2A"), compile=compile)
    parts = []
    for start in _batches(n, batch_size, progress, "simulating"):
        m = min(batch_size, n - start)
        ds = _to_dataset(batch_fn(m, rng, priors, noise, model), start)
        if sink is None:
            parts.append(ds)
        else:
            sink(ds)
    return xr.concat(parts, dim="sample") if sink is None else None


def simulate_s2(
    n: int,
    seed: int = 0,
    priors: PriorSet = S2_PRIORS,
    noise: S2Noise = S2Noise(),
    batch_size: int = 16_384,
    progress: bool = True,
    compile: bool = False,
) -> xr.Dataset:
    """``n`` PROSAIL simulations: parameters, angles, noisy bands B2…B12 (and noiseless
    ``<band>_noiseless``), fcover, fapar, ccc, cwc; dims ``sample``."""
    return _simulate(_s2_batch, n, seed, priors, noise, batch_size, progress, compile)


def simulate_s1(
    n: int, seed: int = 0, batch_size: int = 16_384, progress: bool = True, compile: bool = False
) -> xr.Dataset:
    """As :func:`simulate_s2` plus soil moisture ``mv``, roughness ``hrms``, incidence
    ``theta`` and speckled ``VV``/``VH`` (linear and ``_db``) and NDVI from noisy B8/B4."""
    return _simulate(_s1_batch, n, seed, S2_PRIORS, S2Noise(), batch_size, progress, compile)


def simulate_to_zarr(
    path: str | Path,
    n: int,
    sensor: str = "S2",
    seed: int = 0,
    batch_size: int = 65_536,
    progress: bool = True,
    compile: bool = False,
) -> Path:
    """Stream ``n`` simulations to a zarr store, one batch in memory at a time.

    The result equals ``simulate_s2(n, seed, batch_size=batch_size)`` (or S1) written at once.
    """
    path = Path(path)
    batch_fn = {"S2": _s2_batch, "S1": _s1_batch}[sensor.upper()]
    state = {"first": True}

    def sink(ds: xr.Dataset) -> None:
        if state["first"]:
            ds.to_zarr(path, mode="w")
            state["first"] = False
        else:
            ds.to_zarr(path, append_dim="sample")

    _simulate(batch_fn, n, seed, S2_PRIORS, S2Noise(), batch_size, progress, compile, sink)
    return path
