"""Sentinel-1 C-SAR: frequency, polarisations, IW incidence range and dB conversion.

This module is the one place that owns these facts; the radar models
(:mod:`xr_physcube.models.sar`) and the data-cube code import them.

Sources: ESA, *Sentinel-1 User Handbook* (GMES-S1OP-EOPG-TN-13-0001, 2013) and the
Sentinel-1 SAR technical guide: centre frequency 5.405 GHz (C band); Interferometric
Wide swath (IW) mode covers incidence angles 29.1°–46.0°; GRD products over land are
dual-polarised VV+VH. Backscatter variables are linear sigma0 (``"VV"``, ``"VH"``);
the incidence angle variable is ``"theta"`` (degrees).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from xr_physcube.exceptions import InvalidArgumentError

FREQUENCY_GHZ = 5.405
"""Sentinel-1 C-SAR centre frequency (GHz)."""
SPEED_OF_LIGHT_M_S = 299_792_458.0
WAVELENGTH_CM = SPEED_OF_LIGHT_M_S / (FREQUENCY_GHZ * 1e9) * 100.0
"""Radar wavelength (cm), ≈ 5.547 cm."""
WAVENUMBER_CM = 2.0 * math.pi / WAVELENGTH_CM
"""Free-space wavenumber k = 2π/λ (cm⁻¹), ≈ 1.133 cm⁻¹; ``k * hrms`` is the roughness ks."""

POLARISATIONS: tuple[str, ...] = ("VV", "VH")
"""Polarisations of IW GRD products over land (co-pol VV, cross-pol VH)."""
IW_INCIDENCE_RANGE_DEG: tuple[float, float] = (29.1, 46.0)
"""Incidence angles (deg) covered by the IW swath, near to far range (S1 User Handbook)."""
EW_INCIDENCE_RANGE_DEG: tuple[float, float] = (18.9, 47.0)
"""Incidence angles (deg) covered by the Extra Wide swath mode."""


def check_polarisations(pols: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Validate polarisation names against :data:`POLARISATIONS` (case-insensitive)."""
    out = tuple(str(p).upper() for p in pols)
    unknown = [p for p in out if p not in POLARISATIONS]
    if unknown:
        raise InvalidArgumentError(
            f"unknown Sentinel-1 polarisation(s) {unknown}; valid: {POLARISATIONS}"
        )
    return out


def in_iw_range(theta_deg, margin_deg: float = 0.0):
    """Boolean mask: incidence angle within the IW range (± ``margin_deg``)."""
    lo, hi = IW_INCIDENCE_RANGE_DEG
    if isinstance(theta_deg, torch.Tensor):
        return (theta_deg >= lo - margin_deg) & (theta_deg <= hi + margin_deg)
    theta = np.asarray(theta_deg)
    return (theta >= lo - margin_deg) & (theta <= hi + margin_deg)


DB_FLOOR = 1e-5
"""Smallest linear sigma0 converted to dB (1e-5, i.e. −50 dB): far below the IW noise
floor (NESZ ≈ −22 dB, S1 User Handbook), so no measurement is clamped, while a modelled
sigma0 of 0 (no vegetation or soil return) gives a finite −50 dB instead of ``-inf``."""


def linear_to_db(x, floor: float | None = DB_FLOOR, *, mask_invalid: bool = False):
    """Linear power (sigma0, m²/m²) to decibels, ``10 log10(max(x, floor))``.

    The package's one dB conversion. Works on tensors (differentiable; dtype/device
    preserved), NumPy arrays and floats.

    Args:
        x: linear sigma0 (m²/m²).
        floor: values below it are clamped to it first (:data:`DB_FLOOR`, −50 dB);
            ``None``: no clamp (0 gives ``-inf``).
        mask_invalid: observations: a value ≤ 0 is no measurement (a field or pixel
            without valid looks) and gives NaN instead of the floor.
    """
    if isinstance(x, torch.Tensor):
        y = x if floor is None else x.clamp_min(floor)
        if mask_invalid:
            y = torch.where(x > 0, y, torch.full_like(y, float("nan")))
        return 10.0 * torch.log10(y)
    arr = np.asarray(x, dtype=float) if not isinstance(x, np.ndarray) else x
    y = arr if floor is None else np.maximum(arr, floor)
    if mask_invalid:
        y = np.where(arr > 0, y, np.nan)
    out = 10.0 * np.log10(y)
    return float(out) if np.ndim(out) == 0 and not isinstance(x, np.ndarray) else out


def db_to_linear(x):
    """Decibels to linear power, ``10 ** (x / 10)`` (tensors, arrays or floats)."""
    if isinstance(x, torch.Tensor):
        return torch.pow(10.0, x / 10.0)
    arr = np.asarray(x, dtype=float) if not isinstance(x, np.ndarray) else x
    out = np.power(10.0, arr / 10.0)
    return float(out) if np.ndim(out) == 0 and not isinstance(x, np.ndarray) else out
