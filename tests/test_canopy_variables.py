"""FCOVER and FAPAR from 4SAIL against closed forms (Weiss & Baret 2016; Ross 1981)."""

from __future__ import annotations

import math

import pytest
import torch

from xr_physcube.models.canopy_variables import fapar, fcover
from xr_physcube.models.prosail import ProsailParameters
from xr_physcube.models.sail import angular_factors, canopy_absorptance, lidf_verhoef


def test_fcover_spherical_canopy_closed_form():
    """Spherical LIDF: G = 0.5 in every direction, so FCOVER = 1 - exp(-LAI/2) (Ross 1981)."""
    lai = torch.tensor([0.0, 0.5, 1.0, 2.0, 4.0, 8.0], dtype=torch.float64)
    got = fcover(lai, lidfa=-0.35, lidfb=-0.15, lidf_type="verhoef")
    expected = 1.0 - torch.exp(-0.5 * lai)
    assert torch.allclose(got, expected, atol=0.02)
    assert got[0] == 0.0 and bool((got.diff() > 0).all())


def test_planophile_covers_more_than_erectophile():
    lai = torch.tensor(2.0, dtype=torch.float64)
    assert fcover(lai, ala=20.0) > fcover(lai, ala=70.0)


def test_black_leaves_and_soil_absorb_everything_intercepted():
    """rho = tau = soil = 0: absorptance = 1 - P_gap(sun) = 1 - exp(-k_s LAI)."""
    lidf = lidf_verhoef(torch.tensor([-0.35], dtype=torch.float64), torch.tensor([-0.15]).double())
    lai = torch.tensor([3.0], dtype=torch.float64)
    tts = torch.tensor([40.0], dtype=torch.float64)
    zero = torch.zeros(1, dtype=torch.float64)
    f = angular_factors(lidf, lai, zero + 0.05, tts, zero, zero)
    black = torch.zeros(1, 5, dtype=torch.float64)
    a = canopy_absorptance(black, black, black, lai, f)
    expected = 1.0 - math.exp(-0.5 / math.cos(math.radians(40.0)) * 3.0)
    assert torch.allclose(a, torch.full_like(a, expected), atol=0.01)


def test_fapar_bounds_and_monotone_in_lai():
    lai = torch.linspace(0.0, 7.0, 8, dtype=torch.float64)
    f = fapar(ProsailParameters(lai=lai, tts=30.0))
    assert f[0] == pytest.approx(0.0, abs=1e-9)
    assert bool((f.diff() > 0).all()) and float(f.max()) < 1.0 and float(f[-1]) > 0.85
    # green leaves absorb most PAR: with LAI 3, FAPAR exceeds FCOVER at low sun (longer path)
    p = ProsailParameters(lai=torch.tensor(3.0, dtype=torch.float64), tts=60.0)
    assert fapar(p) > fcover(torch.tensor(3.0, dtype=torch.float64))
