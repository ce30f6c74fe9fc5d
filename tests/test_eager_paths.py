"""The eager PROSAIL fast paths (temporaries overwritten in place without autograd, outputs
written straight into their tensors, shortcuts for the usual no-edge-case batches) give
what the differentiable path gives, and their edge cases still take the exact branches."""

from __future__ import annotations

import math

import pytest
import torch

from xr_physcube.models import _special, prospect, sail
from xr_physcube.models._scratch import Scratch, may_shortcut
from xr_physcube.models.prosail import PROSAIL_PARAMETERS, Prosail, ProsailParameters
from xr_physcube.models.prospect import LeafParameters, Prospect
from xr_physcube.models.sail import _j1
from xr_physcube.sensors.sentinel2 import BAND_MODE_STEP, Sentinel2Bands


def _random(n: int, dtype: torch.dtype, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, spec in PROSAIL_PARAMETERS.items():
        u = torch.rand(n, generator=g, dtype=torch.float64)
        out[name] = (spec.lower + u * (spec.upper - spec.lower)).to(dtype)
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("sensor", [None, "band"])
def test_no_grad_path_equals_the_autograd_path(dtype, sensor):
    model = Prosail(
        sensor=None if sensor is None else Sentinel2Bands(band_step=BAND_MODE_STEP), chunk_size=64
    )
    values = _random(150, dtype)  # three chunks, the last one partial
    before = {k: v.clone() for k, v in values.items()}
    with torch.no_grad():
        fast = model(ProsailParameters(**values))
    assert all(torch.equal(values[k], before[k]) for k in values)  # inputs never overwritten
    leaves = {k: v.clone().requires_grad_(True) for k, v in values.items()}
    recorded = model(ProsailParameters(**leaves))
    assert recorded.reflectance.requires_grad and not fast.reflectance.requires_grad
    for got, want in zip(fast, recorded, strict=True):
        # same operations in the same order: equal to the last bit, or within a few ulps
        # where a fused in-place kernel rounds differently
        assert torch.allclose(got, want.detach(), rtol=8 * torch.finfo(dtype).eps, atol=0)


def test_full_spectrum_terms_are_separate_tensors():
    with torch.no_grad():
        out = Prosail(chunk_size=64)(ProsailParameters(**_random(100, torch.float32)))
    storages = {term.untyped_storage().data_ptr() for term in out}
    assert len(storages) == 5  # keeping one term does not keep the others' memory alive
    assert all(term.is_contiguous() and term.shape == (100, 2101) for term in out)


def test_a_lossless_leaf_takes_the_exact_branch_and_changes_nothing_else():
    values = _random(4, torch.float64, seed=1)
    leaf = {k: values[k] for k in LeafParameters.parameter_set()}
    alone = Prospect("D")(LeafParameters(**leaf))
    for name in ("cab", "car", "anth", "cbrown", "cw", "cm"):
        leaf[name] = leaf[name].clone()
        leaf[name][0] = 0.0  # no absorber at all: k = 0, r + t = 1 at every wavelength
    mixed = Prospect("D")(LeafParameters(**leaf))
    total = mixed.reflectance[0] + mixed.transmittance[0]
    assert torch.allclose(total, torch.ones_like(total), atol=1e-12)
    assert torch.isfinite(mixed.reflectance).all() and (mixed.transmittance[0] > 0).all()
    assert torch.equal(mixed.reflectance[1:], alone.reflectance[1:])
    assert torch.equal(mixed.transmittance[1:], alone.transmittance[1:])


def test_j1_near_its_limit_and_far_from_it():
    k = torch.tensor([[1.0]], dtype=torch.float64)
    t = torch.tensor([[2.0]], dtype=torch.float64)
    for inplace in (True, False):
        ops = Scratch()
        ops.inplace = inplace
        for gap in (0.3, 1e-2, 1e-4, 1e-7):  # (k - l) t: far, far, near, near
            l = k + gap  # noqa: E741 (the paper's name)
            e_l, e_k = torch.exp(-l * t), torch.exp(-k * t)
            got = float(_j1(k, l, t, e_l, e_k, ops))
            delta = float((k - l) * t)
            want = float(t * e_l) * -math.expm1(-delta) / delta  # same function, no cancellation
            assert got == pytest.approx(want, rel=1e-9)


def test_scratch_writes_in_place_only_without_autograd():
    a = torch.ones(3)
    assert Scratch(a).mul(a, 2.0) is a and a[0] == 2.0
    x = torch.ones(3, requires_grad=True)
    y = x * 1.0
    assert Scratch(x).mul(y, 2.0) is not y  # the graph needs y unchanged
    with torch.no_grad():
        assert Scratch(x).mul(y, 2.0) is y


def test_without_shortcuts_the_exact_branches_give_the_same_spectra(monkeypatch):
    """What a GPU computes (no shortcut, no host read-back) equals the CPU shortcuts."""
    values = _random(200, torch.float32, seed=2)
    model = Prosail(chunk_size=64)
    with torch.no_grad():
        fast = model(ProsailParameters(**values))
        for module in (_special, prospect, sail):
            monkeypatch.setattr(module, "may_shortcut", lambda x: False)
        exact = model(ProsailParameters(**values))
    for got, want in zip(fast, exact, strict=True):
        assert torch.allclose(got, want, rtol=1e-6, atol=1e-7)


def test_shortcuts_only_eager_on_cpu_and_non_empty():
    assert may_shortcut(torch.ones(3))
    assert not may_shortcut(torch.ones(0))
    assert not may_shortcut(torch.ones(3, device="meta"))


def test_public_spectral_functions_leave_their_inputs_alone():
    values = _random(8, torch.float64, seed=3)
    leaf = Prospect("D")(LeafParameters(**{k: values[k] for k in LeafParameters.parameter_set()}))
    rho, tau = leaf.reflectance.clone(), leaf.transmittance.clone()
    soil = torch.full_like(rho, 0.2)
    lidf = sail.leaf_angle_distribution("campbell", values["ala"], values["lidfa"], values["lidfb"])
    angles = (values[k] for k in ("lai", "hspot", "tts", "tto", "psi"))
    factors = sail.angular_factors(lidf, *angles)
    copies = [x.clone() for x in (rho, tau, soil, *factors)]
    with torch.no_grad():
        sail.sail_spectral(rho, tau, soil, values["lai"], factors, values["skyl"])
        prospect.plate_optics(tau, values["N"], Prospect("D").interface)
    for x, copy in zip((rho, tau, soil, *factors), copies, strict=True):
        assert torch.equal(x, copy)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_one_plate_is_the_elementary_layer_even_when_opaque(dtype):
    interface = Prospect("D").interface.to(dtype)
    t_alpha, r_alpha, t12, r12, t21, r21 = interface
    tau = torch.tensor([0.0, 1e-30, 0.3, 0.9, 1.0], dtype=dtype)[:, None].expand(5, 2101)
    optics = prospect.plate_optics(tau, torch.ones(5, dtype=dtype), interface)
    ta = t_alpha * tau * t21 / (1 - r21 * r21 * tau * tau)
    assert torch.isfinite(optics.reflectance).all() and torch.isfinite(optics.transmittance).all()
    assert torch.allclose(optics.transmittance, ta, atol=1e-6)
    assert torch.allclose(optics.reflectance, r_alpha + r21 * tau * ta, atol=1e-6)
