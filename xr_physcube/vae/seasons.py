"""Simulated growing seasons: daily truth, then Sentinel-1/2 on their own calendars.

The training and test data of the data-cube VAE (:mod:`xr_physcube.vae.datacube`) and
the demo season (:func:`xr_physcube.io.demo_season.demo_season`). NumPy and the forward
models only (no xarray).

Daily truth per pixel:

* green LAI (m²/m²): a double logistic with crop-specific timing (Zhang et al. 2003,
  *Monitoring vegetation phenology using MODIS*, RSE 84:471–475), jittered per field
  (:data:`CROPS` gives the means);
* leaf traits vary slowly: chlorophyll Cab follows a slow sinusoid (period 120–300 d)
  around its field value, the other PROSAIL inputs drift linearly by ≤ 10 % a season;
* soil moisture mv (m³/m³): a bucket driven by daily rain (wet-day probability 0.25,
  exponential amounts of mean 7 mm): each rain refills towards saturation, then it
  dries exponentially towards its residual value with a 4–15 day time constant (the
  dry-down of Koster et al. 2009 / McColl et al. 2017, *The global distribution and
  dynamics of surface soil moisture*, Nature Geoscience 10:100–104); the dry-soil
  weight of PROSAIL's soil, psoil, falls as mv rises.

Observations: Sentinel-2 every :data:`S2_REVISIT_DAYS` days (PROSAIL-D + S2A SRFs + the
L2A noise of :class:`~xr_physcube.inverse.simulate.S2Noise`), lost under clouds that
persist from one acquisition to the next (:func:`cloud_mask`); Sentinel-1 every
:data:`S1_REVISIT_DAYS` days (Water Cloud Model over Oh, gamma speckle), alternating
two orbits with different incidence angles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from xr_physcube.inverse.simulate import S2Noise
from xr_physcube.models.prosail import PROSAIL_PARAMETERS, Prosail, ProsailParameters
from xr_physcube.models.sar import water_cloud_backscatter
from xr_physcube.sensors.sentinel1 import linear_to_db
from xr_physcube.sensors.sentinel2 import Sentinel2Bands

SEASON_START = np.datetime64("2024-03-01")
SEASON_DAYS = 184
"""The default season: 1 March to 31 August (184 daily truth steps)."""
S2_REVISIT_DAYS = 5
"""Sentinel-2A + 2B revisit at mid latitudes (days)."""
S1_REVISIT_DAYS = 6
"""Sentinel-1 revisit of one relative orbit pair (days); the two orbits alternate."""
S1_ORBIT_INCIDENCE_DEG = ((30.0, 36.0), (40.0, 45.0))
"""Incidence-angle ranges (deg) of the two orbits seen by a pixel (near and far swath)."""
SPECKLE_LOOKS = 8.0
"""Equivalent number of looks of the simulated S1 speckle (a gamma multiplicative noise)."""

CROPS: dict[str, tuple[float, float, float, float, float]] = {
    "maize": (4.8, 165.0, 245.0, 9.0, 10.0),
    "wheat": (5.2, 95.0, 160.0, 10.0, 7.0),
    "sunflower": (3.2, 160.0, 215.0, 8.0, 8.0),
    "grassland": (2.6, 60.0, 320.0, 15.0, 15.0),
    "bare soil": (0.15, 60.0, 320.0, 15.0, 15.0),
}
"""Mean LAI trajectory per crop: (LAI max, green-up DOY, senescence DOY, slope up,
slope down (days)) of :func:`double_logistic`; the south-west France calendar."""

LEAF_RANGES: dict[str, tuple[float, float]] = {
    "cab": (25.0, 70.0),
    "cw": (0.006, 0.03),
    "cm": (0.003, 0.011),
    "N": (1.3, 2.0),
    "ala": (40.0, 70.0),
    "rsoil": (0.6, 1.3),
    "hrms": (0.5, 2.5),
    "hspot": (0.1, 0.4),
    "cbrown": (0.0, 0.4),
}
"""Field values of the traits (uniform draws); all inside the data-cube VAE's boxes
(:data:`xr_physcube.vae.model.LATENT_RANGES`)."""
TRUTH_NAMES: tuple[str, ...] = (
    "lai", "cab", "cw", "cm", "N", "ala", "psoil", "rsoil", "mv", "hrms",
    "car", "hspot", "cbrown",
)  # fmt: skip
"""Daily truth variables: every PROSAIL and soil input the observations depend on."""


def double_logistic(doy, lmax, up, down, s_up, s_down):
    """Green LAI (m²/m²) on days of year ``doy``:
    ``lmax (σ((doy - up) / s_up) - σ((doy - down) / s_down))``."""
    return lmax * (
        1.0 / (1.0 + np.exp(-(doy - up) / s_up)) - 1.0 / (1.0 + np.exp(-(doy - down) / s_down))
    )


def draw_fields(n: int, rng: np.random.Generator, crop: np.ndarray | None = None) -> dict:
    """Season parameters of ``n`` fields: crop index (into :data:`CROPS`), jittered
    phenology, trait values and drifts, soil-water parameters; arrays of shape (n,)."""
    names = list(CROPS)
    if crop is None:
        crop = rng.integers(0, len(names), n)
    table = np.array([CROPS[c] for c in names])[crop]
    f = {
        "crop": crop,
        "lmax": table[:, 0] * rng.uniform(0.6, 1.3, n),
        "up": table[:, 1] + rng.uniform(-20.0, 20.0, n),
        "down": table[:, 2] + rng.uniform(-20.0, 20.0, n),
        "s_up": table[:, 3] * rng.uniform(0.6, 1.4, n),
        "s_down": table[:, 4] * rng.uniform(0.6, 1.4, n),
    }
    f["lmax"] = np.clip(f["lmax"], 0.05, 7.5)
    for k, (lo, hi) in LEAF_RANGES.items():
        f[k] = rng.uniform(lo, hi, n)
        f[f"{k}_drift"] = rng.uniform(-0.1, 0.1, n)  # relative change over the season
    f["cab_amp"] = rng.uniform(0.0, 12.0, n)
    f["cab_period"] = rng.uniform(120.0, 300.0, n)
    f["cab_phase"] = rng.uniform(0.0, 2 * np.pi, n)
    f["car_ratio"] = rng.uniform(0.15, 0.25, n)
    f["mv_res"] = rng.uniform(0.04, 0.10, n)
    f["mv_sat"] = rng.uniform(0.32, 0.44, n)
    f["tau"] = rng.uniform(4.0, 15.0, n)
    return f


def daily_rain(n: int, n_days: int, rng: np.random.Generator, wet_prob: float = 0.25):
    """Daily rain (mm), (n, n_days): wet days with probability ``wet_prob``, exponential
    amounts of mean 7 mm."""
    wet = rng.random((n, n_days)) < wet_prob
    return np.where(wet, rng.exponential(7.0, (n, n_days)), 0.0)


def bucket_moisture(rain, mv_res, mv_sat, tau, mv0=None):
    """Daily surface soil moisture (m³/m³), (n, D), from rain (mm) (n or 1, D).

    Each day dries exponentially towards ``mv_res`` with time constant ``tau`` (days),
    then rain fills the remaining storage: ``mv += (mv_sat - mv) min(1, rain / 20 mm)``.
    """
    n, n_days = len(mv_res), rain.shape[-1]
    rain = np.broadcast_to(rain, (n, n_days))
    mv = np.empty((n, n_days))
    cur = 0.5 * (mv_res + mv_sat) if mv0 is None else mv0
    decay = np.exp(-1.0 / tau)
    for d in range(n_days):
        cur = mv_res + (cur - mv_res) * decay
        cur = cur + (mv_sat - cur) * np.minimum(1.0, rain[:, d] / 20.0)
        mv[:, d] = cur
    return mv


def daily_truth(fields: dict, doy: np.ndarray, rain: np.ndarray, lai_texture=1.0) -> dict:
    """Daily truth (n, D) of :data:`TRUTH_NAMES` from :func:`draw_fields` on days of year
    ``doy`` (D,), with ``rain`` (mm, (n or 1, D)); ``lai_texture`` scales LAI per pixel."""
    col = {k: np.asarray(v, dtype=float)[:, None] for k, v in fields.items()}
    frac = (doy - doy[0]) / max(doy[-1] - doy[0], 1.0)  # 0 -> 1 over the season
    lai = double_logistic(doy, col["lmax"], col["up"], col["down"], col["s_up"], col["s_down"])
    out = {"lai": np.clip(lai * np.asarray(lai_texture)[..., None], 0.0, 7.9)}
    for k in LEAF_RANGES:
        lo, hi = LEAF_RANGES[k]
        out[k] = np.clip(col[k] * (1.0 + col[f"{k}_drift"] * frac), lo, hi)
    wave = col["cab_amp"] * np.sin(2 * np.pi * doy / col["cab_period"] + col["cab_phase"])
    out["cab"] = np.clip(out["cab"] + wave, 15.0, 85.0)
    out["car"] = np.clip(out["cab"] * col["car_ratio"], 4.0, 16.0)
    out["mv"] = bucket_moisture(rain, fields["mv_res"], fields["mv_sat"], fields["tau"])
    out["psoil"] = np.clip(1.0 - (out["mv"] - 0.05) / 0.35, 0.0, 1.0)
    return {k: out[k].astype(np.float32) for k in TRUTH_NAMES}


def calendar(n_days: int, revisit: int, phase: int) -> np.ndarray:
    """Acquisition days (indices into the daily truth) every ``revisit`` days from ``phase``."""
    return np.arange(phase % revisit, n_days, revisit)


def cloud_mask(shape: tuple[int, int], rng, cloud_fraction: float = 0.4, persistence=0.5):
    """Cloudy acquisitions (n, T) bool: a two-state Markov chain per pixel series whose
    stationary cloudy fraction is ``cloud_fraction`` and whose probability of repeating
    the previous state beyond chance is ``persistence`` (0: independent dates)."""
    n, t = shape
    p = np.broadcast_to(np.asarray(cloud_fraction, dtype=float), (n,))
    cloudy = np.empty((n, t), dtype=bool)
    cloudy[:, 0] = rng.random(n) < p
    for i in range(1, t):
        keep = rng.random(n) < persistence
        cloudy[:, i] = np.where(keep, cloudy[:, i - 1], rng.random(n) < p)
    return cloudy


def sun_zenith_deg(doy, latitude: float, hour_angle_deg: float = -8.0):
    """Solar zenith angle (deg) from Cooper's declination; S2 passes ~10:30 local solar time."""
    decl = np.radians(23.44) * np.sin(2.0 * np.pi * (284.0 + np.asarray(doy)) / 365.0)
    lat, h = np.radians(latitude), np.radians(hour_angle_deg)
    cos_z = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(h)
    return np.degrees(np.arccos(cos_z))


def simulate_s2(truth: dict, days: np.ndarray, angles: np.ndarray, rng, spectral_step=1):
    """Noisy S2 surface reflectance (n, T, 10) at truth indices ``days`` (T,), sun/view
    angles ``angles`` (n, T, 3) tts, tto, psi (deg); PROSAIL-D, L2A noise."""
    n, t = angles.shape[:2]
    p = {k: truth[k][:, days].reshape(-1) for k in PROSAIL_PARAMETERS if k in truth}
    p.update(tts=angles[..., 0].reshape(-1), tto=angles[..., 1].reshape(-1))
    p["psi"] = angles[..., 2].reshape(-1)
    model = Prosail(
        "D", "campbell", sensor=Sentinel2Bands(spectral_step=spectral_step),
        validate=False, spectral_step=spectral_step,
    )  # fmt: skip
    out = np.empty((n * t, 10), np.float32)
    step = 50_000
    with torch.no_grad():
        for i in range(0, n * t, step):
            chunk = {
                k: torch.as_tensor(np.ascontiguousarray(v[i : i + step]), dtype=torch.float32)
                for k, v in p.items()
            }
            out[i : i + step] = model(ProsailParameters(**chunk)).reflectance.numpy()
    refl = S2Noise().apply(out.astype(np.float64), rng)
    return np.clip(refl, 0.0, 1.0).reshape(n, t, 10).astype(np.float32)


def simulate_s1(truth: dict, days: np.ndarray, theta: np.ndarray, rng, looks=SPECKLE_LOOKS):
    """S1 VV, VH in dB (n, T, 2) at truth indices ``days`` with incidence ``theta`` (n, T)
    (deg): Water Cloud Model over Oh with gamma speckle of ``looks`` looks."""
    f = lambda k: torch.as_tensor(np.ascontiguousarray(truth[k][:, days]))  # noqa: E731
    with torch.no_grad():
        sar = water_cloud_backscatter(
            mv=f("mv"), hrms=f("hrms"), theta=torch.as_tensor(theta, dtype=torch.float32),
            lai=f("lai"), validate=False,
        )  # fmt: skip
    s1 = np.stack([sar.vv.numpy(), sar.vh.numpy()], -1)
    s1 = s1 * rng.gamma(looks, 1.0 / looks, s1.shape)
    return linear_to_db(s1).astype(np.float32)


@dataclass
class SimulatedSeasons:
    """Seasons of ``n`` pixels: daily ``truth`` (name -> (n, D)), S2 reflectance
    ``s2`` (n, T2, 10) at truth indices ``s2_day`` with ``s2_cloudy`` (n, T2) and angles
    ``s2_angles`` (n, T2, 3) tts, tto, psi; S1 ``s1_db`` (n, T1, 2) VV, VH at ``s1_day``
    with incidence ``s1_theta`` (n, T1); ``start`` the date of truth index 0 and ``crop``
    (n,) indices into :data:`CROPS`. ``s2`` holds the clear-sky values under clouds too
    (training re-draws clouds); mask with ``s2_cloudy`` to observe."""

    start: np.datetime64
    truth: dict[str, np.ndarray]
    crop: np.ndarray
    s2_day: np.ndarray
    s2: np.ndarray
    s2_cloudy: np.ndarray
    s2_angles: np.ndarray
    s1_day: np.ndarray
    s1_db: np.ndarray
    s1_theta: np.ndarray

    def __len__(self) -> int:
        return self.s2.shape[0]

    @property
    def doy(self) -> np.ndarray:
        """Day of year of each daily truth step (D,)."""
        n_days = next(iter(self.truth.values())).shape[1]
        dates = self.start + np.arange(n_days).astype("timedelta64[D]")
        return (dates - dates.astype("datetime64[Y]")).astype(int) + 1.0

    def s2_observed(self) -> np.ndarray:
        """S2 reflectance with the cloudy acquisitions set to NaN."""
        return np.where(self.s2_cloudy[..., None], np.nan, self.s2).astype(np.float32)


def simulate_seasons(
    n: int,
    seed: int = 0,
    *,
    start: np.datetime64 | str = SEASON_START,
    n_days: int = SEASON_DAYS,
    cloud_fraction: float | tuple[float, float] = 0.4,
    spectral_step: int = 1,
    latitude: float | tuple[float, float] = (40.0, 50.0),
) -> SimulatedSeasons:
    """``n`` independent pixel seasons (see the module docstring).

    Args:
        cloud_fraction: cloudy fraction of S2 acquisitions, or a (lo, hi) range drawn
            per pixel.
        spectral_step: PROSAIL spectral step (nm) of the S2 simulation (1: full resolution).
        latitude: degrees north (a range: drawn per pixel) for the solar zenith.
    """
    rng = np.random.default_rng(seed)
    start = np.datetime64(start, "D")
    doy = ((start - start.astype("datetime64[Y]")).astype(int) + 1.0) + np.arange(n_days)
    fields = draw_fields(n, rng)
    truth = daily_truth(fields, doy, daily_rain(n, n_days, rng))
    s2_day = calendar(n_days, S2_REVISIT_DAYS, int(rng.integers(0, S2_REVISIT_DAYS)))
    s1_day = calendar(n_days, S1_REVISIT_DAYS, int(rng.integers(0, S1_REVISIT_DAYS)))
    lat = rng.uniform(*latitude, (n, 1)) if isinstance(latitude, tuple) else latitude
    t2 = len(s2_day)
    angles = np.stack(
        [
            np.broadcast_to(sun_zenith_deg(doy[s2_day], lat), (n, t2)),
            rng.uniform(0.0, 10.0, (n, t2)),
            rng.uniform(0.0, 180.0, (n, t2)),
        ],
        -1,
    ).astype(np.float32)
    s2 = simulate_s2(truth, s2_day, angles, rng, spectral_step)
    frac = rng.uniform(*cloud_fraction, n) if isinstance(cloud_fraction, tuple) else cloud_fraction
    cloudy = cloud_mask((n, t2), rng, frac)
    orbit_theta = np.stack([rng.uniform(lo, hi, n) for lo, hi in S1_ORBIT_INCIDENCE_DEG], -1)
    theta = orbit_theta[:, np.arange(len(s1_day)) % 2].astype(np.float32)
    s1 = simulate_s1(truth, s1_day, theta, rng)
    return SimulatedSeasons(
        start, truth, fields["crop"], s2_day, s2, cloudy, angles, s1_day, s1, theta
    )
