"""IEM (Fung, Li & Chen 1992, IEEE TGRS 30(2):356-369) single-scattering backscatter.

Independent references written here in plain NumPy/Python:
* the IEM series as printed in Fung (1994), *Microwave Scattering and Emission Models and
  Their Applications*, ch. 4, and Ulaby & Long (2014), sect. 10.5 (term by term, with
  math.factorial, no log-space tricks);
* the small-perturbation model (Rice 1951; Ulaby, Moore & Fung 1982, *Microwave Remote
  Sensing* Vol. II, ch. 12): sigma_pp = 8 k^4 s^2 cos^4(theta) |alpha_pp|^2 W(2k sin theta),
  alpha_hh = (eps-1)/(cos + sqrt(eps - sin^2))^2,
  alpha_vv = (eps-1)(sin^2 - eps(1 + sin^2))/(eps cos + sqrt(eps - sin^2))^2,
  to which the IEM must reduce as ks -> 0 (Fung et al. 1992, sect. IV).
"""

import cmath
import math

import numpy as np
import pytest
import torch

from xr_physcube.models.iem import (
    CORR_LENGTH,
    IEM_PARAMETERS,
    Iem,
    IemParameters,
    iem,
    iem_backscatter,
)
from xr_physcube.models.sar import to_db

K_CM = 2 * math.pi * 5.405e9 / 299792458.0 / 100.0  # 1/cm


def _w(n, kl, big_k_l, acf):
    if acf == "exponential":
        return (kl / n) ** 2 * (1 + (big_k_l / n) ** 2) ** -1.5
    return kl**2 / (2 * n) * math.exp(-(big_k_l**2) / (4 * n))


def iem_reference(eps, ks, kl, theta, acf, n_terms=100):
    """Fung (1994) / Ulaby & Long (2014) single-scattering IEM, k = 1 units, one point."""
    c, s = math.cos(theta), math.sin(theta)
    q = cmath.sqrt(eps - s * s)
    rv = (eps * c - q) / (eps * c + q)
    rh = (c - q) / (c + q)
    fvv, fhh = 2 * rv / c, -2 * rh / c
    Fvv = (
        2
        * s
        * s
        * (1 + rv) ** 2
        / c
        * ((1 - 1 / eps) + (eps - s * s - eps * c * c) / (eps**2 * c * c))
    )
    Fhh = -2 * s * s * (1 + rh) ** 2 / c * ((1 - 1) + (eps - s * s - c * c) / (c * c))
    kz = c  # k = 1: ks and kl are then s and L
    out = []
    for f, F in ((fvv, Fvv), (fhh, Fhh)):
        total = 0.0
        for n in range(1, n_terms + 1):
            i_n = (2 * kz) ** n * f * math.exp(-(ks**2) * kz**2) + kz**n * F / 2
            total += ks ** (2 * n) / math.factorial(n) * abs(i_n) ** 2 * _w(n, kl, 2 * kl * s, acf)
        out.append(0.5 * math.exp(-2 * kz**2 * ks**2) * total)
    return out  # fmt: skip


def spm_reference(eps, ks, kl, theta, acf):
    c, s = math.cos(theta), math.sin(theta)
    q = cmath.sqrt(eps - s * s)
    a_hh = (eps - 1) / (c + q) ** 2
    a_vv = (eps - 1) * (s * s - eps * (1 + s * s)) / (eps * c + q) ** 2
    w = _w(1, kl, 2 * kl * s, acf)
    return [8 * ks**2 * c**4 * abs(a) ** 2 * w for a in (a_vv, a_hh)]


@pytest.mark.parametrize("acf", ["exponential", "gaussian"])
def test_iem_matches_independent_series(acf):
    rng = np.random.default_rng(3)
    n = 25
    eps = rng.uniform(4, 30, n) - 1j * rng.uniform(0.3, 5, n)
    ks, kl = rng.uniform(0.1, 3.0, n), rng.uniform(1.0, 15.0, n)
    theta = np.deg2rad(rng.uniform(20, 50, n))
    got = iem(torch.tensor(eps), torch.tensor(ks), torch.tensor(kl), torch.tensor(theta), acf, 100)
    ref = np.array([iem_reference(*args, acf) for args in zip(eps, ks, kl, theta, strict=True)])
    np.testing.assert_allclose(got.vv.numpy(), ref[:, 0], rtol=1e-9)
    np.testing.assert_allclose(got.hh.numpy(), ref[:, 1], rtol=1e-9)
    # the default 64 terms are converged for ks <= 3
    got40 = iem(torch.tensor(eps), torch.tensor(ks), torch.tensor(kl), torch.tensor(theta), acf)
    np.testing.assert_allclose(got40.vv.numpy(), ref[:, 0], rtol=1e-6)


@pytest.mark.parametrize("acf", ["exponential", "gaussian"])
@pytest.mark.parametrize("theta_deg", [25.0, 38.0, 45.0])
def test_iem_reduces_to_small_perturbation_model(acf, theta_deg):
    # Fung et al. (1992): for ks -> 0 the IEM tends to the SPM. At ks = 0.02 the
    # higher-order and exp(-ks^2) corrections are < 1e-3 relative.
    theta = math.radians(theta_deg)
    for eps in (5.0 - 0.5j, 15.0 - 2.0j, 25.0 - 4.0j):
        for kl in (0.5, 2.0):  # small kl keeps the Gaussian spectrum away from underflow
            got = iem(
                torch.tensor(eps, dtype=torch.complex128), torch.tensor(0.02, dtype=torch.float64),
                torch.tensor(kl, dtype=torch.float64), torch.tensor(theta, dtype=torch.float64),
                acf,
            )  # fmt: skip
            vv, hh = spm_reference(eps, 0.02, kl, theta, acf)
            assert got.vv.item() == pytest.approx(vv, rel=2e-3)
            assert got.hh.item() == pytest.approx(hh, rel=2e-3)
            assert vv > hh  # SPM: |alpha_vv| > |alpha_hh| at oblique incidence


def test_iem_increases_with_moisture_and_magnitudes_plausible():
    # Fresnel-like behaviour: wetter soil, higher permittivity, higher sigma0 (both pols).
    mv = torch.linspace(0.05, 0.4, 15, dtype=torch.float64)
    for theta in (30.0, 38.0, 45.0):
        for hrms in (0.3, 0.8, 1.5):
            r = iem_backscatter(mv=mv, hrms=hrms, corr_length=5.0, theta=theta)
            assert bool((r.vv.diff() > 0).all()) and bool((r.hh.diff() > 0).all())
            db = to_db(r)
            # Agricultural soils at C band, 30-45 deg: roughly -25..-3 dB
            # (e.g. Baghdadi et al. 2006 IJRS 27:805; Choker et al. 2017 Water 9:38).
            assert float(db.vv.min()) > -25.0 and float(db.vv.max()) < -3.0
    # Smooth surfaces: sigma0 increases with rms height (SPM regime, ks < 1).
    h = torch.linspace(0.1, 0.8, 10, dtype=torch.float64)
    r = iem_backscatter(mv=0.2, hrms=h, corr_length=5.0, theta=38.0)
    assert bool((r.vv.diff() > 0).all()) and bool((r.hh.diff() > 0).all())


def test_dielectric_choice_and_module():
    p = IemParameters(mv=torch.tensor([0.1, 0.3], dtype=torch.float64), hrms=0.8)
    a = Iem(acf="gaussian", dielectric="dobson")(p)
    b = iem_backscatter(p, acf="gaussian", dielectric="dobson")
    torch.testing.assert_close(a.vv, b.vv)
    c = iem_backscatter(p, acf="gaussian")
    assert not torch.allclose(b.vv, c.vv)  # hallikainen vs dobson differ a little
    assert torch.allclose(b.vv, c.vv, rtol=0.5)


def test_gradcheck():
    def f(mv, hrms, corr, theta):
        r = iem_backscatter(mv=mv, hrms=hrms, corr_length=corr, theta=theta, n_terms=20)
        return r.vv, r.hh

    args = (
        torch.tensor([0.1, 0.25], dtype=torch.float64, requires_grad=True),
        torch.tensor([0.5, 1.5], dtype=torch.float64, requires_grad=True),
        torch.tensor([4.0, 8.0], dtype=torch.float64, requires_grad=True),
        torch.tensor([32.0, 41.0], dtype=torch.float64, requires_grad=True),
    )
    assert torch.autograd.gradcheck(f, args)


def test_dtype_follows_inputs():
    r = iem_backscatter(mv=torch.tensor([0.2], dtype=torch.float32), hrms=1.0)
    assert r.vv.dtype == torch.float32 and r.hh.dtype == torch.float32
    r64 = iem_backscatter(mv=torch.tensor([0.2], dtype=torch.float64), hrms=1.0)
    assert r.vv.item() == pytest.approx(r64.vv.item(), rel=1e-4)


def test_validation_errors():
    with pytest.raises(ValueError, match="mv"):
        iem_backscatter(mv=float("nan"))
    with pytest.raises(ValueError, match="corr_length"):
        iem_backscatter(corr_length=100.0)
    with pytest.raises(ValueError, match="ks"):
        iem_backscatter(hrms=3.0)  # ks = 3.4 at 5.405 GHz
    with pytest.raises(ValueError, match="acf"):
        iem_backscatter(acf="fractal")
    with pytest.raises(ValueError, match="dielectric"):
        iem_backscatter(dielectric="topp")
    iem_backscatter(hrms=3.0, validate=False)  # opt-out
    assert CORR_LENGTH.units == "cm" and "corr_length" in IEM_PARAMETERS


def test_float32_series_does_not_overflow():
    # 2^n |f| grows past float32's range for n ~ 64; the series must stay finite.
    mv = torch.linspace(0.03, 0.49, 40)
    for hrms in (0.1, 0.5, 2.5):
        r = iem_backscatter(mv=mv, hrms=hrms, corr_length=5.0, theta=38.0)
        r64 = iem_backscatter(mv=mv.double(), hrms=hrms, corr_length=5.0, theta=38.0)
        assert bool(torch.isfinite(r.vv).all()) and bool(torch.isfinite(r.hh).all())
        np.testing.assert_allclose(r.vv.numpy(), r64.vv.numpy(), rtol=1e-4)
        np.testing.assert_allclose(r.hh.numpy(), r64.hh.numpy(), rtol=1e-4)
