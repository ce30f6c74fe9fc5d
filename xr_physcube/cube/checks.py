"""Checks of a cube's observations before a network sees them, and the hints that
error messages give about missing variables.

:func:`check_observations` (units of each chunk's bands and angles) lives with the
networks it protects, :mod:`xr_physcube.inverse.observations`, and is re-exported here.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from xr_physcube.exceptions import TimeAxisError
from xr_physcube.inverse.observations import (
    ANGLE_SPECS,
    MAX_REFLECTANCE,
    MIN_REFLECTANCE,
    check_observations,
)
from xr_physcube.sensors.sentinel2 import BAND_INFO, BANDS

__all__ = [
    "ANGLE_SPECS", "MAX_REFLECTANCE", "MIN_REFLECTANCE", "check_observations", "datetime_axis",
    "angle_hint", "band_hint", "descriptor_hint", "forcing_hint",
]  # fmt: skip


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
