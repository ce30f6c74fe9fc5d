"""4SAIL / PROSAIL: gradients, geometry, LIDFs, validation, dtype/device, S2 bands."""

from __future__ import annotations

import dataclasses
import math
import shutil

import numpy as np
import pytest
import torch

from xr_physcube.exceptions import DimensionError, InvalidArgumentError
from xr_physcube.models.prosail import PROSAIL_PARAMETERS, Prosail, ProsailParameters, prosail
from xr_physcube.models.sail import (
    lidf_campbell,
    lidf_verhoef,
    soil_reflectance,
)
from xr_physcube.sensors.sentinel2 import BANDS, Sentinel2Bands

CONTINUOUS = tuple(PROSAIL_PARAMETERS)


def _interior(lidf_type: str, n: int = 2, seed: int = 3) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, spec in PROSAIL_PARAMETERS.items():
        u = 0.15 + 0.7 * torch.rand(n, generator=g, dtype=torch.float64)
        out[name] = spec.lower + u * (spec.upper - spec.lower)
    out["psi"] = out["psi"] * 0.45 + 10.0  # stay away from the folding kinks at 0/180
    out["lai"] = out["lai"].clamp(max=6.0)
    if lidf_type == "verhoef":
        out["lidfa"], out["lidfb"] = out["lidfa"] * 0.5, out["lidfb"] * 0.4
    return out


@pytest.mark.parametrize("lidf_type", ["campbell", "verhoef"])
def test_gradcheck_every_continuous_parameter(lidf_type):
    """d(S2 bands of rsot, rdot, rsdt, rddt, reflectance)/d(all 18 parameters), float64."""
    values = {k: v.requires_grad_(True) for k, v in _interior(lidf_type).items()}
    model = Prosail("D", lidf_type, sensor=Sentinel2Bands(), validate=False)
    names = list(values)

    def f(*xs):
        return tuple(model(ProsailParameters(**dict(zip(names, xs, strict=True)))))

    assert torch.autograd.gradcheck(f, tuple(values.values()), atol=1e-6, rtol=1e-4)


def test_gradients_reach_every_parameter_with_expected_signs():
    values = {k: v[:1].clone().requires_grad_(True) for k, v in _interior("campbell").items()}
    values["lai"] = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
    out = prosail(ProsailParameters(**values))
    wl = torch.arange(400, 2501)
    out.reflectance[0, wl == 860].sum().backward(retain_graph=True)
    assert values["lai"].grad.item() > 0  # NIR rises with LAI (dense canopy scatters)
    unused = {"lidfa", "lidfb"}  # the Campbell LIDF uses ``ala`` only
    assert all(v.grad is not None for k, v in values.items() if k not in unused)
    assert all(values[k].grad is None for k in unused)
    for v in values.values():
        v.grad = None
    out.reflectance[0, wl == 670].sum().backward()
    assert values["cab"].grad.item() < 0  # red falls with chlorophyll


def test_bare_soil_when_lai_is_zero():
    out = prosail(lai=0.0, psoil=0.3, rsoil=0.8, tts=35.0, tto=10.0, psi=40.0)
    soil = soil_reflectance(torch.tensor(0.3), torch.tensor(0.8), dtype=torch.float32)
    for term in (out.rsot, out.rdot, out.rsdt, out.rddt):
        assert torch.allclose(term, soil, atol=1e-6)


def test_relative_azimuth_folding_is_symmetric():
    """4SAIL folds psi into [0, 180] (Verhoef et al. 2007): psi and 360 - psi are equal."""
    a = prosail(psi=torch.tensor([30.0, 150.0]), tts=40.0, tto=30.0, hspot=0.2)
    b = prosail(psi=torch.tensor([330.0, 210.0]), tts=40.0, tto=30.0, hspot=0.2)
    assert torch.allclose(a.rsot, b.rsot, atol=1e-6)


def test_hotspot_backscatter_peak():
    """Kuusk (1991) hot spot: reflectance peaks when view = sun direction (psi 0, tto = tts)."""
    tto = torch.linspace(0.0, 60.0, 61)
    out = prosail(tts=30.0, tto=tto, psi=0.0, hspot=0.1, lai=3.0)
    nir = out.rsot[:, 460]  # 860 nm
    assert int(torch.argmax(nir)) == 30
    no_hotspot = prosail(tts=30.0, tto=30.0, psi=0.0, hspot=0.0, lai=3.0).rsot[460]
    assert nir[30] > no_hotspot


@pytest.mark.parametrize("ala", [10.0, 45.0, 57.0, 80.0])
def test_campbell_lidf_is_a_distribution_with_the_requested_mean(ala):
    f = lidf_campbell(torch.tensor(ala, dtype=torch.float64))
    assert f.sum().item() == pytest.approx(1.0, abs=1e-10) and bool((f >= 0).all())
    centres = torch.arange(2.5, 90.0, 5.0, dtype=torch.float64)
    assert float((f * centres).sum()) == pytest.approx(ala, abs=3.0)


def _verhoef(a: float, b: float) -> torch.Tensor:
    return lidf_verhoef(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64))


def test_verhoef_lidf_reproduces_its_defining_special_cases():
    """Verhoef (1998): (0, 0) is uniform; (-0.35, -0.15) approximates the spherical
    distribution F(θ) = 1 - cos θ; a -> -a mirrors the distribution about 45°."""
    edges = torch.deg2rad(torch.arange(0.0, 91.0, 5.0, dtype=torch.float64))
    uniform = _verhoef(0.0, 0.0)
    assert torch.allclose(uniform, torch.full((18,), 1 / 18, dtype=torch.float64), atol=1e-12)
    centres = torch.arange(2.5, 90.0, 5.0, dtype=torch.float64)
    spherical = torch.diff(1 - torch.cos(edges))  # mean leaf angle 57.3°
    assert float((_verhoef(-0.35, -0.15) * centres).sum()) == pytest.approx(
        float((spherical * centres).sum()), abs=0.5
    )
    for a, b in [(1.0, 0.0), (0.6, 0.3), (0.2, -0.5)]:
        f, mirrored = _verhoef(a, b), _verhoef(-a, b)
        assert f.sum().item() == pytest.approx(1.0, abs=1e-12) and bool((f >= 0).all())
        assert torch.allclose(f, mirrored.flip(-1), atol=1e-7)
    assert float((_verhoef(1.0, 0.0) * centres).sum()) < 30.0  # planophile
    assert float((_verhoef(-1.0, 0.0) * centres).sum()) > 60.0  # erectophile


def test_sky_fraction_mixes_direct_and_diffuse_terms():
    out = prosail(skyl=0.3, lai=2.5, tts=45.0)
    assert torch.allclose(out.reflectance, 0.7 * out.rsot + 0.3 * out.rdot, atol=1e-7)


def test_float32_matches_float64_and_device_follows_inputs():
    p64 = _interior("campbell", n=16)
    out64 = prosail(ProsailParameters(**p64))
    out32 = prosail(ProsailParameters(**{k: v.float() for k, v in p64.items()}))
    assert out32.rsot.dtype == torch.float32 and out32.rsot.device.type == "cpu"
    assert float((out32.rsot.double() - out64.rsot).abs().max()) < 1e-4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    p = _interior("verhoef", n=8)
    cpu = prosail(ProsailParameters(**p), lidf_type="verhoef")
    gpu = prosail(ProsailParameters(**{k: v.cuda() for k, v in p.items()}), lidf_type="verhoef")
    assert gpu.rsot.is_cuda
    assert torch.allclose(gpu.rsot.cpu(), cpu.rsot, atol=1e-10)


def test_chunking_does_not_change_results():
    p = ProsailParameters(**_interior("campbell", n=37))
    one = Prosail(chunk_size=4096)(p).rsot
    many = Prosail(chunk_size=5)(p).rsot
    assert torch.allclose(one, many, rtol=0, atol=1e-13)


def test_batch_shape_and_sentinel2_bands():
    lai = torch.linspace(0.5, 6, 12).reshape(3, 4)
    out = Prosail(sensor=Sentinel2Bands())(ProsailParameters(lai=lai))
    assert out.reflectance.shape == (3, 4, len(BANDS))
    full = prosail(lai=lai).reflectance
    srf = Sentinel2Bands()
    assert torch.allclose(out.reflectance, srf(full), atol=1e-7)
    nir, red = BANDS.index("B8"), BANDS.index("B4")
    ndvi = (out.reflectance[..., nir] - out.reflectance[..., red]) / (
        out.reflectance[..., nir] + out.reflectance[..., red]
    )
    assert bool((ndvi.flatten().diff() > 0).all())  # NDVI grows with LAI


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lai": 12.0}, r"'lai'.*\[0, 10\]"),
        ({"tts": float("nan")}, r"'tts'.*NaN"),
        ({"psoil": -0.1}, r"'psoil'"),
    ],
)
def test_bad_input_raises_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        prosail(**kwargs)


def test_verhoef_constraint_and_opt_out():
    with pytest.raises(ValueError, match=r"\|lidfa\| \+ \|lidfb\|"):
        prosail(lidfa=0.8, lidfb=0.5, lidf_type="verhoef")
    out = prosail(lai=11.0, validate=False)
    assert torch.isfinite(out.rsot).all()
    with pytest.raises(ValueError, match="lidf_type"):
        Prosail(lidf_type="spherical")


def test_soil_brightness_scales_bare_soil_linearly():
    a = soil_reflectance(torch.tensor(1.0), torch.tensor(0.5), dtype=torch.float64)
    b = soil_reflectance(torch.tensor(1.0), torch.tensor(1.0), dtype=torch.float64)
    assert torch.allclose(2 * a, b)
    assert float(b.min()) > 0.0 and float(b.max()) < 1.0 and not math.isnan(float(b.sum()))
    assert np.all(np.isfinite(b.numpy()))


def test_spectral_step_trades_accuracy_for_speed_within_bounds():
    p = ProsailParameters(**_interior("campbell", n=64, seed=5))
    full = Prosail(sensor=Sentinel2Bands())(p).reflectance
    coarse = Prosail(sensor=Sentinel2Bands(spectral_step=2), spectral_step=2)(p).reflectance
    assert float((coarse - full).abs().max()) < 5e-4
    assert Prosail(spectral_step=10)(p).reflectance.shape == (64, 211)
    with pytest.raises(ValueError, match="same step"):
        Prosail(sensor=Sentinel2Bands(), spectral_step=5)


@pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None,
    reason="torch.compile on CPU needs a C++ compiler",
)
def test_compiled_core_equals_eager():
    p = ProsailParameters(**{k: v.float() for k, v in _interior("verhoef", n=40, seed=9).items()})
    eager = Prosail(lidf_type="verhoef", chunk_size=32)(p)
    compiled = Prosail(lidf_type="verhoef", chunk_size=32, compile=True)(p)  # 2 chunks, padded
    for a, b in zip(eager, compiled, strict=True):
        assert a.shape == b.shape and float((a - b).abs().max()) < 1e-4
    # band outputs take the other compiled path (per-chunk outputs, not a written buffer)
    bands = Sentinel2Bands()
    eager_bands = Prosail(lidf_type="verhoef", sensor=bands)(p).reflectance
    compiled_bands = Prosail(lidf_type="verhoef", sensor=bands, chunk_size=32, compile=True)(p)
    assert float((compiled_bands.reflectance - eager_bands).abs().max()) < 1e-4
    # a parameter other than LAI requiring grad takes the autograd path: same gradients
    grads = []
    for model in (
        Prosail(lidf_type="verhoef", chunk_size=32),
        Prosail(lidf_type="verhoef", chunk_size=32, compile=True),
    ):
        cab = p.cab.clone().requires_grad_(True)
        model(dataclasses.replace(p, cab=cab)).reflectance.sum().backward()
        grads.append(cab.grad)
    assert float((grads[0] - grads[1]).abs().max()) < 1e-3 * float(grads[0].abs().max())


@pytest.mark.parametrize("name", ["S2A", "s2b", "S2C"])
def test_sensor_given_as_satellite_name_equals_its_band_model(name):
    params = ProsailParameters(lai=torch.tensor([1.0, 3.0], dtype=torch.float64))
    by_name = Prosail(sensor=name)(params).reflectance
    by_module = Prosail(sensor=Sentinel2Bands(name.upper()))(params).reflectance
    assert by_name.shape == (2, len(BANDS))
    torch.testing.assert_close(by_name, by_module, rtol=0, atol=0)


def test_sensor_of_wrong_kind_raises_clear_error():
    with pytest.raises(TypeError, match="callable band model.*S2A.*got int"):
        Prosail(sensor=3)
    with pytest.raises(ValueError, match="'landsat'.*S2A"):
        Prosail(sensor="landsat")


def test_numpy_float64_inputs_give_float64_outputs():
    lai = np.array([0.5, 2.0])
    out = prosail(lai=lai, cab=np.array(50.0)).reflectance
    assert out.dtype == torch.float64
    ref = prosail(lai=torch.from_numpy(lai), cab=torch.tensor(50.0, dtype=torch.float64))
    torch.testing.assert_close(out, ref.reflectance, rtol=0, atol=0)
    # Python floats and lists keep PyTorch's default dtype; float32 arrays stay float32.
    assert prosail(lai=[0.5, 2.0]).reflectance.dtype == torch.get_default_dtype()
    assert prosail(lai=lai.astype(np.float32)).reflectance.dtype == torch.float32


def test_help_lists_units_ranges_and_defaults_of_every_field():
    doc = ProsailParameters.__doc__
    for name, spec in PROSAIL_PARAMETERS.items():
        line = next(ln for ln in doc.splitlines() if ln.strip().startswith(f"{name}:"))
        assert spec.long_name in line and f"[{spec.lower:g}, {spec.upper:g}]" in line
        assert f"default {spec.default:g}" in line
    assert "lai: leaf area index — units m2 m-2, range [0, 10]" in doc
    forward_doc = Prosail.forward.__doc__
    assert forward_doc is not None and "SailReflectance" in forward_doc
    assert "Define the computation" not in forward_doc  # not torch's inherited text


def _random_draws(n: int = 300, seed: int = 3) -> ProsailParameters:
    g = torch.Generator().manual_seed(seed)
    unit = {name: torch.rand(n, generator=g, dtype=torch.float64) for name in PROSAIL_PARAMETERS}
    values = {k: s.lower + (s.upper - s.lower) * unit[k] for k, s in PROSAIL_PARAMETERS.items()}
    return ProsailParameters(**values)


def test_band_mode_equals_the_full_convolution_within_its_bound():
    from xr_physcube.sensors.sentinel2 import BAND_MODE_STEP, Sentinel2Bands, srf_weights

    params = _random_draws()
    full = Prosail()(params).reflectance @ srf_weights(dtype=torch.float64)
    support = Prosail(sensor=Sentinel2Bands(band_step=1))
    assert support.wavelength_index.numel() == 745  # only where an SRF is non-zero
    torch.testing.assert_close(support(params).reflectance, full, rtol=0, atol=1e-12)
    auto = Prosail(sensor=Sentinel2Bands())  # a 1 nm S2 sensor runs on the support too
    assert auto.wavelength_index.numel() == 745
    band = Prosail(sensor=Sentinel2Bands(band_step=BAND_MODE_STEP))
    uniform = Prosail(sensor=Sentinel2Bands(band_step=3))
    assert band.wavelength_index.numel() < 0.5 * uniform.wavelength_index.numel() < 150
    error = (band(params).reflectance - full).abs().max()
    assert 1e-6 < error <= 1e-3  # approximate, and within the documented bound
    weights = band.sensor.weights
    torch.testing.assert_close(weights.sum(0), torch.ones(10, dtype=weights.dtype))


def test_band_mode_is_differentiable_and_checks_its_input():
    from xr_physcube.sensors.sentinel2 import Sentinel2Bands

    lai = torch.full((4,), 2.0, dtype=torch.float64, requires_grad=True)
    band = Prosail(sensor=Sentinel2Bands(band_step=5))
    band(ProsailParameters(lai=lai)).reflectance[..., 6].sum().backward()  # B8 rises with LAI
    assert (lai.grad > 0).all()
    with pytest.raises(DimensionError, match="band-mode grid"):
        Sentinel2Bands(band_step=5)(torch.zeros(2101))
    with pytest.raises(InvalidArgumentError, match="band_step"):
        Sentinel2Bands(band_step=0)
    with pytest.raises(InvalidArgumentError, match=r"no step for band\(s\) \['B12'\]"):
        Sentinel2Bands(band_step={b: 4 for b in BANDS if b != "B12"})
    with pytest.raises(InvalidArgumentError, match="whole numbers"):
        Sentinel2Bands(band_step={**{b: 4 for b in BANDS}, "B5": 2.5})


def test_band_steps_per_band_place_wavelengths_per_band():
    """A step per band: each band's support sampled at its own step (B12 at 15 nm keeps
    fewer of its wavelengths than at 3 nm), and one step for all equals the int form."""
    from xr_physcube.sensors.sentinel2 import Sentinel2Bands, band_support_grid

    same = {b: 3 for b in BANDS}
    for a, b in zip(band_support_grid(step=3), band_support_grid(step=same), strict=True):
        np.testing.assert_array_equal(a, b)
    coarse_swir = Sentinel2Bands(band_step={**same, "B12": 15})
    assert coarse_swir.band_step == {**same, "B12": 15}
    fine = Sentinel2Bands(band_step=3)
    b12 = BANDS.index("B12")
    kept = lambda s: int((s.weights[:, b12] > 0).sum())  # noqa: E731
    assert kept(coarse_swir) < kept(fine) / 4
