"""Sentinel-2 sensor layer: SRFs, band convolution, L2A scaling, band bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xr_physcube.sensors import sentinel2 as s2

# Central wavelengths (nm) published by ESA (Sentinel-2 MSI User Guide, band table).
PUBLISHED_CENTRES = {
    "S2A": [
        442.7,
        492.4,
        559.8,
        664.6,
        704.1,
        740.5,
        782.8,
        832.8,
        864.7,
        945.1,
        1373.5,
        1613.7,
        2202.4,
    ],
    "S2B": [
        442.2,
        492.1,
        559.0,
        664.9,
        703.8,
        739.1,
        779.7,
        832.9,
        864.0,
        943.2,
        1376.9,
        1610.4,
        2185.7,
    ],
    # ESA S2 SRF document COPE-GSEG-EOPG-TN-15-0007 v4.0, S2C "equivalent wavelengths"
    "S2C": [444.2, 489.0, 560.6, 666.5, 707.1, 741.1, 784.7, 834.6, 865.6, 947.2, 1372.2]
    + [1612.0, 2191.3],
}


@pytest.mark.parametrize("satellite", ["S2A", "S2B", "S2C"])
def test_srf_centroids_match_published_central_wavelengths(satellite):
    srf = s2.spectral_response(satellite, s2.ALL_BAND_NAMES)
    assert srf.shape == (2101, 13) and (srf >= 0).all()
    centroid = (srf * s2.WAVELENGTHS_NM[:, None]).sum(0) / srf.sum(0)
    for name, c, ref in zip(s2.ALL_BAND_NAMES, centroid, PUBLISHED_CENTRES[satellite], strict=True):
        assert abs(c - ref) < 5.0, (satellite, name, c)


def test_band_convolution_of_flat_and_step_spectra():
    bands = s2.Sentinel2Bands()
    flat = torch.full((3, 2101), 0.37, dtype=torch.float64)
    assert torch.allclose(bands(flat), torch.full((3, 10), 0.37, dtype=torch.float64))
    step = torch.tensor((s2.WAVELENGTHS_NM > 1000).astype(float))  # 0 in VNIR, 1 in SWIR
    out = bands(step)
    assert list(out[:8].numpy()) == pytest.approx([0.0] * 8, abs=1e-12)
    assert list(out[8:].numpy()) == pytest.approx([1.0, 1.0], abs=1e-12)


def test_all_thirteen_bands_on_request_and_bad_band_names():
    assert s2.Sentinel2Bands(bands=s2.ALL_BAND_NAMES)(torch.zeros(2101)).shape == (13,)
    with pytest.raises(ValueError, match="B13"):
        s2.Sentinel2Bands(bands=("B2", "B13"))
    with pytest.raises(ValueError, match="2101"):
        s2.Sentinel2Bands()(torch.zeros(5, 2000))


def test_unknown_satellite_is_refused():
    with pytest.raises(ValueError, match="unknown satellite"):
        s2.spectral_response("S3A")
    assert s2.Sentinel2Bands("sentinel-2c")(torch.ones(2101)).shape == (10,)


def test_the_three_units_differ_slightly():
    a, b, c = (s2.spectral_response(sat) for sat in ("S2A", "S2B", "S2C"))
    assert not np.allclose(a, b) and not np.allclose(a, c) and not np.allclose(b, c)
    # the same flat spectrum gives the same band values whichever unit observes it
    flat = torch.full((2101,), 0.3, dtype=torch.float64)
    for sat in ("S2A", "S2B", "S2C"):
        assert np.allclose(s2.Sentinel2Bands(sat)(flat).numpy(), 0.3)


@pytest.mark.parametrize(
    ("baseline", "dn", "expected"),
    [
        ("04.00", 2000, (2000 - 1000) / 10000),  # PSD v14.9: BOA_ADD_OFFSET = -1000
        ("05.09", 1000, 0.0),
        ("02.09", 2000, 0.2),  # no offset before baseline 04.00
        (None, 1500, 0.05),  # unknown: current encoding
    ],
)
def test_l2a_scaling_by_processing_baseline(baseline, dn, expected):
    refl = s2.dn_to_reflectance(np.array([dn, 0], dtype=np.uint16), baseline)
    assert refl[0] == pytest.approx(expected, abs=1e-7)
    assert np.isnan(refl[1])  # DN 0 is no data
    back = s2.reflectance_to_dn(refl[:1], baseline)
    assert back[0] == dn


def test_bad_baseline_text():
    with pytest.raises(ValueError, match="processing baseline"):
        s2.boa_offset("baseline-four")


def test_band_list_is_owned_in_one_place():
    assert s2.BANDS == ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")
    assert set(s2.BANDS) <= set(s2.ALL_BAND_NAMES)
    assert all(c not in s2.SCL_INVALID for c in (4, 5))  # vegetation and bare soil are kept
