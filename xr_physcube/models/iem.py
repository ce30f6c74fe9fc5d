"""Integral Equation Model (IEM) of bare-soil backscatter, single scattering, VV and HH.

Fung, A. K., Li, Z., Chen, K. S. (1992), *Backscattering from a randomly rough dielectric
surface*, IEEE TGRS 30(2):356–369; Fung, A. K. (1994), *Microwave Scattering and Emission
Models and Their Applications*, Artech House, ch. 4 (the single-scattering co-polarised
backscatter restated in Ulaby & Long 2014, *Microwave Radar and Radiometric Remote
Sensing*, sect. 10.5). With k the free-space wavenumber, s the rms height, L the
correlation length, kz = k cos θ, kx = k sin θ and μr = 1::

    σ⁰_pp = (k²/2) exp(−2 kz² s²) Σ_{n≥1} (s^{2n}/n!) |I_pp^n|² W^(n)(−2kx, 0)
    I_pp^n = (2kz)^n f_pp exp(−s² kz²) + kz^n [F_pp(−kx, 0) + F_pp(kx, 0)] / 2
    f_vv = 2 R_v / cos θ,                f_hh = −2 R_h / cos θ
    F_vv(−kx,0)+F_vv(kx,0) = (2 sin²θ (1+R_v)² / cos θ)
                             × [(1 − 1/εr) + (εr − sin²θ − εr cos²θ)/(εr² cos²θ)]
    F_hh(−kx,0)+F_hh(kx,0) = −(2 sin²θ (1+R_h)² / cos θ) (εr − 1)/cos²θ

R_v, R_h are the Fresnel reflection coefficients at the incidence angle θ (the IEM's
low/medium-roughness choice); W^(n) is the Fourier transform of the n-th power of the
surface autocorrelation function (normalised so that W^(1) is the roughness spectrum):

* exponential ACF ρ(ξ) = exp(−|ξ|/L):  W^(n)(K) = (L/n)² [1 + (K L/n)²]^(−3/2)
* Gaussian ACF ρ(ξ) = exp(−ξ²/L²):    W^(n)(K) = (L²/(2n)) exp(−K² L²/(4n))

For ks → 0 the n = 1 term dominates and σ⁰ reduces to the small-perturbation model
σ⁰_pp = 8 k⁴ s² cos⁴θ |α_pp|² W^(1)(2k sin θ) (Rice 1951; Ulaby, Moore & Fung 1982,
Vol. II ch. 12), which the tests check. The model is commonly used for ks ≲ 3 (Fung et
al. 1992); validation raises ``ValueError`` above ks = 3. The Baghdadi et al. (2006)
calibrated correlation length is not implemented (give ``corr_length`` yourself).
Because R is taken at θ, the Kirchhoff-like high-order terms can make σhh exceed σvv for
large ks·kl (notably with the Gaussian ACF); Fung (1994) and the I2EM (Fung et al. 2002)
switch towards R(0) there — not done here.

Soil permittivity comes from :func:`~xr_physcube.models.dielectric.hallikainen`
(default) or :func:`~xr_physcube.models.dielectric.dobson`. Everything is batched over
broadcastable shapes, follows the inputs' dtype/device and is differentiable w.r.t. all
continuous inputs (complex intermediates, real outputs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import nn

from xr_physcube.exceptions import InvalidArgumentError, OutOfRangeError
from xr_physcube.models.dielectric import (
    CLAY,
    MV,
    SAND,
    DielectricModel,
    check_dielectric_model,
    soil_permittivity,
)
from xr_physcube.models.soil_backscatter import HRMS, THETA
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
from xr_physcube.validation import check_arrays, positive_float, positive_int

Acf = Literal["exponential", "gaussian"]

__all__ = [
    "CORR_LENGTH", "IemParameters", "IEM_PARAMETERS", "IemBackscatter", "iem",
    "iem_backscatter", "Iem", "KS_MAX",
]  # fmt: skip

CORR_LENGTH = ParameterSpec("corr_length", "surface autocorrelation length", "cm", 0.5, 40.0, 5.0)
KS_MAX = 3.0
"""Largest ks accepted with validation (usual IEM validity, Fung et al. 1992)."""


@dataclass
class IemParameters(TensorParameters):
    """IEM inputs. Defaults: moist, moderately rough loam (s = 1 cm, L = 5 cm) at 38°."""

    mv: torch.Tensor | float = spec_field(MV)
    hrms: torch.Tensor | float = spec_field(HRMS)
    corr_length: torch.Tensor | float = spec_field(CORR_LENGTH)
    theta: torch.Tensor | float = spec_field(THETA)
    sand: torch.Tensor | float = spec_field(SAND)
    clay: torch.Tensor | float = spec_field(CLAY)


IEM_PARAMETERS: ParameterSet = IemParameters.parameter_set()


class IemBackscatter(NamedTuple):
    """IEM sigma0 (linear, m²/m²) for VV and HH."""

    vv: torch.Tensor
    hh: torch.Tensor


def _check_acf(acf: str) -> Acf:
    if acf not in ("exponential", "gaussian"):
        raise InvalidArgumentError(f"acf must be 'exponential' or 'gaussian'; got {acf!r}")
    return acf  # type: ignore[return-value]


def iem(
    eps: torch.Tensor,
    ks: torch.Tensor,
    kl: torch.Tensor,
    theta_rad: torch.Tensor,
    acf: Acf = "exponential",
    n_terms: int = 64,
) -> IemBackscatter:
    """Single-scattering IEM co-polarised sigma0 from dimensionless inputs.

    Args:
        eps: complex relative permittivity ε' − jε'' (or a real tensor).
        ks, kl: wavenumber times rms height and times correlation length.
        theta_rad: incidence angle, radians (0 < θ < π/2).
        acf: "exponential" or "gaussian" surface autocorrelation function.
        n_terms: terms of the series (64 is converged to < 1e-6 relative for ks ≤ 3).
    """
    acf = _check_acf(acf)
    n_terms = positive_int(n_terms, "n_terms")
    real_dtype = ks.dtype
    cplx = torch.complex128 if real_dtype == torch.float64 else torch.complex64
    eps = eps.to(cplx)
    cos_t, sin_t = torch.cos(theta_rad), torch.sin(theta_rad)
    sin2, cos2 = sin_t * sin_t, cos_t * cos_t
    root = torch.sqrt(eps - sin2)
    r_v = (eps * cos_t - root) / (eps * cos_t + root)
    r_h = (cos_t - root) / (cos_t + root)
    f_vv = 2.0 * r_v / cos_t
    f_hh = -2.0 * r_h / cos_t
    big_f_vv = (2.0 * sin2 * (1.0 + r_v) ** 2 / cos_t) * (
        (1.0 - 1.0 / eps) + (eps - sin2 - eps * cos2) / (eps * eps * cos2)
    )
    big_f_hh = -(2.0 * sin2 * (1.0 + r_h) ** 2 / cos_t) * (eps - 1.0) / cos2

    kzs = ks * cos_t  # kz s
    kzs2 = kzs * kzs
    big_k_l = 2.0 * kl * sin_t  # K L with K = 2 k sin θ
    damp = torch.exp(-kzs2)
    shape = torch.broadcast_shapes(eps.shape, ks.shape, kl.shape, theta_rad.shape)
    sum_vv = torch.zeros(shape, dtype=real_dtype, device=ks.device)
    sum_hh = torch.zeros_like(sum_vv)
    log_4kzs2 = torch.log(4.0 * kzs2)
    for n in range(1, n_terms + 1):
        # |I^n|² = 4^n |f e^(-kz²s²) + 2^(-n) F/2|² (times kz^(2n)); the 4^n (kz s)^(2n)/n!
        # k² W^(n) weight is formed in log space so that nothing overflows in float32.
        if acf == "exponential":
            log_w = 2.0 * torch.log(kl / n) - 1.5 * torch.log1p((big_k_l / n) ** 2)
        else:
            log_w = 2.0 * torch.log(kl) - math.log(2 * n) - big_k_l**2 / (4 * n)
        weight = torch.exp(n * log_4kzs2 - math.lgamma(n + 1) + log_w)
        half_f = 0.5**n * 0.5
        i_vv = f_vv * damp + half_f * big_f_vv
        i_hh = f_hh * damp + half_f * big_f_hh
        sum_vv = sum_vv + weight * (i_vv.real**2 + i_vv.imag**2)
        sum_hh = sum_hh + weight * (i_hh.real**2 + i_hh.imag**2)
    pre = 0.5 * torch.exp(-2.0 * kzs2)
    return IemBackscatter(pre * sum_vv, pre * sum_hh)


def iem_backscatter(
    params: IemParameters | None = None,
    *,
    acf: Acf = "exponential",
    dielectric: DielectricModel = "hallikainen",
    frequency_ghz: float = s1.FREQUENCY_GHZ,
    n_terms: int = 64,
    validate: bool = True,
    **kwargs: TensorLike,
) -> IemBackscatter:
    """Bare-soil IEM sigma0 (linear) for VV and HH from soil moisture and roughness.

    Args:
        params: an :class:`IemParameters`, or its fields as keywords: ``mv`` 0.02–0.5
            m³/m³, ``hrms`` 0.1–5 cm (ks ≤ 3 enforced when validating), ``corr_length``
            0.5–40 cm, ``theta`` 10–70°, ``sand``/``clay`` mass fractions.
        acf: "exponential" (usual for agricultural soils) or "gaussian".
        dielectric: "hallikainen" (default) or "dobson" soil permittivity model.
        frequency_ghz: radar frequency (default Sentinel-1, 5.405 GHz).
        n_terms: number of terms of the IEM series, ≥ 1.
        validate: raise ``ValueError`` on NaN or out-of-range inputs (and ks > 3).

    Returns:
        :class:`IemBackscatter` (vv, hh), linear, broadcast batch shape.
    """
    if params is None:
        params = IemParameters(**kwargs)
    elif kwargs:
        raise TypeError("give either an IemParameters or keyword fields, not both")
    acf = _check_acf(acf)
    check_dielectric_model(dielectric)
    frequency_ghz = positive_float(frequency_ghz, "frequency_ghz")
    n_terms = positive_int(n_terms, "n_terms")
    values = params.as_dict()
    wavenumber = 2.0 * math.pi * frequency_ghz * 1e9 / s1.SPEED_OF_LIGHT_M_S / 100.0  # 1/cm
    if validate:
        check_arrays(values, f"IEM ({acf})")
        IEM_PARAMETERS.validate(values, f"IEM ({acf})")
        hrms = torch.as_tensor(values["hrms"]).detach()
        if float(hrms.max()) * wavenumber > KS_MAX:
            raise OutOfRangeError(
                f"IEM: parameter 'hrms' gives ks = {float(hrms.max()) * wavenumber:.3g} > "
                f"{KS_MAX} (hrms must be <= {KS_MAX / wavenumber:.3g} cm at {frequency_ghz} GHz)"
            )
    t = as_tensors(values)
    eps = soil_permittivity(t["mv"], t["sand"], t["clay"], frequency_ghz, dielectric, False)
    eps_c = torch.complex(eps.real, -eps.imag)
    return iem(
        eps_c,
        wavenumber * t["hrms"],
        wavenumber * t["corr_length"],
        deg2rad(t["theta"]),
        acf,
        n_terms,
    )


class Iem(nn.Module):
    """IEM as an ``nn.Module``: ``forward(params: IemParameters) -> IemBackscatter``.

    Args: ``acf``, ``dielectric``, ``frequency_ghz``, ``n_terms`` and ``validate`` as in
    :func:`iem_backscatter`.
    """

    def __init__(
        self,
        acf: Acf = "exponential",
        dielectric: DielectricModel = "hallikainen",
        frequency_ghz: float = s1.FREQUENCY_GHZ,
        n_terms: int = 64,
        validate: bool = True,
    ):
        super().__init__()
        self.acf = _check_acf(acf)
        check_dielectric_model(dielectric)
        self.dielectric: DielectricModel = dielectric
        self.frequency_ghz = positive_float(frequency_ghz, "frequency_ghz")
        self.n_terms = positive_int(n_terms, "n_terms")
        self.validate = validate

    def extra_repr(self) -> str:
        return (
            f"acf={self.acf!r}, dielectric={self.dielectric!r}, "
            f"frequency_ghz={self.frequency_ghz}, n_terms={self.n_terms}"
        )

    def forward(self, params: IemParameters) -> IemBackscatter:
        return iem_backscatter(
            params,
            acf=self.acf,
            dielectric=self.dielectric,
            frequency_ghz=self.frequency_ghz,
            n_terms=self.n_terms,
            validate=self.validate,
        )
