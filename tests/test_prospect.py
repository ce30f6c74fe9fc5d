"""PROSPECT-D / PROSPECT-5: differentiability, validation, dtypes and published behaviour."""

from __future__ import annotations

import pytest
import torch

from xr_physcube.models._special import leaf_layer_transmission
from xr_physcube.models.prospect import LEAF_PARAMETERS, LeafParameters, Prospect, prospect

CONTINUOUS = ("N", "cab", "car", "anth", "cbrown", "cw", "cm")


def _interior(dtype=torch.float64, n=2, requires_grad=False) -> dict[str, torch.Tensor]:
    """Random values strictly inside the bounds (away from the kinks at 0)."""
    g = torch.Generator().manual_seed(1)
    out = {}
    for name in CONTINUOUS:
        spec = LEAF_PARAMETERS[name]
        u = 0.2 + 0.6 * torch.rand(n, generator=g, dtype=dtype)
        out[name] = (spec.lower + u * (spec.upper - spec.lower)).requires_grad_(requires_grad)
    return out


@pytest.mark.parametrize("version", ["D", "5"])
def test_gradcheck_every_leaf_parameter(version):
    p = _interior(requires_grad=True)
    names = [n for n in CONTINUOUS if version == "D" or n != "anth"]

    def f(*values):
        kw = dict(zip(names, values, strict=True))
        out = prospect(LeafParameters(**kw), version=version, validate=False)
        # every 10th wavelength keeps the Jacobian small; all absorption regimes are hit
        return out.reflectance[..., ::10], out.transmittance[..., ::10]

    assert torch.autograd.gradcheck(f, tuple(p[n] for n in names), atol=1e-6, rtol=1e-4)


def test_exponential_integral_layer_transmission_against_quadrature():
    """tau(k) = (1-k) e^-k + k^2 E1(k), with E1 from an independent trapezoid quadrature."""
    k = torch.tensor([1e-8, 1e-4, 0.01, 0.3, 1.0, 4.0, 25.0, 150.0, 400.0], dtype=torch.float64)
    # E1(k) = int_0^1 exp(-k/u)/u du (substitution t = k/u), on a fine grid
    u = torch.linspace(1e-12, 1.0, 2_000_001, dtype=torch.float64)[:, None]
    # integrand; near u -> 0 it vanishes for k > 0
    integrand = torch.exp(-k / u) / u
    e1 = torch.trapezoid(integrand, u, dim=0)
    expected = (1 - k) * torch.exp(-k) + k**2 * e1
    got = leaf_layer_transmission(k)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-12)
    assert got[0] == pytest.approx(1.0, abs=1e-6)  # no absorption: fully transparent
    assert 0 <= float(got[-1]) < 1e-150  # opaque limit


def test_energy_conservation_and_dtypes():
    p = _interior(dtype=torch.float32, n=5)
    out32 = Prospect("D")(LeafParameters(**p))
    out64 = Prospect("D")(LeafParameters(**{k: v.double() for k, v in p.items()}))
    assert out32.reflectance.dtype == torch.float32 and out32.reflectance.shape == (5, 2101)
    assert out64.reflectance.dtype == torch.float64
    total = out64.reflectance + out64.transmittance
    assert bool(((total > 0) & (total <= 1)).all())
    assert torch.allclose(out32.reflectance.double(), out64.reflectance, atol=1e-5)


def test_chlorophyll_and_water_absorption_bands():
    """Jacquemoud & Baret (1990): Cab lowers visible reflectance (max effect ~550-700 nm),
    Cw lowers SWIR reflectance (1450/1940 nm water bands), NIR plateau untouched by Cab."""
    wl = torch.arange(400, 2501)
    low, high = prospect(cab=10.0), prospect(cab=80.0)
    diff = low.reflectance - high.reflectance
    assert diff[wl == 550].item() > 0.05
    assert abs(diff[wl == 850].item()) < 1e-3
    dry, wet = prospect(cw=0.002), prospect(cw=0.04)
    assert (dry.reflectance - wet.reflectance)[wl == 1940].item() > 0.1
    # green peak: reflectance at 550 nm above 450 nm and 670 nm for a green leaf
    r = prospect(cab=40.0).reflectance
    assert r[wl == 550] > r[wl == 450] and r[wl == 550] > r[wl == 670]


def test_anthocyanins_only_in_prospect_d():
    base = prospect(anth=0.0).reflectance
    red = prospect(anth=20.0).reflectance
    wl = torch.arange(400, 2501)
    assert (base - red)[wl == 550].item() > 0.01  # anthocyanin absorption peak ~550 nm
    with pytest.raises(ValueError, match="anth"):
        prospect(anth=5.0, version="5")


@pytest.mark.parametrize(
    ("name", "value"), [("cab", 130.0), ("N", 0.5), ("cw", -0.01), ("cm", float("nan"))]
)
def test_bad_input_names_parameter_and_range(name, value):
    spec = LEAF_PARAMETERS[name]
    with pytest.raises(ValueError) as err:
        prospect(**{name: torch.tensor([1.0, value]) if name == "N" else value})
    assert f"'{name}'" in str(err.value) and spec.range_text in str(err.value)


def test_validation_can_be_switched_off_for_fitting():
    out = prospect(cab=130.0, validate=False)
    assert torch.isfinite(out.reflectance).all()


def test_batch_shapes_broadcast():
    out = prospect(cab=torch.linspace(10, 60, 6).reshape(2, 3), cw=torch.tensor([0.01, 0.02, 0.03]))
    assert out.reflectance.shape == (2, 3, 2101)
    with pytest.raises(ValueError, match="broadcast"):
        prospect(cab=torch.ones(4), cw=torch.full((3,), 0.01))


def test_unknown_version():
    with pytest.raises(ValueError, match="version"):
        Prospect("7")
