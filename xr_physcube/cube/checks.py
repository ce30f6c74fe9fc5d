"""Checks of a cube's observations before a network sees them, and the hints that
error messages give about missing variables.

Inverse networks and VAE encoders answer *something* for any input, so units mistakes
(reflectance as digital numbers, backscatter in dB, angles in radians) would give
confident wrong maps. :func:`check_observations` catches them on each chunk, with a
message naming the variable and the conversion to apply. The facts come from their
owners: Sentinel-2 scaling (:mod:`~xr_physcube.sensors.sentinel2`), Sentinel-1 units
(:mod:`~xr_physcube.sensors.sentinel1`) and the angle bounds declared with the forward
models (:mod:`~xr_physcube.models.sail`, :mod:`~xr_physcube.models.sar`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import xarray as xr

from xr_physcube.exceptions import DimensionError, InputUnitsError, OutOfRangeError, TimeAxisError
from xr_physcube.models import sail, sar
from xr_physcube.parameters import ParameterSpec
from xr_physcube.sensors.sentinel1 import POLARISATIONS
from xr_physcube.sensors.sentinel2 import BAND_INFO, BANDS, QUANTIFICATION_VALUE

MAX_REFLECTANCE = 2.0
"""Largest surface reflectance accepted (1). Bright clouds and snow reach ~1.5 in L2A;
digital numbers (0–10000) are far above."""

ANGLE_SPECS: dict[str, ParameterSpec] = {
    "tts": sail.TTS,
    "tto": sail.TTO,
    "psi": sail.PSI,
    "theta": sar.THETA,
}
"""Observation angles (degrees) and their physical bounds."""

_MIN_SUN_ZENITH_RAD = math.pi / 2
"""If every sun zenith of a chunk is at or below this value, the angles are radians:
Sentinel-2's 10:30 overpass never sees the sun within 15° of the zenith."""


def _finite(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def check_observations(x: np.ndarray, names: Sequence[str]) -> None:
    """Raise :class:`InputUnitsError` if the columns of ``x`` (..., len(names)) are in
    wrong units, :class:`OutOfRangeError` if an angle is outside its bounds.

    Checks, on finite values only (NaN = masked): Sentinel-2 bands at most
    :data:`MAX_REFLECTANCE` (else digital numbers); ``VV``/``VH`` not negative (else
    dB); angles within their bounds, in degrees, and a sun zenith ``tts`` that is not
    radians. Other columns (``ndvi``, ``doy``) pass unchecked.
    """
    if x.shape[-1] != len(names):
        raise DimensionError(f"{x.shape[-1]} columns for {len(names)} names {list(names)}")
    for i, name in enumerate(names):
        values = _finite(np.asarray(x[..., i]))
        if values.size == 0:
            continue
        if name in BAND_INFO:
            _check_reflectance(name, values)
        elif name in POLARISATIONS:
            _check_linear_sigma0(name, values)
        elif name in ANGLE_SPECS:
            _check_angle(ANGLE_SPECS[name], values)


def _check_reflectance(name: str, values: np.ndarray) -> None:
    top = float(values.max())
    if top > MAX_REFLECTANCE:
        raise InputUnitsError(
            f"Sentinel-2 band {name} has values up to {top:g}; expected surface reflectance "
            f"(0–1, at most {MAX_REFLECTANCE:g}). Digital numbers (0–{QUANTIFICATION_VALUE:g}) "
            "need the L2A scaling: xr_physcube.sensors.sentinel2.dn_to_reflectance(dn, "
            "processing_baseline), or load with xr_physcube.io.stac.load_s2"
        )


def _check_linear_sigma0(name: str, values: np.ndarray) -> None:
    low = float(values.min())
    if low < 0.0:
        raise InputUnitsError(
            f"Sentinel-1 {name} has negative values (down to {low:g}); expected linear sigma0 "
            "(> 0), not dB: convert with xr_physcube.sensors.sentinel1.db_to_linear"
        )


def _check_angle(spec: ParameterSpec, values: np.ndarray) -> None:
    low, high = float(values.min()), float(values.max())
    if low < spec.lower or high > spec.upper:
        raise OutOfRangeError(
            f"{spec.name} ({spec.long_name}) has values in [{low:g}, {high:g}]; valid range "
            f"is {spec.range_text}"
        )
    if spec.name == "tts" and 0.0 < high <= _MIN_SUN_ZENITH_RAD:
        raise InputUnitsError(
            f"tts (sun zenith) is at most {high:g} in this chunk: that looks like radians; "
            "angles must be in degrees (numpy.degrees)"
        )


def datetime_axis(ds: xr.Dataset, what: str, example: str) -> np.ndarray:
    """The values of ``ds``'s ``time`` dimension, checked to be datetime64.

    ``what`` names the method and what its ``time`` holds, e.g. "grow() needs a daily
    'time' dimension"; ``example`` is a line that would fix a plain-number axis.

    Raises:
        TimeAxisError: no ``time`` dimension, or its values are not dates.
    """
    if "time" not in ds.dims:
        raise TimeAxisError(f"{what}; the Dataset has dims {tuple(ds.dims)}")
    index = ds.indexes.get("time")
    if index is None or not np.issubdtype(index.dtype, np.datetime64):
        raise TimeAxisError(f"{what}: datetime64 values on 'time' are needed, e.g. {example}")
    return np.asarray(index.values)


# ----------------------------------------------------------------------------------------
# Hints for missing variables (appended to MissingVariableError messages)
# ----------------------------------------------------------------------------------------

ANGLE_HINT = (
    "add them as per-date coordinates, e.g. ds.assign_coords(tts=('time', sun_zenith), "
    "tto=('time', view_zenith), psi=('time', relative_azimuth)) (degrees); "
    "xr_physcube.io.stac.load_s2 fills them from the STAC item metadata"
)


def angle_hint(missing: list[str]) -> str:
    angles = [m for m in missing if m in ("tts", "tto", "psi")]
    return f"; no sun/view angles {angles}: {ANGLE_HINT}" if angles else ""


def descriptor_hint(missing: list[str]) -> str:
    return "; the vegetation descriptor is 'lai' or 'ndvi'" if "lai" in missing else ""


def band_hint(missing: list[str]) -> str:
    bands = [m for m in missing if m in BAND_INFO]
    if "ndvi" in missing:
        return "; 'ndvi' is derived from bands B4 and B8 when both are present" + angle_hint(
            missing
        )
    if not bands:
        return angle_hint(missing)
    return (
        f"; missing Sentinel-2 band(s) {bands} (expected surface reflectance variables "
        f"named {list(BANDS)})" + angle_hint(missing)
    )


def forcing_hint(missing: list[str]) -> str:
    return (
        "; name the forcing variables with grow(temperature=..., radiation=...) "
        "(daily mean air temperature in degC, global radiation in MJ m-2 day-1)"
    )
