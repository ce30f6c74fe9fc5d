"""The demo season: a 64 × 64 pixel scene through a growing season, S1 and S2 on their
own calendars, and the daily truth (no download).

The parcels and crops of :func:`~xr_physcube.io.demo.demo_scene` (same place, same
CRS), with the seasons of :mod:`xr_physcube.vae.seasons`: double-logistic LAI per parcel
with within-parcel texture, slowly varying leaf traits, rain-driven soil moisture (one
rain series for the scene, soil parameters per parcel). Sentinel-2 every 5 days with
moving clouds (about 40 % of pixel-dates lost, one date fully cloudy), SCL-coded like
an L2A product; Sentinel-1 every 6 days on two alternating orbits with different
incidence angles. PROSAIL runs on a 5 nm grid here (``spectral_step``) to keep the
demo fast; the data-cube benchmark uses 1 nm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from xr_physcube.io.demo import (
    DEMO_CRS,
    DEMO_LATITUDE,
    DEMO_ORIGIN,
    PIXEL_SIZE_M,
    SCL_CLOUD_HIGH,
    SCL_NOT_VEGETATED,
    SCL_VEGETATION,
    _parcels,
    _smooth_field,
    check_demo_size,
)
from xr_physcube.io.georef import write_crs
from xr_physcube.models.prosail import PROSAIL_PARAMETERS
from xr_physcube.sensors.sentinel1 import db_to_linear
from xr_physcube.sensors.sentinel2 import BAND_INFO, BANDS
from xr_physcube.vae.model import latent_spec
from xr_physcube.vae.seasons import (
    CROPS,
    S1_ORBIT_INCIDENCE_DEG,
    S1_REVISIT_DAYS,
    S2_REVISIT_DAYS,
    SEASON_DAYS,
    SEASON_START,
    TRUTH_NAMES,
    calendar,
    daily_rain,
    daily_truth,
    draw_fields,
    simulate_s1,
    simulate_s2,
    sun_zenith_deg,
)


@dataclass
class DemoSeason:
    """``s2`` (time, y, x) S2 cube, ``s1`` (time, y, x) S1 cube on its own dates,
    ``truth`` (time, y, x) daily truth of every latent, plus ``crop`` (y, x)."""

    s2: xr.Dataset
    s1: xr.Dataset
    truth: xr.Dataset


def _clouds(size: int, n_dates: int, rng: np.random.Generator, fraction: float) -> np.ndarray:
    """Cloud masks (T, y, x): a smooth random field per date thresholded to a random
    cover around ``fraction``; the date nearest the middle of the season fully cloudy."""
    cover = np.clip(rng.normal(fraction, 0.3, n_dates), 0.0, 1.0)
    masks = np.stack([_smooth_field(size, rng, 10.0) < c for c in cover])
    masks[n_dates // 2] = True
    return masks


def demo_season(
    size: int = 64, seed: int = 0, chunks: int | None = 32, spectral_step: int = 5
) -> DemoSeason:
    """Simulate the demo season (module docstring); the same seed gives the same cubes.
    ``size`` ≥ 2 pixels per side, ``chunks`` ≥ 1 or None (else ``InvalidArgumentError``)."""
    check_demo_size(size, chunks)
    rng = np.random.default_rng(seed)
    n_days = SEASON_DAYS
    days = pd.date_range(pd.Timestamp(SEASON_START), periods=n_days, freq="D")
    doy = days.dayofyear.to_numpy().astype(float)
    parcels = _parcels(size, 14, rng)
    n_parcels = int(parcels.max()) + 1
    fields = draw_fields(n_parcels, rng)
    pix = {k: v[parcels.ravel()] for k, v in fields.items()}
    texture = 1.0 + 0.25 * (_smooth_field(size, rng, 6.0).ravel() - 0.5)
    truth = daily_truth(pix, doy, daily_rain(1, n_days, rng), lai_texture=texture)
    n = size * size
    s2_day = calendar(n_days, S2_REVISIT_DAYS, 2)
    s1_day = calendar(n_days, S1_REVISIT_DAYS, 4)
    t2 = len(s2_day)
    tts = sun_zenith_deg(doy[s2_day], DEMO_LATITUDE)
    tto, psi = rng.uniform(1.0, 8.0, t2), rng.uniform(100.0, 160.0, t2)
    angles = np.broadcast_to(np.stack([tts, tto, psi], -1), (n, t2, 3)).astype(np.float32)
    refl = simulate_s2(truth, s2_day, angles, rng, spectral_step)  # (n, T2, 10)
    cloudy = _clouds(size, t2, rng, 0.45)
    lai_s2 = truth["lai"][:, s2_day].T.reshape(t2, size, size)
    scl = np.where(lai_s2 > 0.5, SCL_VEGETATION, SCL_NOT_VEGETATED).astype(np.uint8)
    scl[cloudy] = SCL_CLOUD_HIGH
    refl = refl.transpose(1, 0, 2).reshape(t2, size, size, 10)
    refl[cloudy] = np.nan
    xx = np.tile(np.arange(size), size) / size
    (lo_a, hi_a), (lo_d, hi_d) = S1_ORBIT_INCIDENCE_DEG
    orbit = np.stack([lo_a + (hi_a - lo_a) * xx, lo_d + (hi_d - lo_d) * (1 - xx)], -1)
    theta = orbit[:, np.arange(len(s1_day)) % 2].astype(np.float32)  # (n, T1)
    s1 = db_to_linear(simulate_s1(truth, s1_day, theta, rng)).astype(np.float32)
    t1 = len(s1_day)
    s1 = s1.transpose(1, 0, 2).reshape(t1, size, size, 2)

    x = DEMO_ORIGIN[0] + PIXEL_SIZE_M * (np.arange(size) + 0.5)
    y = DEMO_ORIGIN[1] + PIXEL_SIZE_M * size - PIXEL_SIZE_M * (np.arange(size) + 0.5)
    space = {
        "y": ("y", y, {"units": "m", "standard_name": "projection_y_coordinate"}),
        "x": ("x", x, {"units": "m", "standard_name": "projection_x_coordinate"}),
    }
    dims = ("time", "y", "x")
    attrs = {"crs": DEMO_CRS, "seed": seed}
    s2_vars = {
        b: (
            dims,
            refl[..., i],
            {
                "long_name": f"Sentinel-2 {b} surface reflectance",
                "units": "1",
                "central_wavelength_nm": BAND_INFO[b].central_wavelength_nm,
            },
        )
        for i, b in enumerate(BANDS)
    }
    s2_vars["SCL"] = (dims, scl, {"long_name": "L2A scene classification"})
    s2_coords = {
        "time": days[s2_day], **space,
        "tts": ("time", tts.astype(np.float32), PROSAIL_PARAMETERS["tts"].attrs()),
        "tto": ("time", tto.astype(np.float32), PROSAIL_PARAMETERS["tto"].attrs()),
        "psi": ("time", psi.astype(np.float32), PROSAIL_PARAMETERS["psi"].attrs()),
    }  # fmt: skip
    s2 = xr.Dataset(s2_vars, s2_coords, {**attrs, "title": "xr_physcube demo season, Sentinel-2"})
    theta_grid = theta.T.reshape(t1, size, size)
    s1_vars = {
        "VV": (
            dims,
            s1[..., 0],
            {"long_name": "Sentinel-1 VV backscatter coefficient", "units": "1"},
        ),
        "VH": (
            dims,
            s1[..., 1],
            {"long_name": "Sentinel-1 VH backscatter coefficient", "units": "1"},
        ),
        "theta": (dims, theta_grid, {"long_name": "Sentinel-1 incidence angle", "units": "degree"}),
    }
    s1_ds = xr.Dataset(s1_vars, {"time": days[s1_day], **space},
                       {**attrs, "title": "xr_physcube demo season, Sentinel-1"})  # fmt: skip
    truth_vars = {
        k: (dims, truth[k].T.reshape(n_days, size, size), latent_spec(k).attrs())
        for k in TRUTH_NAMES
    }
    truth_vars["crop"] = (
        ("y", "x"), pix["crop"].reshape(size, size).astype(np.int8),
        {"flag_meanings": " ".join(c.replace(" ", "_") for c in CROPS)},
    )  # fmt: skip
    truth_ds = xr.Dataset(truth_vars, {"time": days, **space}, attrs)
    s2, s1_ds, truth_ds = (write_crs(ds, DEMO_CRS) for ds in (s2, s1_ds, truth_ds))
    if chunks:
        s2 = s2.chunk({"time": -1, "y": chunks, "x": chunks})
        s1_ds = s1_ds.chunk({"time": -1, "y": chunks, "x": chunks})
    return DemoSeason(s2, s1_ds, truth_ds)


__all__ = ["DemoSeason", "demo_season"]
