"""Inputs in wrong units or shapes give clear errors, not confident wrong maps.

Each case is a mistake a user makes with real data: L2A digital numbers instead of
reflectance, Sentinel-1 in dB (``load_s1(db=True)``), angles in radians, one band
missing, a single variable name as a string, angle coordinates chunked unlike the bands.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

import xr_physcube  # noqa: F401  (registers the accessors)
from xr_physcube.cube.checks import MAX_REFLECTANCE, check_observations
from xr_physcube.io.demo import demo_scene
from xr_physcube.models import sail, sar
from xr_physcube.sensors.sentinel2 import BANDS

NAMES = ("B4", "VV", "tts", "theta", "ndvi")


def _row(**values: float) -> np.ndarray:
    base = {"B4": 0.05, "VV": 0.02, "tts": 35.0, "theta": 38.0, "ndvi": 0.7}
    return np.array([(base | values)[n] for n in NAMES], np.float32)[None, :]


def test_plausible_observations_and_nan_pass():
    check_observations(_row(), NAMES)
    check_observations(_row(B4=np.nan, VV=np.nan, tts=np.nan), NAMES)
    check_observations(_row(B4=1.4, ndvi=-5.0), NAMES)  # bright cloud edge; ndvi unchecked


@pytest.mark.parametrize(
    ("values", "pattern"),
    [
        ({"B4": 523.0}, r"B4 has values up to 523.*dn_to_reflectance"),
        ({"VV": -14.2}, r"VV has negative values.*not dB.*db_to_linear"),
        ({"tts": 95.0}, r"tts \(solar zenith angle\).*\[0, 80\] degree"),
        ({"theta": 80.0}, r"theta.*\[10, 70\] degree"),
        ({"tts": math.radians(35.0)}, r"tts.*radians"),
    ],
)
def test_wrong_units_raise_with_the_fix(values, pattern):
    with pytest.raises(ValueError, match=pattern):
        check_observations(_row(**values), NAMES)


def test_limits_come_from_their_owners():
    assert sail.TTS.upper == 80.0 and sar.THETA.lower == 10.0
    check_observations(_row(B4=MAX_REFLECTANCE, tts=80.0, theta=70.0), NAMES)
    with pytest.raises(ValueError):
        check_observations(_row(B4=MAX_REFLECTANCE + 0.01), NAMES)


@pytest.fixture(scope="module")
def scene():
    return demo_scene(size=16, seed=3, chunks=8)


def test_retrieve_rejects_digital_numbers_and_db(scene):
    cube = scene.cube
    dn = cube.assign({b: cube[b] * 10000 for b in BANDS})
    lazy = dn.physics.retrieve(["lai"])  # still lazy: the check runs per chunk
    with pytest.raises(ValueError, match="(?i)digital numbers"):
        lazy.compute()
    db = cube.assign(VV=10 * np.log10(cube.VV), VH=10 * np.log10(cube.VH))
    with pytest.raises(ValueError, match="not dB"):
        db.physics.retrieve(["mv"], model="pretrained-s1").compute()
    radians = cube.assign_coords(tts=np.radians(cube.tts))
    with pytest.raises(ValueError, match="radians"):
        radians.physics.retrieve(["lai"]).compute()


def test_retrieve_arguments_are_forgiving_and_errors_point_to_the_fix(scene):
    cube = scene.cube
    one = cube.physics.retrieve("lai", model="S2")  # a string, and any case of the name
    assert set(one.data_vars) == {"lai", "lai_std"}
    with pytest.raises(ValueError, match=r"cannot retrieve \['mv'\].*model='pretrained-s1'"):
        cube.physics.retrieve(["mv"])
    s1_only = cube[["VV", "VH"]].assign_coords(theta=cube.theta)
    with pytest.raises(ValueError, match=r"ndvi.*B4 and B8"):
        s1_only.physics.retrieve(["mv"], model="pretrained-s1")


def test_output_attrs_describe_the_outputs_not_the_inputs(scene):
    cube = scene.cube
    lai = cube.physics.retrieve(["lai"])
    assert "central_wavelength_nm" not in lai.lai.attrs  # was copied from B2
    assert lai.lai.attrs["units"] == "m2 m-2" and "valid_min" not in lai.lai_std.attrs
    latent = cube.vae.encode()
    assert latent.mv.attrs["valid_min"] > 0 and "valid_min" not in latent.mv_std.attrs
    assert "central_wavelength_nm" not in latent.lai.attrs
    params = xr.Dataset(
        {"lai": (("y", "x"), np.full((2, 2), 2.0, np.float32), {"valid_max": 10.0})},
        coords={"tts": 30.0, "tto": 0.0, "psi": 0.0},
    )
    simulated = params.physics.simulate()
    assert "valid_max" not in simulated.B4.attrs and simulated.B4.attrs["units"] == "1"


def test_vae_encode_refuses_partial_s2_and_db(scene):
    cube = scene.cube
    with pytest.raises(ValueError, match=r"missing \['B8A'\]"):
        cube.drop_vars("B8A").vae.encode()
    db = cube.assign(VV=10 * np.log10(cube.VV), VH=10 * np.log10(cube.VH))
    with pytest.raises(ValueError, match="not dB"):
        db.vae.encode().compute()


def test_angle_coordinates_chunked_unlike_the_bands(scene):
    cube = scene.cube
    per_pixel = (cube.B2.fillna(0) * 0 + cube.tts).transpose(*cube.B2.dims)
    same = cube.assign_coords(tts=per_pixel.chunk(cube.B2.chunksizes))
    other = cube.assign_coords(tts=per_pixel.chunk({"y": 5, "x": 3}))
    expected = same.physics.retrieve(["lai"]).lai.compute()
    xr.testing.assert_identical(other.physics.retrieve(["lai"]).lai.compute(), expected)
    assert np.isfinite(expected.values).any()
