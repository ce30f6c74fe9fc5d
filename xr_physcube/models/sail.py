"""4SAIL canopy reflectance model with hot spot, in PyTorch.

Four-stream radiative transfer in a horizontally homogeneous canopy of
Lambertian leaves over a Lambertian soil:

* Verhoef (1984), RSE 16:125–141 (SAIL); Kuusk (1991) hot-spot correction;
* Verhoef, Jia, Xiao & Su (2007), IEEE TGRS 45(6):1808–1822 (4SAIL formulation
  used here, as in PROSAIL; Jacquemoud et al. 2009, RSE 113:S56–S66).

Leaf angle distributions (LIDF), on 18 classes of 5° (as the ``prosail`` package):

* Campbell (1990), Agric. For. Meteorol. 49:173–176: ellipsoidal, one parameter,
  the average leaf angle ``ala`` (degrees; 57° ≈ spherical).
* Verhoef (1998) two-parameter distribution (``lidfa``, ``lidfb``), with
  |a| + |b| <= 1 (planophile (1, 0), erectophile (-1, 0), spherical (-0.35, -0.15)).

Angular factors are computed in float64 whatever the spectral dtype (they are cheap
and the Campbell formulas cancel badly near the spherical case); spectral terms run
in the inputs' dtype on the inputs' device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import torch

from xr_physcube._data import read_table
from xr_physcube.exceptions import InvalidArgumentError, OutOfRangeError
from xr_physcube.models._scratch import Scratch, may_shortcut
from xr_physcube.parameters import ParameterSpec, TensorParameters, spec_field

LidfType = Literal["campbell", "verhoef"]

LAI = ParameterSpec("lai", "leaf area index", "m2 m-2", 0.0, 10.0, 2.0)
ALA = ParameterSpec(
    "ala", "average leaf inclination angle (Campbell LIDF)", "degree", 0.0, 90.0, 57.0
)
LIDFA = ParameterSpec("lidfa", "Verhoef LIDF parameter a (mean slope)", "1", -1.0, 1.0, -0.35)
LIDFB = ParameterSpec("lidfb", "Verhoef LIDF parameter b (bimodality)", "1", -1.0, 1.0, -0.15)
HSPOT = ParameterSpec(
    "hspot", "hot-spot parameter (leaf size / canopy height)", "1", 0.0, 1.0, 0.01
)
PSOIL = ParameterSpec("psoil", "soil dryness (weight of the dry soil spectrum)", "1", 0.0, 1.0, 1.0)
RSOIL = ParameterSpec("rsoil", "soil brightness factor", "1", 0.0, 1.5, 1.0)
TTS = ParameterSpec("tts", "solar zenith angle", "degree", 0.0, 80.0, 30.0)
TTO = ParameterSpec("tto", "view zenith angle", "degree", 0.0, 80.0, 0.0)
PSI = ParameterSpec(
    "psi", "relative azimuth between sun and view directions", "degree", 0.0, 360.0, 0.0
)
SKYL = ParameterSpec("skyl", "fraction of diffuse sky irradiance", "1", 0.0, 1.0, 0.0)

N_LIDF_CLASSES = 18
"""Leaf inclination classes of 5° (centres 2.5°, ..., 87.5°)."""
_LIDF_EDGES_DEG = np.linspace(0.0, 90.0, N_LIDF_CLASSES + 1)
_LIDF_CENTRES_DEG = 0.5 * (_LIDF_EDGES_DEG[:-1] + _LIDF_EDGES_DEG[1:])


@dataclass
class CanopyParameters(TensorParameters):
    """4SAIL canopy and soil inputs. ``ala`` is used by the Campbell LIDF,
    ``lidfa``/``lidfb`` by the Verhoef LIDF."""

    lai: torch.Tensor | float = spec_field(LAI)
    ala: torch.Tensor | float = spec_field(ALA)
    lidfa: torch.Tensor | float = spec_field(LIDFA)
    lidfb: torch.Tensor | float = spec_field(LIDFB)
    hspot: torch.Tensor | float = spec_field(HSPOT)
    psoil: torch.Tensor | float = spec_field(PSOIL)
    rsoil: torch.Tensor | float = spec_field(RSOIL)


@dataclass
class ViewGeometry(TensorParameters):
    """Sun/view geometry in degrees; ``psi`` is the sun–view relative azimuth."""

    tts: torch.Tensor | float = spec_field(TTS)
    tto: torch.Tensor | float = spec_field(TTO)
    psi: torch.Tensor | float = spec_field(PSI)


CANOPY_PARAMETERS = CanopyParameters.parameter_set()
GEOMETRY_PARAMETERS = ViewGeometry.parameter_set()


def check_verhoef_lidf(lidfa, lidfb) -> None:
    """The Verhoef LIDF needs |a| + |b| <= 1; raise ``ValueError`` otherwise."""
    total = torch.as_tensor(lidfa).detach().abs() + torch.as_tensor(lidfb).detach().abs()
    if bool((total > 1.0 + 1e-12).any()):
        raise OutOfRangeError(
            f"Verhoef LIDF needs |lidfa| + |lidfb| <= 1; got up to {float(total.max()):g}"
        )


def soil_reflectance(
    psoil: torch.Tensor, rsoil: torch.Tensor, dtype=None, device=None
) -> torch.Tensor:
    """rsoil * (psoil * dry + (1 - psoil) * wet), shape (..., 2101).

    Dry/wet spectra are PROSAIL's reference soils (``models/data/soil_reflectance.csv``).
    """
    table = read_table("xr_physcube.models", "soil_reflectance.csv")
    dtype = dtype or psoil.dtype
    dry = torch.tensor(table["dry"], dtype=dtype, device=device or psoil.device)
    wet = torch.tensor(table["wet"], dtype=dtype, device=device or psoil.device)
    p = psoil.to(dtype).unsqueeze(-1)
    return rsoil.to(dtype).unsqueeze(-1) * (p * dry + (1.0 - p) * wet)


# ----------------------------------------------------------------------------------------
# Leaf inclination distributions (float64, shape (..., 18))
# ----------------------------------------------------------------------------------------


def lidf_campbell(ala: torch.Tensor) -> torch.Tensor:
    """Campbell (1990) ellipsoidal LIDF class frequencies for average leaf angle ``ala`` (deg).

    The eccentricity comes from the mean angle with Campbell's (1990) fit; class
    frequencies are differences of the closed-form cumulative distribution.
    """
    a = ala.unsqueeze(-1)
    excent = torch.exp(-1.6184e-5 * a**3 + 2.1145e-3 * a**2 - 1.2390e-1 * a + 3.2491)
    edges = torch.as_tensor(np.radians(_LIDF_EDGES_DEG), dtype=a.dtype, device=a.device)
    tan2 = torch.tan(edges) ** 2
    x = excent / torch.sqrt(1.0 + excent**2 * tan2)  # (..., 19)

    above = excent > 1.0
    below = excent < 1.0
    e_hi = torch.where(above, excent, torch.full_like(excent, 2.0))
    e_lo = torch.where(below, excent, torch.full_like(excent, 0.5))
    x_hi = torch.where(above, x, torch.zeros_like(x))
    x_lo = torch.where(below, x, torch.zeros_like(x))
    alph2_hi = e_hi**2 / (e_hi**2 - 1.0)
    alph2_lo = e_lo**2 / (1.0 - e_lo**2)
    s_hi = torch.sqrt(alph2_hi + x_hi**2)
    cdf_hi = x_hi * s_hi + alph2_hi * torch.log(x_hi + s_hi)
    cdf_lo = x_lo * torch.sqrt(alph2_lo - x_lo**2) + alph2_lo * torch.asin(x_lo / alph2_lo.sqrt())
    cdf_sphere = torch.cos(edges).expand_as(x)
    cdf = torch.where(above, cdf_hi, torch.where(below, cdf_lo, cdf_sphere))
    freq = (cdf[..., :-1] - cdf[..., 1:]).abs()
    return freq / freq.sum(-1, keepdim=True)


def lidf_verhoef(lidfa: torch.Tensor, lidfb: torch.Tensor) -> torch.Tensor:
    """Verhoef (1998) two-parameter LIDF class frequencies.

    The cumulative distribution F(θ) = (2x - p) / π with p = 2θ solves
    x = p + a sin x + (b/2) sin 2x, whose solution lies in [p - 1, p + 1] and is
    unique (the residual is monotone for |a| + |b| <= 1). It is found by bisection
    without gradient; exact first derivatives are attached by the implicit function
    theorem (dx/dθ = -(dF/dθ) / (dF/dx)) without changing the value.
    """
    a = lidfa.unsqueeze(-1)
    b = lidfb.unsqueeze(-1)
    p = torch.as_tensor(2.0 * np.radians(_LIDF_EDGES_DEG), dtype=a.dtype, device=a.device)
    p = p.expand(torch.broadcast_shapes(a.shape, p.shape))

    def residual(x, a, b):
        return x - p - a * torch.sin(x) - 0.5 * b * torch.sin(2.0 * x)

    with torch.no_grad():
        ad, bd = a.detach(), b.detach()
        lo, hi = p - 1.0, p + 1.0
        for _ in range(64):
            mid = 0.5 * (lo + hi)
            above = residual(mid, ad, bd) > 0.0
            lo = torch.where(above, lo, mid)
            hi = torch.where(above, mid, hi)
        x = 0.5 * (lo + hi)
        # the end points are exact roots (F(0°) = 0, F(90°) = 1); bisection is ill
        # conditioned there when |a| -> 1 (residual ~ x^3), so pin them.
        x[..., 0] = p[..., 0]
        x[..., -1] = p[..., -1]
    slope = (1.0 - a * torch.cos(x) - b * torch.cos(2.0 * x)).detach().clamp_min(1e-12)
    x = x - (residual(x, a, b) - residual(x, ad, bd)) / slope
    cdf = (2.0 * x - p) / math.pi
    return cdf[..., 1:] - cdf[..., :-1]


# ----------------------------------------------------------------------------------------
# Angular (spectrally flat) terms
# ----------------------------------------------------------------------------------------


class AngularFactors(NamedTuple):
    """Spectrally flat 4SAIL terms, each of shape (...) in float64."""

    ks: torch.Tensor  # extinction coefficient, solar direction
    ko: torch.Tensor  # extinction coefficient, view direction
    bf: torch.Tensor  # LIDF-weighted cos² of leaf inclination
    sob: torch.Tensor  # backward scattering weight (leaf reflectance)
    sof: torch.Tensor  # forward scattering weight (leaf transmittance)
    tss: torch.Tensor  # direct transmittance, sun path
    too: torch.Tensor  # direct transmittance, view path
    tsstoo: torch.Tensor  # bidirectional gap probability with hot spot
    sumint: torch.Tensor  # hot-spot integral of single scattering


def _safe(mask: torch.Tensor, value: torch.Tensor, fill: float) -> torch.Tensor:
    return torch.where(mask, value, torch.full_like(value, fill))


def volume_scattering(tts, tto, psi, ttl):
    """Leaf interception (chi_s, chi_o) and bi-directional scattering weights (frho, ftau).

    All angles in radians; ``psi`` in [0, π]. Verhoef (1998), as in 4SAIL's ``volscatt``.
    """
    cts, sts = torch.cos(tts), torch.sin(tts)
    cto, sto = torch.cos(tto), torch.sin(tto)
    ctl, stl = torch.cos(ttl), torch.sin(ttl)
    cs, co = ctl * cts, ctl * cto
    ss, so = stl * sts, stl * sto

    has_ss = ss.abs() > 1e-6
    has_so = so.abs() > 1e-6
    cosbts = torch.where(has_ss, -cs / _safe(has_ss, ss, 1.0), torch.full_like(ss, 5.0))
    cosbto = torch.where(has_so, -co / _safe(has_so, so, 1.0), torch.full_like(so, 5.0))

    in_s = cosbts.abs() < 1.0
    bts = torch.where(in_s, torch.acos(_safe(in_s, cosbts, 0.0)), torch.full_like(cs, math.pi))
    ds = torch.where(in_s, ss, cs)
    chi_s = 2.0 / math.pi * ((bts - 0.5 * math.pi) * cs + torch.sin(bts) * ss)

    in_o = cosbto.abs() < 1.0
    upward = tto < 0.5 * math.pi
    bto_out = torch.where(upward, torch.full_like(co, math.pi), torch.zeros_like(co))
    bto = torch.where(in_o, torch.acos(_safe(in_o, cosbto, 0.0)), bto_out)
    do = torch.where(in_o, so, torch.where(upward, co, -co))
    chi_o = 2.0 / math.pi * ((bto - 0.5 * math.pi) * co + torch.sin(bto) * so)

    btran1 = (bts - bto).abs()
    btran2 = math.pi - (bts + bto - math.pi).abs()
    first = psi <= btran1
    second = psi <= btran2
    bt1 = torch.where(first, psi, btran1)
    bt2 = torch.where(first, btran1, torch.where(second, psi, btran2))
    bt3 = torch.where(first | second, btran2, psi)

    t1 = 2.0 * cs * co + ss * so * torch.cos(psi)
    t2 = torch.where(
        bt2 > 0.0,
        torch.sin(bt2) * (2.0 * ds * do + ss * so * torch.cos(bt1) * torch.cos(bt3)),
        torch.zeros_like(t1),
    )
    denom = 2.0 * math.pi**2
    frho = (((math.pi - bt2) * t1 + t2) / denom).clamp_min(0.0)
    ftau = ((-bt2 * t1 + t2) / denom).clamp_min(0.0)
    return chi_s, chi_o, frho, ftau


def _hotspot(lai, ks, ko, hspot, dso, tss):
    """Kuusk hot-spot: (tsstoo, sumint) by the 20-step exponential Simpson rule of 4SAIL."""
    has_hspot = hspot > 0.0
    alf = torch.where(
        has_hspot,
        (dso / _safe(has_hspot, hspot, 1.0)) * 2.0 / (ks + ko),
        torch.full_like(dso, 1e36),
    )
    pure = alf == 0.0  # exactly in the hot spot (dso = 0)
    alf = _safe(~pure, alf, 1.0)
    fhot = lai * torch.sqrt(ko * ks)
    fint = (1.0 - torch.exp(-alf)) * 0.05
    x1 = torch.zeros_like(alf)
    y1 = torch.zeros_like(alf)
    f1 = torch.ones_like(alf)
    sumint = torch.zeros_like(alf)
    for step in range(1, 21):
        x2 = -torch.log(1.0 - step * fint) / alf if step < 20 else torch.ones_like(alf)
        y2 = -(ko + ks) * lai * x2 + fhot * (1.0 - torch.exp(-alf * x2)) / alf
        dy = y2 - y1
        # (f2 - f1) / (y2 - y1) with f = exp(y), written stably: f1 * expm1(dy) / dy.
        big = dy.abs() > 1e-10
        ratio = torch.where(big, torch.expm1(dy) / _safe(big, dy, 1.0), 1.0 + 0.5 * dy)
        sumint = sumint + f1 * ratio * (x2 - x1)
        x1, y1, f1 = x2, y2, f1 * torch.exp(dy)
    has_lai = lai > 0.0
    pure_sumint = torch.where(
        has_lai, (1.0 - tss) / (ks * _safe(has_lai, lai, 1.0)), torch.ones_like(lai)
    )
    return torch.where(pure, tss, f1), torch.where(pure, pure_sumint, sumint)


def angular_factors(
    lidf: torch.Tensor,
    lai: torch.Tensor,
    hspot: torch.Tensor,
    tts: torch.Tensor,
    tto: torch.Tensor,
    psi: torch.Tensor,
) -> AngularFactors:
    """LIDF-weighted extinction/scattering coefficients and gap probabilities (float64).

    Angles in degrees; ``psi`` may be any value (folded into [0°, 180°]).
    """
    psi = (psi - 360.0 * torch.round(psi / 360.0)).abs()
    tts_r, tto_r, psi_r = (torch.deg2rad(v) for v in (tts, tto, psi))
    ttl = torch.as_tensor(np.radians(_LIDF_CENTRES_DEG), dtype=lidf.dtype, device=lidf.device)
    chi_s, chi_o, frho, ftau = volume_scattering(
        tts_r.unsqueeze(-1), tto_r.unsqueeze(-1), psi_r.unsqueeze(-1), ttl
    )
    cts, cto = torch.cos(tts_r), torch.cos(tto_r)
    ks = (lidf * chi_s).sum(-1) / cts
    ko = (lidf * chi_o).sum(-1) / cto
    bf = (lidf * torch.cos(ttl) ** 2).sum(-1)
    sob = (lidf * frho).sum(-1) * math.pi / (cts * cto)
    sof = (lidf * ftau).sum(-1) * math.pi / (cts * cto)

    tants, tanto = torch.tan(tts_r), torch.tan(tto_r)
    dso2 = tants**2 + tanto**2 - 2.0 * tants * tanto * torch.cos(psi_r)
    positive = dso2 > 0.0
    dso = torch.where(positive, torch.sqrt(_safe(positive, dso2, 1.0)), torch.zeros_like(dso2))

    tss = torch.exp(-ks * lai)
    too = torch.exp(-ko * lai)
    tsstoo, sumint = _hotspot(lai, ks, ko, hspot, dso, tss)
    return AngularFactors(ks, ko, bf, sob, sof, tss, too, tsstoo, sumint)


# ----------------------------------------------------------------------------------------
# Spectral part
# ----------------------------------------------------------------------------------------


class SailReflectance(NamedTuple):
    """4SAIL surface reflectance factors, each (..., n_wavelengths), unitless.

    rsot: bi-directional (sun -> view); rdot: hemispherical-directional;
    rsdt: directional-hemispherical; rddt: bi-hemispherical; ``reflectance``:
    the canopy reflectance seen by a sensor, (1 - skyl) * rsot + skyl * rdot.
    """

    rsot: torch.Tensor
    rdot: torch.Tensor
    rsdt: torch.Tensor
    rddt: torch.Tensor
    reflectance: torch.Tensor


def _j1(k, l, t, e_l, e_k, o: Scratch):
    """J1(k, l, t) = (exp(-l t) - exp(-k t)) / (k - l), with its limit for k ≈ l."""
    k_l = k - l
    if may_shortcut(k_l):
        nearest = (k_l.detach() * t.detach()).abs_().amin()
        if bool(nearest > 1e-3):  # eager, the usual case: no pair near the limit
            return o.div(e_l - e_k, k_l)
    delta = k_l * t
    far = delta.abs() > 1e-3
    ratio = (e_l - e_k) / _safe(far, k_l, 1.0)
    near = 0.5 * t * (e_k + e_l) * (1.0 - delta * delta / 12.0)
    return torch.where(far, ratio, near)


class CanopyLayer(NamedTuple):
    """Canopy-only (black soil) 4SAIL layer terms, each (..., n_wavelengths)."""

    rdd: torch.Tensor
    tdd: torch.Tensor
    rsd: torch.Tensor
    tsd: torch.Tensor
    rdo: torch.Tensor
    tdo: torch.Tensor
    rso: torch.Tensor


def _cast_factors(factors: AngularFactors, dtype: torch.dtype) -> AngularFactors:
    return AngularFactors(*(v.to(dtype).unsqueeze(-1) for v in factors))


def canopy_layer(
    rho: torch.Tensor, tau: torch.Tensor, lai: torch.Tensor, f: AngularFactors
) -> CanopyLayer:
    """Reflectances/transmittances of the vegetation layer alone (Verhoef 1984; 4SAIL).

    ``f`` holds angular factors already cast and unsqueezed to broadcast over wavelengths.
    """
    # Written with as few passes over (..., n_wavelengths) as possible (fused
    # multiply-adds, shared reciprocals and sub-expressions, temporaries reused through
    # ``o``): the eager path is bound by memory traffic.
    o = Scratch(rho, tau, lai, *f)
    lai = lai.to(rho.dtype).unsqueeze(-1)
    tiny = torch.finfo(rho.dtype).tiny
    one = rho.new_ones(())
    sdb, sdf = 0.5 * (f.ks + f.bf), 0.5 * (f.ks - f.bf)
    dob, dof = 0.5 * (f.ko + f.bf), 0.5 * (f.ko - f.bf)
    ddb, ddf = 0.5 * (1.0 + f.bf), 0.5 * (1.0 - f.bf)

    sigb = o.clamp_min(o.addcmul(ddb * rho, ddf, tau), tiny)
    att = 1.0 - o.addcmul(ddf * rho, ddb, tau)  # 1 - sigf (sigf >= 0)
    m = o.sqrt(o.clamp_min(o.mul(att + sigb, att - sigb), tiny))
    sb = o.addcmul(sdb * rho, sdf, tau)
    sf = o.addcmul(sdf * rho, sdb, tau)
    vb = o.addcmul(dob * rho, dof, tau)
    vf = o.addcmul(dof * rho, dob, tau)
    w = o.addcmul(f.sob * rho, f.sof, tau)

    e1 = o.exp(m * -lai)
    e2 = e1 * e1
    rinf = o.div(o.sub(att, m), sigb)
    rinf2 = rinf * rinf
    re = rinf * e1
    inv_denom = o.reciprocal(torch.addcmul(one, rinf2, e2, value=-1.0))

    j1ks = _j1(f.ks, m, lai, e1, f.tss, o)
    j1ko = _j1(f.ko, m, lai, e1, f.too, o)
    inv_ksm, inv_kom = o.reciprocal(f.ks + m), o.reciprocal(f.ko + m)
    j2ks = o.mul(torch.addcmul(one, f.tss, e1, value=-1.0), inv_ksm)
    j2ko = o.mul(torch.addcmul(one, f.too, e1, value=-1.0), inv_kom)

    s_up = torch.addcmul(sf, sb, rinf)  # sf + sb rinf
    s_down = o.addcmul(sb, sf, rinf)  # sf rinf + sb
    v_up = torch.addcmul(vf, vb, rinf)
    v_down = o.addcmul(vb, vf, rinf)
    ps, qs = s_up * j1ks, s_down * j2ks
    pv, qv = v_up * j1ko, v_down * j2ko

    one_minus_rinf2 = 1.0 - rinf2
    tdd = o.mul(one_minus_rinf2 * e1, inv_denom)
    rdd = o.mul(o.mul(1.0 - e2, rinf), inv_denom)
    tsd = o.mul(torch.addcmul(ps, re, qs, value=-1.0), inv_denom)
    rsd = o.mul(torch.addcmul(qs, re, ps, value=-1.0), inv_denom)
    tdo = o.mul(torch.addcmul(pv, re, qv, value=-1.0), inv_denom)
    rdo = o.mul(torch.addcmul(qv, re, pv, value=-1.0), inv_denom)

    z = (1.0 - f.tss * f.too) / (f.ks + f.ko)
    g1 = o.mul(torch.addcmul(z, j1ks, f.too, value=-1.0), inv_kom)
    g2 = o.mul(torch.addcmul(z, j1ko, f.tss, value=-1.0), inv_ksm)
    t1 = o.mul(o.mul(v_down, g1), s_up)
    t2 = o.mul(o.mul(v_up, g2), s_down)
    t3 = o.mul(o.addcmul(rdo * qs, tdo, ps), rinf)
    rsod = o.div(o.sub(o.add(t1, t2), t3), one_minus_rinf2)  # multiple scattering in the canopy
    rso = o.addcmul(rsod, w, lai * f.sumint)  # + single scattering, with hot spot

    return CanopyLayer(rdd, tdd, rsd, tsd, rdo, tdo, rso)


def sail_spectral(
    rho: torch.Tensor,
    tau: torch.Tensor,
    soil: torch.Tensor,
    lai: torch.Tensor,
    factors: AngularFactors,
    skyl: torch.Tensor | float = 0.0,
    out: tuple[torch.Tensor, ...] | None = None,
) -> SailReflectance:
    """Spectral 4SAIL given leaf reflectance/transmittance, soil reflectance (..., n_wl)
    and the angular factors. Scalars per sample are broadcast over the last dimension.

    ``out``: five tensors of the output shape (rsot, rdot, rsdt, rddt, reflectance) the
    terms are written into and returned (no copies; not under autograd)."""
    f = _cast_factors(factors, rho.dtype)
    rdd, tdd, rsd, tsd, rdo, tdo, rso = canopy_layer(rho, tau, lai, f)
    o = Scratch(rho, tau, soil, lai, *f)  # the layer terms are ours to overwrite
    tiny = torch.finfo(rho.dtype).tiny
    soil_rdd = soil * rdd
    soil_dn = o.mul(o.reciprocal(o.clamp_min(1.0 - soil_rdd, tiny)), soil)  # soil/(1-soil rdd)
    tdd_soil = tdd * soil_dn
    rsot_out, rdot_out, rsdt_out, rddt_out, reflectance_out = out or (None,) * 5
    rddt = torch.addcmul(rdd, tdd_soil, tdd, out=rddt_out)
    tsd_tss = tsd + f.tss
    rsdt = torch.addcmul(rsd, tsd_tss, tdd_soil, out=rsdt_out)
    down_up = o.mul(tsd_tss, tdo)  # (tss + tsd) tdo
    rdot = torch.addcmul(rdo, tdd_soil, o.add(tdo, f.too), out=rdot_out)
    rsodt = o.mul(o.addcmul(down_up, o.addcmul(tsd, f.tss, soil_rdd), f.too), soil_dn)
    rsot = torch.add(o.addcmul(rso, f.tsstoo, soil), rsodt, out=rsot_out)
    skyl_t = torch.as_tensor(skyl, dtype=rho.dtype, device=rho.device)
    skyl_t = skyl_t.unsqueeze(-1) if skyl_t.ndim else skyl_t
    reflectance = torch.lerp(rsot, rdot, skyl_t, out=reflectance_out)  # (1-skyl) rsot + skyl rdot
    return SailReflectance(rsot, rdot, rsdt, rddt, reflectance)


def canopy_absorptance(
    rho: torch.Tensor,
    tau: torch.Tensor,
    soil: torch.Tensor,
    lai: torch.Tensor,
    factors: AngularFactors,
) -> torch.Tensor:
    """Fraction of the direct solar irradiance absorbed by the canopy, (..., n_wavelengths).

    Energy balance of 4SAIL: absorbed = 1 - rsdt - (1 - soil) * E_soil with the direct +
    diffuse flux reaching the soil E_soil = (tss + tsd) / (1 - soil * rdd) (multiple
    soil-canopy reflections included). Averaged over 400–700 nm it is the instantaneous
    black-sky FAPAR at the sun zenith of ``factors``.
    """
    f = _cast_factors(factors, rho.dtype)
    rdd, tdd, rsd, tsd, _, _, _ = canopy_layer(rho, tau, lai, f)
    dn = (1.0 - soil * rdd).clamp_min(torch.finfo(rho.dtype).tiny)
    to_soil = (f.tss + tsd) / dn
    rsdt = rsd + to_soil * soil * tdd
    return 1.0 - rsdt - (1.0 - soil) * to_soil


def leaf_angle_distribution(
    lidf_type: LidfType, ala: torch.Tensor, lidfa: torch.Tensor, lidfb: torch.Tensor
) -> torch.Tensor:
    """LIDF class frequencies (..., 18) in float64 for the chosen distribution."""
    if lidf_type == "campbell":
        return lidf_campbell(ala.double())
    if lidf_type == "verhoef":
        return lidf_verhoef(lidfa.double(), lidfb.double())
    raise InvalidArgumentError(f"lidf_type must be 'campbell' or 'verhoef'; got {lidf_type!r}")
