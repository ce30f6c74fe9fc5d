"""Bare-soil C-band backscatter: Oh (2004) and Dubois (1995), the soil term of the
Water Cloud Model (:mod:`xr_physcube.models.sar`).

* **Oh 2004** — Oh, Y. (2004), *Quantitative retrieval of soil moisture content and
  surface roughness from multipolarized radar observations of bare soil surfaces*,
  IEEE TGRS 42(3):596–601. Inputs: mv (m³/m³), ks, θ; no dielectric model needed
  (equations in :mod:`xr_physcube.models.sar`). Calibrated on 0.13 ≤ ks ≤ 6.98,
  0.04 ≤ mv ≤ 0.291, 10° ≤ θ ≤ 70°.
* **Dubois 1995** — Dubois, P. C., van Zyl, J., Engman, T. (1995), *Measuring soil
  moisture with imaging radars*, IEEE TGRS 33(4):915–926 (valid for ks ≤ 2.5,
  mv ≤ 0.35, θ ≥ 30°), with ε' from :mod:`xr_physcube.models.dielectric`; its VH is
  Oh (2004)'s.

Batched over any broadcastable shape, dtype/device follow the inputs, differentiable.
The input specifications ``HRMS`` and ``THETA`` are declared here (``MV``, ``SAND``,
``CLAY`` in :mod:`xr_physcube.models.dielectric`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch

from xr_physcube.exceptions import InvalidArgumentError
from xr_physcube.models.dielectric import (
    CLAY,
    MV,
    SAND,
    DielectricModel,
    check_dielectric_model,
    check_texture,
    soil_permittivity,
)
from xr_physcube.parameters import (
    ParameterSet,
    ParameterSpec,
    TensorLike,
    TensorParameters,
    as_tensors,
    deg2rad,
    spec_field,
)
from xr_physcube.sensors import sentinel1 as s1
from xr_physcube.validation import check_arrays, positive_float

SoilModel = Literal["oh", "dubois"]
SOIL_MODELS: tuple[str, ...] = ("oh", "dubois")

HRMS = ParameterSpec("hrms", "soil surface rms height", "cm", 0.1, 5.0, 1.0)
THETA = ParameterSpec("theta", "radar incidence angle", "degree", 10.0, 70.0, 38.0)


@dataclass
class SoilParameters(TensorParameters):
    """Bare-soil inputs and geometry. Defaults: a moist, moderately rough loam at 38°.

    ``sand`` and ``clay`` (with sand + clay <= 1) only matter for soil models that use
    the soil permittivity (Dubois 1995); Oh (2004) is parameterised directly in ``mv``.
    """

    mv: torch.Tensor | float = spec_field(MV)
    hrms: torch.Tensor | float = spec_field(HRMS)
    theta: torch.Tensor | float = spec_field(THETA)
    sand: torch.Tensor | float = spec_field(SAND)
    clay: torch.Tensor | float = spec_field(CLAY)

    def validate(self, context: str = "") -> SoilParameters:
        """Each field in its range (``ValueError`` naming it) and sand + clay <= 1."""
        super().validate(context)
        check_texture(self.sand, self.clay, context or type(self).__name__)
        return self


SOIL_PARAMETERS: ParameterSet = SoilParameters.parameter_set()


class BareSoilBackscatter(NamedTuple):
    """Bare-soil sigma0 (linear, m²/m²) for VV, VH and HH."""

    vv: torch.Tensor
    vh: torch.Tensor
    hh: torch.Tensor


def check_soil_model(soil_model: str) -> SoilModel:
    """``soil_model`` in lower case if it is one of :data:`SOIL_MODELS` (case-insensitive)."""
    key = soil_model.lower() if isinstance(soil_model, str) else soil_model
    if key not in SOIL_MODELS:
        raise InvalidArgumentError(
            f"soil_model must be one of {list(SOIL_MODELS)} (case-insensitive); got {soil_model!r}"
        )
    return key  # type: ignore[return-value]


def validate_soil(values: dict, context: str) -> None:
    SOIL_PARAMETERS.validate(values, context)
    check_texture(values["sand"], values["clay"], context)


# --- Bare soil ------------------------------------------------------------------------


def oh2004(mv: torch.Tensor, ks: torch.Tensor, theta_rad: torch.Tensor) -> BareSoilBackscatter:
    """Oh (2004) bare-soil sigma0 from mv (m³/m³), ks = k·hrms and θ (radians)."""
    cos_t = torch.cos(theta_rad)
    vh = 0.11 * mv.pow(0.7) * cos_t.pow(2.2) * (1.0 - torch.exp(-0.32 * ks.pow(1.8)))
    q = 0.095 * (0.13 + torch.sin(1.5 * theta_rad)).pow(1.4) * (1.0 - torch.exp(-1.3 * ks.pow(0.9)))
    vv = vh / q
    p = 1.0 - (theta_rad / (math.pi / 2)).pow(0.35 * mv.pow(-0.65)) * torch.exp(-0.4 * ks.pow(1.4))
    return BareSoilBackscatter(vv, vh, p * vv)


def dubois1995(
    eps_real: torch.Tensor,
    ks: torch.Tensor,
    theta_rad: torch.Tensor,
    wavelength_cm: float = s1.WAVELENGTH_CM,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dubois et al. (1995) co-polarised sigma0 (VV, HH) from ε', ks and θ (radians)."""
    cos_t, sin_t, tan_t = torch.cos(theta_rad), torch.sin(theta_rad), torch.tan(theta_rad)
    ks_sin = ks * sin_t
    lam = wavelength_cm**0.7
    vv = (
        10.0**-2.35
        * cos_t.pow(3)
        / sin_t.pow(3)
        * torch.pow(10.0, 0.046 * eps_real * tan_t)
        * ks_sin.pow(1.1)
        * lam
    )
    hh = (
        10.0**-2.75
        * cos_t.pow(1.5)
        / sin_t.pow(5)
        * torch.pow(10.0, 0.028 * eps_real * tan_t)
        * ks_sin.pow(1.4)
        * lam
    )
    return vv, hh


def bare_soil_backscatter(
    soil: SoilParameters | None = None,
    *,
    soil_model: SoilModel = "oh",
    dielectric: DielectricModel = "hallikainen",
    frequency_ghz: float = s1.FREQUENCY_GHZ,
    validate: bool = True,
    **kwargs: TensorLike,
) -> BareSoilBackscatter:
    """Bare-soil sigma0 (linear) at C band for VV, VH, HH.

    Args:
        soil: a :class:`SoilParameters`, or give its fields as keywords (``mv``
            0.02–0.5 m³/m³, ``hrms`` 0.1–5 cm, ``theta`` 10–70°, ``sand``/``clay``
            mass fractions 0–1 with sand + clay <= 1).
        soil_model: "oh" (Oh 2004, VV/VH/HH) or "dubois" (Dubois 1995 VV/HH; VH from
            Oh 2004); case-insensitive. Only "dubois" uses the soil permittivity, hence
            ``sand``, ``clay`` and ``dielectric``; "oh" is parameterised directly in
            ``mv`` and ignores them (they are still range-checked).
        dielectric: permittivity model for Dubois, "hallikainen" or "dobson"
            (case-insensitive).
        frequency_ghz: radar frequency (default Sentinel-1, 5.405 GHz).
        validate: raise ``ValueError`` on NaN or out-of-range inputs.
    """
    soil = soil_from(soil, kwargs)
    soil_model = check_soil_model(soil_model)
    dielectric = check_dielectric_model(dielectric)
    frequency_ghz = positive_float(frequency_ghz, "frequency_ghz")
    values = soil.as_dict()
    if validate:
        check_arrays(values, f"bare soil ({soil_model})")
        validate_soil(values, f"bare soil ({soil_model})")
    t = as_tensors(values)
    wavelength_cm = s1.SPEED_OF_LIGHT_M_S / (frequency_ghz * 1e9) * 100.0
    ks = (2.0 * math.pi / wavelength_cm) * t["hrms"]
    theta = deg2rad(t["theta"])
    oh = oh2004(t["mv"], ks, theta)
    if soil_model == "oh":
        return oh
    eps = soil_permittivity(t["mv"], t["sand"], t["clay"], frequency_ghz, dielectric, False)
    vv, hh = dubois1995(eps.real, ks, theta, wavelength_cm)
    return BareSoilBackscatter(vv, oh.vh, hh)


def soil_from(soil: SoilParameters | None, kwargs: dict) -> SoilParameters:
    if soil is None:
        return SoilParameters(**kwargs)
    if kwargs:
        raise TypeError("give either a SoilParameters or keyword fields, not both")
    return soil
