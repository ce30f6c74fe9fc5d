"""Training data for the inverse networks, simulated with the forward models.

:func:`simulate_s2` draws parameters from :data:`~xr_physcube.inverse.priors.S2_PRIORS`
and sun/view geometry from :data:`~xr_physcube.inverse.priors.S2_GEOMETRY`, runs
PROSAIL-D (Campbell LIDF) with the S2A spectral responses in batches, derives FCOVER,
FAPAR (:mod:`xr_physcube.models.canopy_variables`), canopy chlorophyll (LAI·Cab) and
water (LAI·Cw) contents, and adds sensor noise. :func:`simulate_s1` adds soil moisture,
roughness and incidence angle and runs the Water Cloud Model (LAI descriptor) over
Oh (2004) with speckle. Both return an ``xarray.Dataset`` along ``sample``;
:func:`simulate_to_zarr` streams millions of samples to a zarr store one batch at a
time. Everything is reproducible from the seed (for a given ``batch_size``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from xr_physcube._zarr import ZARR_FORMAT
from xr_physcube.exceptions import InvalidArgumentError
from xr_physcube.inverse.priors import S1_GEOMETRY, S1_PRIORS, S2_GEOMETRY, S2_PRIORS, PriorSet
from xr_physcube.models.canopy_variables import fapar, fcover
from xr_physcube.models.prosail import PROSAIL_PARAMETERS, Prosail, ProsailParameters
from xr_physcube.models.sar import water_cloud_backscatter
from xr_physcube.sensors.sentinel2 import BANDS, Sentinel2Bands

DERIVED_ATTRS = {
    "fcover": {"long_name": "fraction of green vegetation cover (nadir)", "units": "1"},
    "fapar": {
        "long_name": "instantaneous black-sky fraction of absorbed PAR at the sun zenith",
        "units": "1",
    },
    "ccc": {"long_name": "canopy chlorophyll content (LAI x Cab)", "units": "ug cm-2"},
    "cwc": {"long_name": "canopy water content (LAI x Cw)", "units": "cm"},
    "ndvi": {"long_name": "normalized difference vegetation index (B8, B4)", "units": "1"},
    "VV": {"long_name": "Sentinel-1 VV backscatter coefficient", "units": "1"},
    "VH": {"long_name": "Sentinel-1 VH backscatter coefficient", "units": "1"},
}
"""CF attributes of the simulated quantities that are not model inputs."""


@dataclass(frozen=True)
class S2Noise:
    """Surface-reflectance error of Sentinel-2 L2A, as noise on simulated reflectance.

    r' = r (1 + m ε1)(1 + m_c ε2) + a_c ε3 + a_b ε4, ε ~ N(0, 1): ε1, ε4 drawn per band
    and sample (independent), ε2, ε3 once per sample and shared by the bands (the
    band-correlated error of the atmospheric correction: aerosol and water vapour).

    Defaults: the error budget of the L2A accuracy requirement, |Δr| ≤ 0.005 + 0.05 r
    (ESA, *Sentinel-2 Mission Requirements Document*, EOP-SM/1163/MR-dr, 2010, for
    surface reflectance), split evenly between correlated and independent terms:
    additive 0.005 each, multiplicative 3 % each. It contains the S2 Toolbox ATBD design
    (Weiss & Baret 2016: 0.01 correlated additive, 1 % multiplicative, as
    ``S2Noise.atbd()``) in the additive correlated part and widens the independent part,
    so a network trained with it does not collapse when real bands err independently
    (``benchmarks/bench_real.py`` measures both on field data and on independent
    PROSAIL simulations). ``multiplicative`` and ``additive_band`` may give one value
    per band of :data:`~xr_physcube.sensors.sentinel2.BANDS`.
    """

    multiplicative: float | tuple[float, ...] = 0.03
    additive_correlated: float = 0.005
    additive_band: float | tuple[float, ...] = 0.005
    multiplicative_correlated: float = 0.03

    @classmethod
    def atbd(cls) -> S2Noise:
        """The noise of the first shipped networks (S2 Toolbox ATBD design): 1 %
        multiplicative, 0.01 band-correlated and 0.002 per-band additive."""
        return cls(0.01, 0.01, 0.002, 0.0)

    def apply(self, refl: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n, nb = refl.shape
        mult = 1.0 + np.asarray(self.multiplicative) * rng.standard_normal((n, nb))
        shared = self.additive_correlated * rng.standard_normal((n, 1))
        own = np.asarray(self.additive_band) * rng.standard_normal((n, nb))
        if self.multiplicative_correlated:
            mult = mult * (1.0 + self.multiplicative_correlated * rng.standard_normal((n, 1)))
        return refl * mult + shared + own


@dataclass(frozen=True)
class S1Noise:
    """Speckle: sigma0' = sigma0 · Gamma(L, 1/L), L = equivalent number of looks.

    L = 8: Sentinel-1 IW GRD (ENL ≈ 4.4) after light multilooking/filtering, as in the
    demo cube.
    """

    looks: float = 8.0

    def apply(self, sigma0: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return sigma0 * rng.gamma(self.looks, 1.0 / self.looks, sigma0.shape)


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that defines a simulated training set (besides ``n`` and ``seed``)."""

    priors: PriorSet = S2_PRIORS
    geometry: PriorSet = S2_GEOMETRY
    noise: S2Noise = field(default_factory=S2Noise)
    s1_priors: PriorSet = S1_PRIORS
    s1_geometry: PriorSet = S1_GEOMETRY
    s1_noise: S1Noise = field(default_factory=S1Noise)
    spectral_step: int = 1
    keep_noiseless: bool = False

    def describe(self) -> dict:
        """JSON-able summary (stored in the metadata of trained networks)."""
        return {
            "priors": self.priors.describe(),
            "geometry": self.geometry.describe(),
            "noise": vars(self.noise),
            "s1_priors": self.s1_priors.describe(),
            "s1_geometry": self.s1_geometry.describe(),
            "s1_noise": vars(self.s1_noise),
            "spectral_step": self.spectral_step,
            "forward_model": "PROSAIL-D, Campbell LIDF, S2A SRF; WCM(LAI) over Oh 2004",
        }


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily run torch on ``n`` threads (None: leave as is)."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _s2_batch(
    n: int, rng: np.random.Generator, cfg: SimulationConfig, model: Prosail
) -> dict[str, np.ndarray]:
    params = cfg.priors.sample(n, rng)
    params.update(cfg.geometry.sample(n, rng))
    t = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in params.items()}
    p = ProsailParameters(**t)
    with torch.no_grad():
        refl = model.run(p, validate=True).reflectance.double().numpy()
        out = dict(params)
        out["fcover"] = fcover(t["lai"], ala=t["ala"]).double().numpy()
        out["fapar"] = fapar(p, model.leaf_model).double().numpy()
    out["ccc"] = params["lai"] * params["cab"]
    out["cwc"] = params["lai"] * params["cw"]
    noisy = cfg.noise.apply(refl, rng)
    for i, b in enumerate(BANDS):
        out[b] = noisy[:, i]
        if cfg.keep_noiseless:
            out[f"{b}_noiseless"] = refl[:, i]
    return out


def _s1_batch(
    n: int, rng: np.random.Generator, cfg: SimulationConfig, model: Prosail
) -> dict[str, np.ndarray]:
    out = _s2_batch(n, rng, cfg, model)
    soil = cfg.s1_priors.sample(n, rng)
    soil.update(cfg.s1_geometry.sample(n, rng))
    with torch.no_grad():
        sig = water_cloud_backscatter(
            mv=torch.as_tensor(soil["mv"]),
            hrms=torch.as_tensor(soil["hrms"]),
            theta=torch.as_tensor(soil["theta"]),
            lai=torch.as_tensor(out["lai"]),
        )
    out.update(soil)
    out["VV"] = cfg.s1_noise.apply(sig.vv.numpy(), rng)
    out["VH"] = cfg.s1_noise.apply(sig.vh.numpy(), rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ndvi"] = (out["B8"] - out["B4"]) / (out["B8"] + out["B4"])
    return out


def _attrs(name: str, cfg: SimulationConfig) -> dict:
    if name in PROSAIL_PARAMETERS:
        return PROSAIL_PARAMETERS[name].attrs()
    if name in DERIVED_ATTRS:
        return dict(DERIVED_ATTRS[name])
    for ps in (cfg.s1_priors, cfg.s1_geometry):
        if name in ps.priors:
            return ps[name].spec.attrs()
    band = name.removesuffix("_noiseless")
    if band in BANDS:
        noisy = "noiseless" if name != band else "with sensor noise"
        return {"long_name": f"simulated surface reflectance, band {band} ({noisy})", "units": "1"}
    return {}


def _to_dataset(columns: dict[str, np.ndarray], offset: int, cfg: SimulationConfig) -> xr.Dataset:
    n = len(next(iter(columns.values())))
    data = {
        name: ("sample", values.astype(np.float32), _attrs(name, cfg))
        for name, values in columns.items()
    }
    return xr.Dataset(data, coords={"sample": np.arange(offset, offset + n)})


def _simulate(
    batch_fn: Callable,
    n: int,
    seed: int,
    cfg: SimulationConfig,
    batch_size: int,
    progress: bool,
    num_threads: int | None,
    sink: Callable[[xr.Dataset], None] | None = None,
) -> xr.Dataset | None:
    if n < 1:
        raise InvalidArgumentError(f"n must be >= 1; got {n}")
    rng = np.random.default_rng(seed)
    step = cfg.spectral_step
    model = Prosail("D", "campbell", sensor=Sentinel2Bands("S2A", spectral_step=step),
                    spectral_step=step)  # fmt: skip
    parts = []
    bar = tqdm(total=n, desc="simulating", unit="sample", disable=not progress, leave=False)
    with torch_threads(num_threads), bar:
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            ds = _to_dataset(batch_fn(m, rng, cfg, model), start, cfg)
            if sink is None:
                parts.append(ds)
            else:
                sink(ds)
            bar.update(m)
    if sink is not None:
        return None
    out = xr.concat(parts, dim="sample") if len(parts) > 1 else parts[0]
    out.attrs.update({"seed": seed, "batch_size": batch_size})
    return out


def simulate_s2(
    n: int,
    seed: int = 0,
    config: SimulationConfig | None = None,
    batch_size: int = 16_384,
    progress: bool = True,
    num_threads: int | None = None,
) -> xr.Dataset:
    """``n`` PROSAIL simulations along ``sample``: the parameters, angles ``tts``,
    ``tto``, ``psi`` (deg), noisy bands B2…B12 (and ``<band>_noiseless`` if
    ``config.keep_noiseless``), ``fcover``, ``fapar``, ``ccc``, ``cwc`` (float32, CF attrs).

    ``num_threads``: torch threads during the simulation (1 is fastest on a busy machine).
    """
    cfg = config or SimulationConfig()
    return _simulate(_s2_batch, n, seed, cfg, batch_size, progress, num_threads)


def simulate_s1(
    n: int,
    seed: int = 0,
    config: SimulationConfig | None = None,
    batch_size: int = 16_384,
    progress: bool = True,
    num_threads: int | None = None,
) -> xr.Dataset:
    """As :func:`simulate_s2` plus soil moisture ``mv`` (m³/m³), roughness ``hrms`` (cm),
    incidence ``theta`` (deg), speckled linear ``VV``/``VH`` (WCM with the simulated LAI)
    and ``ndvi`` from the noisy B8/B4."""
    cfg = config or SimulationConfig()
    return _simulate(_s1_batch, n, seed, cfg, batch_size, progress, num_threads)


def simulate_to_zarr(
    path: str | Path,
    n: int,
    sensor: str = "S2",
    seed: int = 0,
    config: SimulationConfig | None = None,
    batch_size: int = 65_536,
    progress: bool = True,
    num_threads: int | None = None,
) -> Path:
    """Stream ``n`` simulations to a zarr store, holding one batch in memory at a time.

    The store equals ``simulate_s2(n, seed, batch_size=batch_size)`` (or ``simulate_s1``
    for ``sensor="S1"``); open it lazily with ``xr.open_zarr(path)``. ``path`` must not
    exist (nothing is overwritten); Zarr v2 like every store of the package.
    """
    path = Path(path)
    try:
        batch_fn = {"S2": _s2_batch, "S1": _s1_batch}[sensor.upper()]
    except KeyError:
        raise InvalidArgumentError(f"sensor must be 'S2' or 'S1'; got {sensor!r}") from None
    state = {"first": True}

    def sink(ds: xr.Dataset) -> None:
        if state["first"]:
            ds.attrs.update({"seed": seed, "batch_size": batch_size})
            ds.to_zarr(path, mode="w-", zarr_format=ZARR_FORMAT)  # never over a user's path
            state["first"] = False
        else:
            ds.to_zarr(path, append_dim="sample", zarr_format=ZARR_FORMAT)

    cfg = config or SimulationConfig()
    _simulate(batch_fn, n, seed, cfg, batch_size, progress, num_threads, sink)
    return path
