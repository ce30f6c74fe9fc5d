"""Unit checks of the observations an inverse network or a VAE encoder sees.

Networks answer *something* for any input, so units mistakes (reflectance as digital
numbers, backscatter in dB, angles in radians) would give confident wrong maps.
:func:`check_observations` catches them, on a cube's chunk (NumPy) or on the rows given
to :meth:`~xr_physcube.inverse.nets.InverseModel.predict` (torch), with a message naming
the variable and the conversion to apply. The facts come from their owners: Sentinel-2
scaling (:mod:`~xr_physcube.sensors.sentinel2`), Sentinel-1 units
(:mod:`~xr_physcube.sensors.sentinel1`) and the angle bounds declared with the forward
models (:mod:`~xr_physcube.models.sail`, :mod:`~xr_physcube.models.sar`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from xr_physcube.exceptions import DimensionError, InputUnitsError, OutOfRangeError
from xr_physcube.models import sail, sar
from xr_physcube.parameters import ParameterSpec
from xr_physcube.sensors.sentinel1 import POLARISATIONS
from xr_physcube.sensors.sentinel2 import (
    BAND_INFO,
    BOA_ADD_OFFSET_PB0400,
    QUANTIFICATION_VALUE,
)
from xr_physcube.validation import check_real

MAX_REFLECTANCE = 2.0
"""Largest surface reflectance accepted (1). Bright clouds and snow reach ~1.5 in L2A;
digital numbers (0–10000) are far above."""

MIN_REFLECTANCE = BOA_ADD_OFFSET_PB0400 / QUANTIFICATION_VALUE
"""Smallest surface reflectance accepted (1): -0.1, the lowest value L2A can encode (DN 1
with the offset of processing baseline 04.00). Dark water and shadows give slightly
negative values; anything lower is not a reflectance."""

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


def _column_ranges(x: np.ndarray | torch.Tensor, columns: list[int]) -> list:
    """(min, max) of the finite values of each of ``columns`` of ``x`` (..., n), None for
    a column without any. Torch: the columns are copied once to rows (reductions along
    contiguous memory are ~10x faster than down the columns of a row-major array), then
    a min and a max per column; NumPy (a cube's chunk): one column at a time (bounded
    temporaries)."""
    if isinstance(x, torch.Tensor):
        part = x.detach().reshape(-1, x.shape[-1])
        if part.shape[0] == 0:
            return [None] * len(columns)
        part = part.T if columns == list(range(part.shape[1])) else part.T[columns]
        if part.stride(-1) != 1:
            part = part.contiguous()  # (columns, rows), each row contiguous
        lo, hi = part.amin(1), part.amax(1)  # NaN/inf propagate: such columns are redone
        out = []
        for i, (a, b) in enumerate(zip(lo.tolist(), hi.tolist(), strict=True)):
            if not (math.isfinite(a) and math.isfinite(b)):
                values = part[i][torch.isfinite(part[i])]
                a, b = (values.min().item(), values.max().item()) if values.numel() else (None,) * 2
            out.append(None if a is None else (a, b))
        return out
    out = []
    for i in columns:
        values = x[..., i][np.isfinite(x[..., i])]
        out.append((float(values.min()), float(values.max())) if values.size else None)
    return out


def check_observations(x: np.ndarray | torch.Tensor, names: Sequence[str]) -> None:
    """Raise :class:`InputUnitsError` if the columns of ``x`` (..., len(names)) are in
    wrong units, :class:`OutOfRangeError` if an angle is outside its bounds,
    :class:`~xr_physcube.exceptions.InputDtypeError` for complex or non-numeric data.

    Checks, on finite values only (NaN = masked): Sentinel-2 bands within
    [:data:`MIN_REFLECTANCE`, :data:`MAX_REFLECTANCE`] (above: digital numbers);
    ``VV``/``VH`` not negative (else dB); angles within their bounds, in degrees, and a
    sun zenith ``tts`` that is not radians. Other columns (``ndvi``, ``doy``) pass
    unchecked.
    """
    check_real("observations", x)
    if x.shape[-1] != len(names):
        raise DimensionError(f"{x.shape[-1]} columns for {len(names)} names {list(names)}")
    checked = [
        i for i, n in enumerate(names) if n in BAND_INFO or n in POLARISATIONS or n in ANGLE_SPECS
    ]
    for i, found in zip(checked, _column_ranges(x, checked), strict=True):
        name = names[i]
        if found is None:
            continue
        if name in BAND_INFO:
            _check_reflectance(name, *found)
        elif name in POLARISATIONS:
            _check_linear_sigma0(name, found[0])
        else:
            _check_angle(ANGLE_SPECS[name], *found)


def _check_reflectance(name: str, low: float, top: float) -> None:
    if top > MAX_REFLECTANCE:
        raise InputUnitsError(
            f"Sentinel-2 band {name} has values up to {top:g}; expected surface reflectance "
            f"(0–1, at most {MAX_REFLECTANCE:g}). Digital numbers (0–{QUANTIFICATION_VALUE:g}) "
            "need the L2A scaling: xr_physcube.sensors.sentinel2.dn_to_reflectance(dn, "
            "processing_baseline), or load with xr_physcube.io.stac.load_s2"
        )
    if low < MIN_REFLECTANCE:
        raise InputUnitsError(
            f"Sentinel-2 band {name} has values down to {low:g}; surface reflectance is at "
            f"least {MIN_REFLECTANCE:g} (the lowest L2A value). Is the band in dB, or was "
            "the L2A offset applied twice?"
        )


def _check_linear_sigma0(name: str, low: float) -> None:
    if low < 0.0:
        raise InputUnitsError(
            f"Sentinel-1 {name} has negative values (down to {low:g}); expected linear sigma0 "
            "(> 0), not dB: convert with xr_physcube.sensors.sentinel1.db_to_linear"
        )


def _check_angle(spec: ParameterSpec, low: float, high: float) -> None:
    if low < spec.lower or high > spec.upper:
        raise OutOfRangeError(
            f"{spec.name} ({spec.long_name}) has values in [{low:g}, {high:g}]; valid range "
            f"is {spec.range_text}"
        )
    if spec.name == "tts" and 0.0 < high <= _MIN_SUN_ZENITH_RAD:
        raise InputUnitsError(
            f"tts (sun zenith) is at most {high:g} in these observations: that looks like radians; "
            "angles must be in degrees (numpy.degrees)"
        )


__all__ = ["ANGLE_SPECS", "MAX_REFLECTANCE", "MIN_REFLECTANCE", "check_observations"]
