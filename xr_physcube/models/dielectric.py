"""Microwave dielectric constant of moist soil (relative permittivity ε = ε' − jε'').

Two published models, batched and differentiable in PyTorch:

* :func:`hallikainen` — empirical quadratic polynomials in volumetric moisture with
  texture-dependent coefficients, Hallikainen, Ulaby, Dobson, El-Rayes & Wu (1985),
  *Microwave dielectric behavior of wet soil — Part I: Empirical models and
  experimental observations*, IEEE TGRS GE-23(1):25–34, Table I (1.4–18 GHz).
  Between two tabulated frequencies, ε is interpolated linearly in frequency
  (at Sentinel-1's 5.405 GHz: between the 4 and 6 GHz fits).
* :func:`dobson` — semi-empirical refractive mixing model of Dobson, Ulaby,
  Hallikainen & El-Rayes (1985), *Microwave dielectric behavior of wet soil — Part II:
  Dielectric mixing models*, IEEE TGRS GE-23(1):35–46, with the 1.4–18 GHz
  coefficients of Peplinski, Ulaby & Dobson (1995), IEEE TGRS 33(3):803–807, and the
  free-water Debye relaxation of Ulaby, Moore & Fung (1986, Vol. III, App. E).

Sand and clay are mass *fractions* (0–1) everywhere in this package; volumetric
moisture ``mv`` is in m³/m³. Both functions return :class:`Permittivity` (real and
positive imaginary part); dtype/device follow the inputs.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch

from xr_physcube.exceptions import InvalidArgumentError, OutOfRangeError
from xr_physcube.parameters import ParameterSpec, TensorLike, as_tensors
from xr_physcube.validation import check_arrays

MV = ParameterSpec("mv", "volumetric soil moisture", "m3 m-3", 0.02, 0.5, 0.2)
"""Surface (0–5 cm) volumetric soil moisture; re-exported by :mod:`xr_physcube.models.sar`."""
SAND = ParameterSpec("sand", "soil sand mass fraction", "1", 0.0, 1.0, 0.3)
CLAY = ParameterSpec("clay", "soil clay mass fraction", "1", 0.0, 1.0, 0.2)
BULK_DENSITY = ParameterSpec("rho_b", "soil dry bulk density", "g cm-3", 0.8, 2.0, 1.4)
SOIL_TEMPERATURE = ParameterSpec("t_soil", "soil temperature", "degC", 0.0, 40.0, 20.0)

# Hallikainen et al. (1985), Table I: eps = (a0 + a1 S + a2 C) + (b0 + b1 S + b2 C) mv
# + (c0 + c1 S + c2 C) mv^2 with S, C in percent and mv in m3/m3.
# Rows: frequency (GHz) -> (a0, a1, a2, b0, b1, b2, c0, c1, c2).
HALLIKAINEN_REAL: dict[float, tuple[float, ...]] = {
    1.4: (2.862, -0.012, 0.001, 3.803, 0.462, -0.341, 119.006, -0.500, 0.633),
    4.0: (2.927, -0.012, -0.001, 5.505, 0.371, 0.062, 114.826, -0.389, -0.547),
    6.0: (1.993, 0.002, 0.015, 38.086, -0.176, -0.633, 10.720, 1.256, 1.522),
    8.0: (1.997, 0.002, 0.018, 25.579, -0.017, -0.412, 39.793, 0.723, 0.941),
    10.0: (2.502, -0.003, -0.003, 10.101, 0.221, -0.004, 77.482, -0.061, -0.135),
    12.0: (2.200, -0.001, 0.012, 26.473, 0.013, -0.523, 34.333, 0.284, 1.062),
    14.0: (2.301, 0.001, 0.009, 17.918, 0.084, -0.282, 50.149, 0.012, 0.387),
    16.0: (2.237, 0.002, 0.009, 15.505, 0.076, -0.217, 48.260, 0.168, 0.289),
    18.0: (1.912, 0.007, 0.021, 29.123, -0.190, -0.545, 6.960, 0.822, 1.195),
}
HALLIKAINEN_IMAG: dict[float, tuple[float, ...]] = {
    1.4: (0.356, -0.003, -0.008, 5.507, 0.044, -0.002, 17.753, -0.313, 0.206),
    4.0: (0.004, 0.001, 0.002, 0.951, 0.005, -0.010, 16.759, 0.192, 0.290),
    6.0: (-0.123, 0.002, 0.003, 7.502, -0.058, -0.116, 2.942, 0.452, 0.543),
    8.0: (-0.201, 0.003, 0.003, 11.266, -0.085, -0.155, 0.194, 0.584, 0.581),
    10.0: (-0.070, 0.000, 0.001, 6.620, 0.015, -0.081, 21.578, 0.293, 0.332),
    12.0: (-0.142, 0.001, 0.003, 11.868, -0.059, -0.225, 7.817, 0.570, 0.801),
    14.0: (-0.096, 0.001, 0.002, 8.583, -0.005, -0.153, 28.707, 0.297, 0.357),
    16.0: (-0.027, -0.001, 0.003, 6.179, 0.074, -0.086, 34.126, 0.143, 0.206),
    18.0: (-0.071, 0.000, 0.003, 6.938, 0.029, -0.128, 29.945, 0.275, 0.377),
}
HALLIKAINEN_FREQUENCIES_GHZ: tuple[float, ...] = tuple(HALLIKAINEN_REAL)


class Permittivity(NamedTuple):
    """Relative permittivity ε = real − j·imag (both ≥ 0, dimensionless)."""

    real: torch.Tensor
    imag: torch.Tensor


def _polynomial(coeffs: tuple[float, ...], mv, sand_pct, clay_pct) -> torch.Tensor:
    a0, a1, a2, b0, b1, b2, c0, c1, c2 = coeffs
    return (
        (a0 + a1 * sand_pct + a2 * clay_pct)
        + (b0 + b1 * sand_pct + b2 * clay_pct) * mv
        + (c0 + c1 * sand_pct + c2 * clay_pct) * mv * mv
    )


def _bracket(frequency_ghz: float) -> tuple[float, float, float]:
    """Tabulated frequencies (f0, f1) around ``frequency_ghz`` and the weight of f1."""
    freqs = HALLIKAINEN_FREQUENCIES_GHZ
    if not freqs[0] <= frequency_ghz <= freqs[-1]:
        raise OutOfRangeError(
            f"Hallikainen et al. (1985) covers {freqs[0]}–{freqs[-1]} GHz; got {frequency_ghz}"
        )
    for f0, f1 in zip(freqs[:-1], freqs[1:], strict=True):
        if f0 <= frequency_ghz <= f1:
            return f0, f1, (frequency_ghz - f0) / (f1 - f0)
    raise AssertionError("unreachable")  # pragma: no cover


def hallikainen(
    mv: TensorLike,
    sand: TensorLike = SAND.default,
    clay: TensorLike = CLAY.default,
    frequency_ghz: float = 5.405,
    validate: bool = True,
) -> Permittivity:
    """Soil permittivity from the empirical fits of Hallikainen et al. (1985).

    Args:
        mv: volumetric soil moisture, m³/m³ (fits made on 0–0.5).
        sand, clay: sand and clay mass fractions, 0–1 with sand + clay <= 1 (the
            paper's soils span sand 5–51 %, clay 3–47 %).
        frequency_ghz: 1.4–18 GHz; ε is interpolated linearly between the two
            tabulated frequencies around it (Table I: 1.4, 4, 6, 8, ..., 18 GHz).
        validate: raise ``ValueError`` on NaN or out-of-range inputs.

    Returns:
        :class:`Permittivity` (ε', ε''), shape of the broadcast inputs.
    """
    if validate:
        _check({"mv": mv, "sand": sand, "clay": clay}, "hallikainen")
    t = as_tensors({"mv": mv, "sand": sand, "clay": clay})
    s_pct, c_pct = 100.0 * t["sand"], 100.0 * t["clay"]
    f0, f1, w = _bracket(float(frequency_ghz))
    parts = []
    for table in (HALLIKAINEN_REAL, HALLIKAINEN_IMAG):
        e0 = _polynomial(table[f0], t["mv"], s_pct, c_pct)
        e1 = _polynomial(table[f1], t["mv"], s_pct, c_pct)
        parts.append(e0 if w == 0.0 else (1.0 - w) * e0 + w * e1)
    return Permittivity(*parts)


# Dobson et al. (1985) / Peplinski et al. (1995) constants.
_ALPHA = 0.65  # shape factor of the refractive mixing model (Dobson et al. 1985)
_RHO_SOLID = 2.66  # specific density of soil solids, g/cm3 (Dobson et al. 1985)
_EPS_SOLID = 4.7  # permittivity of soil solids (Dobson et al. 1985)
_EPS_W_INF = 4.9  # high-frequency limit of water permittivity (Ulaby et al. 1986)
_EPS_0 = 8.854e-12  # vacuum permittivity, F/m


def water_permittivity(frequency_ghz: float, temperature_c: torch.Tensor) -> Permittivity:
    """Debye relaxation of pure water (Ulaby, Moore & Fung 1986, Vol. III, App. E)."""
    t = temperature_c
    eps_w0 = 88.045 - 0.4147 * t + 6.295e-4 * t**2 + 1.075e-5 * t**3
    two_pi_tau = 1.1109e-10 - 3.824e-12 * t + 6.938e-14 * t**2 - 5.096e-16 * t**3
    x = two_pi_tau * frequency_ghz * 1e9
    denom = 1.0 + x * x
    return Permittivity(
        _EPS_W_INF + (eps_w0 - _EPS_W_INF) / denom, x * (eps_w0 - _EPS_W_INF) / denom
    )


def dobson(
    mv: TensorLike,
    sand: TensorLike = SAND.default,
    clay: TensorLike = CLAY.default,
    frequency_ghz: float = 5.405,
    rho_b: TensorLike = BULK_DENSITY.default,
    t_soil: TensorLike = SOIL_TEMPERATURE.default,
    validate: bool = True,
) -> Permittivity:
    """Soil permittivity from the Dobson et al. (1985) mixing model (Peplinski 1995 form).

    ε' = [1 + (ρb/ρs)(εs^α − 1) + mv^β' ε'fw^α − mv]^(1/α),
    ε'' = [mv^β'' ε''fw^α]^(1/α), α = 0.65, ρs = 2.66 g/cm³, εs = 4.7, with
    β' = 1.2748 − 0.519 S − 0.152 C, β'' = 1.33797 − 0.603 S − 0.166 C and the
    free-water ε_fw including the ionic-conductivity loss
    σeff = −1.645 + 1.939 ρb − 2.25622 S + 1.594 C (S/m) (Peplinski et al. 1995).

    Args:
        mv: volumetric soil moisture, m³/m³ (> 0).
        sand, clay: mass fractions, 0–1 with sand + clay <= 1.
        frequency_ghz: 1.4–18 GHz (the range of the Peplinski coefficients).
        rho_b: dry bulk density, g/cm³.
        t_soil: soil temperature, °C.
        validate: raise ``ValueError`` on NaN or out-of-range inputs.
    """
    if not 1.4 <= float(frequency_ghz) <= 18.0:
        raise OutOfRangeError(f"dobson() is parameterised for 1.4–18 GHz; got {frequency_ghz}")
    values = {"mv": mv, "sand": sand, "clay": clay, "rho_b": rho_b, "t_soil": t_soil}
    if validate:
        _check(values, "dobson")
    t = as_tensors(values)
    s, c, rho_b_t = t["sand"], t["clay"], t["rho_b"]
    m = t["mv"].clamp_min(1e-6)
    water = water_permittivity(float(frequency_ghz), t["t_soil"])
    sigma_eff = -1.645 + 1.939 * rho_b_t - 2.25622 * s + 1.594 * c
    omega = 2.0 * math.pi * frequency_ghz * 1e9
    eps_fw_imag = water.imag + sigma_eff / (omega * _EPS_0) * (_RHO_SOLID - rho_b_t) / (
        _RHO_SOLID * m
    )
    beta_r = 1.2748 - 0.519 * s - 0.152 * c
    beta_i = 1.33797 - 0.603 * s - 0.166 * c
    real = (
        1.0 + rho_b_t / _RHO_SOLID * (_EPS_SOLID**_ALPHA - 1.0) + m**beta_r * water.real**_ALPHA - m
    ) ** (1.0 / _ALPHA)
    imag = (m**beta_i * eps_fw_imag.clamp_min(0.0) ** _ALPHA) ** (1.0 / _ALPHA)
    return Permittivity(real, imag)


DielectricModel = Literal["hallikainen", "dobson"]
DIELECTRIC_MODELS: tuple[str, ...] = ("hallikainen", "dobson")


def check_dielectric_model(name: str) -> DielectricModel:
    """``name`` in lower case if it is one of :data:`DIELECTRIC_MODELS` (case-insensitive),
    else ``ValueError`` listing them."""
    key = name.lower() if isinstance(name, str) else name
    if key not in DIELECTRIC_MODELS:
        raise InvalidArgumentError(
            f"dielectric model must be one of {list(DIELECTRIC_MODELS)} (case-insensitive); "
            f"got {name!r}"
        )
    return key  # type: ignore[return-value]


TEXTURE_TOLERANCE = 1e-6
"""Rounding slack allowed on sand + clay <= 1 (e.g. 0.7 + 0.3 in float32)."""


def check_texture(sand: TensorLike, clay: TensorLike, context: str = "") -> None:
    """Raise ``ValueError`` where sand + clay > 1: both are mass fractions of the same soil
    (the rest is silt). Each fraction's own range [0, 1] is checked by its spec."""
    s = sand.detach() if isinstance(sand, torch.Tensor) else torch.as_tensor(sand)
    c = clay.detach() if isinstance(clay, torch.Tensor) else torch.as_tensor(clay)
    try:
        total = s + c.to(s.device)
    except RuntimeError:
        return  # shapes that do not broadcast are reported where the tensors are built
    if total.numel() and float(total.max()) > 1.0 + TEXTURE_TOLERANCE:
        where = f"{context}: " if context else ""
        raise OutOfRangeError(
            f"{where}parameters 'sand' and 'clay' are mass fractions of one soil, so "
            f"sand + clay must be <= 1; got sand + clay up to {float(total.max()):g}"
        )


def soil_permittivity(
    mv: torch.Tensor,
    sand: torch.Tensor,
    clay: torch.Tensor,
    frequency_ghz: float = 5.405,
    model: DielectricModel = "hallikainen",
    validate: bool = True,
) -> Permittivity:
    """Soil permittivity from the named model (:func:`hallikainen` or :func:`dobson`, the
    latter at its default bulk density and soil temperature; name case-insensitive);
    arguments as theirs."""
    model = check_dielectric_model(model)
    fn = hallikainen if model == "hallikainen" else dobson
    return fn(mv, sand, clay, frequency_ghz, validate=validate)


def _check(values: dict, context: str) -> None:
    specs = {
        "mv": MV,
        "sand": SAND,
        "clay": CLAY,
        "rho_b": BULK_DENSITY,
        "t_soil": SOIL_TEMPERATURE,
    }
    check_arrays(values, context)
    for name, value in values.items():
        specs[name].check(value, context)
    check_texture(values["sand"], values["clay"], context)
