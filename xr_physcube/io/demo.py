"""An embedded demo cube: a small agricultural scene simulated with the forward models.

No download is needed: a 64 × 64 pixel (10 m) scene near Toulouse with parcels of
maize, wheat, sunflower, grassland and bare soil is drawn deterministically from a
seed; their LAI follows crop-specific double-logistic trajectories over four dates
(April–July). PROSAIL-D convolved with the Sentinel-2A SRFs gives the 10 land bands
(with sensor noise, a cloud and its shadow masked on one date like the L2A SCL would),
and the Water Cloud Model over the Oh soil model gives Sentinel-1 VV/VH with speckle.
The true parameters are returned alongside, so retrievals can be scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import xarray as xr

from xr_physcube.exceptions import InvalidArgumentError
from xr_physcube.io.georef import write_crs
from xr_physcube.models.prosail import PROSAIL_PARAMETERS, Prosail, ProsailParameters
from xr_physcube.sensors.sentinel2 import BAND_INFO, BANDS, SCL_INVALID, Sentinel2Bands
from xr_physcube.vae.seasons import CROPS, double_logistic, sun_zenith_deg
from xr_physcube.validation import positive_int

DEMO_DATES = ("2024-04-10", "2024-05-15", "2024-06-19", "2024-07-24")
DEMO_CRS = "EPSG:32631"
DEMO_ORIGIN = (360_000.0, 4_830_000.0)  # UTM 31N, south-west of Toulouse (43.6° N, 1.1° E)
DEMO_LATITUDE = 43.6
PIXEL_SIZE_M = 10.0

SCL_VEGETATION, SCL_NOT_VEGETATED, SCL_CLOUD_HIGH, SCL_SHADOW = 4, 5, 9, 3


@dataclass
class DemoScene:
    """The observed cube and the truth it was simulated from (both ``xarray.Dataset``)."""

    cube: xr.Dataset
    truth: xr.Dataset


def lai_trajectory(crop: str, doy: np.ndarray) -> np.ndarray:
    """Double-logistic green LAI (m²/m²) of a crop (:data:`CROPS`) on days of year ``doy``."""
    return double_logistic(doy, *CROPS[crop])


def _parcels(size: int, n_parcels: int, rng: np.random.Generator) -> np.ndarray:
    """Voronoi parcel ids (size, size) from random seed points."""
    seeds = rng.uniform(0, size, (n_parcels, 2))
    yy, xx = np.mgrid[0:size, 0:size]
    d2 = (yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2
    return np.argmin(d2, axis=-1)


def _smooth_field(size: int, rng: np.random.Generator, scale: float = 12.0) -> np.ndarray:
    """A smooth random field in [0, 1] (sum of a few random cosines)."""
    yy, xx = np.mgrid[0:size, 0:size] / scale
    f = np.zeros((size, size))
    for _ in range(4):
        k = rng.normal(size=2)
        f += np.cos(k[0] * yy + k[1] * xx + rng.uniform(0, 2 * np.pi))
    return (f - f.min()) / (f.max() - f.min())


def check_demo_size(size: int, chunks: int | None) -> None:
    """:class:`~xr_physcube.exceptions.InvalidArgumentError` unless ``size`` ≥ 2 pixels
    (the texture of one pixel has no spread) and ``chunks`` is None or ≥ 1."""
    if positive_int(size, "size (pixels per side)") < 2:
        raise InvalidArgumentError(f"size (pixels per side) must be at least 2; got {size}")
    if chunks is not None:
        positive_int(chunks, "chunks (pixels per chunk side)")


def demo_scene(size: int = 64, seed: int = 0, chunks: int | None = 32) -> DemoScene:
    """Simulate the demo scene.

    Args:
        size: pixels per side (10 m pixels).
        seed: random seed; the same seed gives the same cube.
        chunks: dask chunk size along y and x (one date per chunk); ``None`` for NumPy.

    Returns:
        :class:`DemoScene` with ``cube`` (dims time, y, x: S2 bands B2…B12 as surface
        reflectance, ``SCL``, S1 ``VV``/``VH`` linear sigma0, ``theta``; angles ``tts``,
        ``tto``, ``psi`` as per-date coordinates) and ``truth`` (lai, cab, cw, cm,
        mv, hrms, crop).

    Raises:
        InvalidArgumentError: ``size`` below 2 or ``chunks`` below 1.
    """
    check_demo_size(size, chunks)
    rng = np.random.default_rng(seed)
    times = pd.DatetimeIndex(DEMO_DATES)
    doy = times.dayofyear.to_numpy().astype(float)
    nt = len(times)
    crop_names = list(CROPS)
    parcels = _parcels(size, 14, rng)
    n_parcels = int(parcels.max()) + 1
    parcel_crop = rng.integers(0, len(crop_names), n_parcels)
    crop = parcel_crop[parcels]  # (y, x)

    # Leaf and soil parameters per parcel, with a little within-parcel texture.
    texture = _smooth_field(size, rng, 6.0) - 0.5
    lai = np.stack([np.zeros((size, size))] * nt)
    for c, name in enumerate(crop_names):
        lai[:, crop == c] = lai_trajectory(name, doy)[:, None]
    lai = np.clip(lai * (1.0 + 0.25 * texture), 0.0, 7.0)
    per_parcel = {
        "cab": rng.uniform(30.0, 60.0, n_parcels),
        "cw": rng.uniform(0.008, 0.02, n_parcels),
        "cm": rng.uniform(0.004, 0.008, n_parcels),
        "rsoil": rng.uniform(0.7, 1.1, n_parcels),
        "ala": rng.uniform(50.0, 65.0, n_parcels),
        "hrms": rng.uniform(0.6, 2.5, n_parcels),
    }
    leaf = {k: np.broadcast_to(v[parcels], (nt, size, size)) for k, v in per_parcel.items()}
    # Soil moisture: a smooth field per date (wet April, drying summer).
    wetness = np.array([0.30, 0.26, 0.18, 0.12])[:nt]
    mv = np.stack([w * (0.75 + 0.5 * _smooth_field(size, rng)) for w in wetness])
    psoil = np.clip(1.0 - (mv - 0.05) / 0.35, 0.0, 1.0)  # dry-soil weight falls with moisture

    tts = sun_zenith_deg(doy, DEMO_LATITUDE)
    tto = rng.uniform(1.0, 8.0, nt)
    psi = rng.uniform(100.0, 160.0, nt)
    grid = (nt, size, size)
    params = {
        "N": np.full(grid, 1.6),
        "cab": leaf["cab"],
        "car": leaf["cab"] / 5.0,
        "cw": leaf["cw"],
        "cm": leaf["cm"],
        "lai": lai,
        "ala": leaf["ala"],
        "hspot": np.full(grid, 0.05),
        "psoil": psoil,
        "rsoil": leaf["rsoil"],
        "tts": np.broadcast_to(tts[:, None, None], grid),
        "tto": np.broadcast_to(tto[:, None, None], grid),
        "psi": np.broadcast_to(psi[:, None, None], grid),
    }
    model = Prosail("D", "campbell", sensor=Sentinel2Bands("S2A"))
    with torch.no_grad():
        tensors = {
            k: torch.as_tensor(np.ascontiguousarray(v), dtype=torch.float32)
            for k, v in params.items()
        }
        refl = model(ProsailParameters(**tensors)).reflectance.numpy()
    # Sensor noise: 2 % multiplicative + 0.003 additive (Weiss & Baret 2016, S2 ATBD).
    refl = refl * (1.0 + 0.02 * rng.standard_normal(refl.shape)) + 0.003 * rng.standard_normal(
        refl.shape
    )
    refl = np.clip(refl, 0.0, 1.0).astype(np.float32)

    # L2A scene classification with a cloud and its shadow on the second date.
    scl = np.where(lai > 0.5, SCL_VEGETATION, SCL_NOT_VEGETATED).astype(np.uint8)
    yy, xx = np.mgrid[0:size, 0:size]
    cloud = (yy - 0.3 * size) ** 2 + (xx - 0.7 * size) ** 2 < (0.15 * size) ** 2
    shadow = (yy - 0.4 * size) ** 2 + (xx - 0.55 * size) ** 2 < (0.12 * size) ** 2
    if nt > 1:
        scl[1][shadow & ~cloud] = SCL_SHADOW
        scl[1][cloud] = SCL_CLOUD_HIGH
    invalid = np.isin(scl, SCL_INVALID)
    refl[invalid] = np.nan

    theta = np.broadcast_to(38.0 + 3.0 * (xx / size)[None], grid).astype(np.float32)
    vv, vh = _sentinel1(mv, per_parcel["hrms"][parcels], theta, lai, rng)

    x = DEMO_ORIGIN[0] + PIXEL_SIZE_M * (np.arange(size) + 0.5)
    y = DEMO_ORIGIN[1] + PIXEL_SIZE_M * size - PIXEL_SIZE_M * (np.arange(size) + 0.5)
    coords = {
        "time": times,
        "y": ("y", y, {"units": "m", "standard_name": "projection_y_coordinate"}),
        "x": ("x", x, {"units": "m", "standard_name": "projection_x_coordinate"}),
        "tts": ("time", tts.astype(np.float32), PROSAIL_PARAMETERS["tts"].attrs()),
        "tto": ("time", tto.astype(np.float32), PROSAIL_PARAMETERS["tto"].attrs()),
        "psi": ("time", psi.astype(np.float32), PROSAIL_PARAMETERS["psi"].attrs()),
    }
    dims = ("time", "y", "x")
    data_vars = {
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
    data_vars["SCL"] = (
        dims,
        scl,
        {"long_name": "L2A scene classification", "flag_values": list(range(12))},
    )
    data_vars["VV"] = (
        dims,
        vv,
        {"long_name": "Sentinel-1 VV backscatter coefficient", "units": "1"},
    )
    data_vars["VH"] = (
        dims,
        vh,
        {"long_name": "Sentinel-1 VH backscatter coefficient", "units": "1"},
    )
    data_vars["theta"] = (
        dims,
        theta,
        {"long_name": "Sentinel-1 local incidence angle", "units": "degree"},
    )
    attrs = {"crs": DEMO_CRS, "title": "xr_physcube demo cube (simulated)", "seed": seed}
    cube = write_crs(xr.Dataset(data_vars, coords=coords, attrs=attrs), DEMO_CRS)

    truth_vars = {
        "lai": (dims, lai.astype(np.float32), PROSAIL_PARAMETERS["lai"].attrs()),
        "cab": (
            dims,
            np.ascontiguousarray(leaf["cab"], np.float32),
            PROSAIL_PARAMETERS["cab"].attrs(),
        ),
        "cw": (
            dims,
            np.ascontiguousarray(leaf["cw"], np.float32),
            PROSAIL_PARAMETERS["cw"].attrs(),
        ),
        "cm": (
            dims,
            np.ascontiguousarray(leaf["cm"], np.float32),
            PROSAIL_PARAMETERS["cm"].attrs(),
        ),
        "mv": (
            dims,
            mv.astype(np.float32),
            {"long_name": "volumetric soil moisture", "units": "m3 m-3"},
        ),
        "crop": (
            ("y", "x"),
            crop.astype(np.int8),
            {"flag_meanings": " ".join(c.replace(" ", "_") for c in crop_names)},
        ),
    }
    truth = xr.Dataset(
        truth_vars, coords={k: cube.coords[k] for k in ("time", "y", "x", "spatial_ref")}
    )
    if chunks:
        cube = cube.chunk({"time": 1, "y": chunks, "x": chunks})
    return DemoScene(cube, truth)


def load_demo(size: int = 64, seed: int = 0, chunks: int | None = 32) -> xr.Dataset:
    """The demo cube only (see :func:`demo_scene`)."""
    return demo_scene(size, seed, chunks).cube


def _sentinel1(mv, hrms, theta, lai, rng):
    """VV/VH linear sigma0 from the Water Cloud Model over Oh, with gamma speckle (ENL 8)."""
    from xr_physcube.models.sar import water_cloud_backscatter

    with torch.no_grad():
        out = water_cloud_backscatter(
            mv=torch.as_tensor(mv, dtype=torch.float32),
            hrms=torch.as_tensor(
                np.ascontiguousarray(np.broadcast_to(hrms, mv.shape)), dtype=torch.float32
            ),
            theta=torch.as_tensor(theta, dtype=torch.float32),
            lai=torch.as_tensor(lai, dtype=torch.float32),
        )
    enl = 8.0
    speckle = lambda: rng.gamma(enl, 1.0 / enl, mv.shape)  # noqa: E731
    return (out.vv.numpy() * speckle()).astype(np.float32), (out.vh.numpy() * speckle()).astype(
        np.float32
    )


__all__ = ["DemoScene", "demo_scene", "lai_trajectory", "load_demo", "sun_zenith_deg"]
