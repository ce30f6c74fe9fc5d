"""Every public entry point refuses inputs no model can read, or in the wrong units, with
the package's typed errors (all ``PhyscubeError`` and ``ValueError``): empty, complex,
object/text and 0-d arrays; reflectance as digital numbers or below the lowest L2A value,
angles in radians or out of bounds, latents outside the decoder's box. NaN stays the
masking: NaN rows give NaN outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import xarray as xr

import xr_physcube  # noqa: F401  (registers the accessors)
from xr_physcube.exceptions import (
    DimensionError,
    InputDtypeError,
    InputUnitsError,
    OutOfRangeError,
    PhyscubeError,
)
from xr_physcube.inverse.observations import MIN_REFLECTANCE
from xr_physcube.inverse.pretrained import load_pretrained
from xr_physcube.io.demo import demo_scene
from xr_physcube.models.canopy_variables import fcover
from xr_physcube.models.dielectric import hallikainen
from xr_physcube.models.iem import iem_backscatter
from xr_physcube.models.prosail import Prosail, ProsailParameters, prosail
from xr_physcube.models.prospect import prospect
from xr_physcube.models.safy import safy
from xr_physcube.models.sar import water_cloud_backscatter
from xr_physcube.models.soil_backscatter import bare_soil_backscatter
from xr_physcube.sensors.sentinel2 import dn_to_reflectance, reflectance_to_dn
from xr_physcube.vae.pretrained import load_pretrained as load_vae

S2_ROW = [0.03, 0.05, 0.04, 0.08, 0.2, 0.25, 0.3, 0.32, 0.2, 0.1, 35.0, 5.0, 100.0]
DAYS = np.full(40, 15.0)

ENTRY_POINTS = {
    "prosail": lambda v: prosail(lai=v),
    "Prosail module": lambda v: Prosail()(ProsailParameters(lai=v)),
    "water_cloud_backscatter": lambda v: water_cloud_backscatter(mv=v, lai=1.0),
    "oh": lambda v: bare_soil_backscatter(mv=v),
    "dubois": lambda v: bare_soil_backscatter(mv=v, soil_model="dubois"),
    "iem_backscatter": lambda v: iem_backscatter(mv=v),
    "safy parameters": lambda v: safy(DAYS, DAYS, d0=v),
    "prospect": lambda v: prospect(cab=v),
    "fcover": lambda v: fcover(v),
    "hallikainen": lambda v: hallikainen(v, 0.3, 0.2),
}
VALUE = {  # a valid value of the argument each entry point receives
    "prosail": 2.0, "Prosail module": 2.0, "water_cloud_backscatter": 0.2, "oh": 0.2,
    "dubois": 0.2, "iem_backscatter": 0.2, "safy parameters": 3.0, "prospect": 40.0,
    "fcover": 2.0, "hallikainen": 0.2,
}  # fmt: skip


def _typed(error, fn, match: str | None = None):
    with pytest.raises(error, match=match) as info:
        fn()
    assert isinstance(info.value, PhyscubeError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("empty", [torch.empty(0), np.empty((0, 3)), []])
def test_empty_arrays(entry, empty):
    _typed(DimensionError, lambda: ENTRY_POINTS[entry](empty), "empty")


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_complex_object_and_text_values(entry):
    v = VALUE[entry]
    _typed(InputDtypeError, lambda: ENTRY_POINTS[entry](np.array([v + 0.5j])), "complex")
    _typed(InputDtypeError, lambda: ENTRY_POINTS[entry](torch.tensor([v + 0j])), "complex")
    _typed(InputDtypeError, lambda: ENTRY_POINTS[entry](np.array([v], dtype=object)), "object")
    _typed(InputDtypeError, lambda: ENTRY_POINTS[entry](str(v)), "text")
    with pytest.raises(TypeError):  # also what NumPy users catch
        ENTRY_POINTS[entry](np.array([v], dtype=object))


def test_safy_forcings():
    _typed(DimensionError, lambda: safy(np.empty(0), np.empty(0)), "temperature.*empty")
    _typed(DimensionError, lambda: safy(np.empty((0, 40)), np.empty((0, 40))), "empty")
    _typed(InputDtypeError, lambda: safy(DAYS + 0j, DAYS), "temperature.*complex")
    _typed(InputDtypeError, lambda: safy(DAYS.astype(object), DAYS), "temperature")
    _typed(InputDtypeError, lambda: safy(DAYS + 0j, DAYS, validate=False), "complex")


def test_valid_inputs_still_run_and_scalars_are_fine():
    assert prosail(lai=2.0).reflectance.shape == (2101,)
    assert water_cloud_backscatter(mv=np.array([0.2, 0.3]), lai=1.0).vv.shape == (2,)
    assert safy(DAYS, DAYS, d0=3).glai.shape == (40,)


# --- the inverse networks outside the cube ------------------------------------------------


@pytest.fixture(scope="module")
def net():
    return load_pretrained("s2")


def _rows(**changes: float) -> torch.Tensor:
    x = torch.tensor([S2_ROW] * 3)
    names = list(load_pretrained("s2").input_names)
    for name, value in changes.items():
        x[:, names.index(name)] = value
    return x


def test_predict_refuses_digital_numbers(net):
    dn = torch.as_tensor(reflectance_to_dn(np.asarray(S2_ROW[:10]), "05.00"), dtype=torch.float32)
    x = _rows()
    x[:, :10] = dn
    _typed(InputUnitsError, lambda: net.predict(x), "digital numbers|dn_to_reflectance")


def test_predict_refuses_radians_and_out_of_range_angles(net):
    x = _rows()
    x[:, 10:] = torch.deg2rad(x[:, 10:])
    _typed(InputUnitsError, lambda: net.predict(x), "radians")
    _typed(OutOfRangeError, lambda: net.predict(_rows(tts=95.0)), r"tts.*\[0, 80\]")


def test_predict_refuses_negative_reflectance(net):
    _typed(InputUnitsError, lambda: net.predict(_rows(B4=-0.3)), "B4.*-0.3")
    # what L2A encodes over dark water (DN 1 with the 04.00 offset) still passes
    lowest = float(dn_to_reflectance(np.array([1]), "05.00")[0])
    assert lowest >= MIN_REFLECTANCE
    assert torch.isfinite(net.predict(_rows(B4=lowest))[0]).all()


def test_predict_shapes_and_dtypes(net):
    _typed(DimensionError, lambda: net.predict(torch.tensor(1.0)), "13 inputs")
    _typed(DimensionError, lambda: net.predict(torch.empty(0, 13)), "empty")
    _typed(InputDtypeError, lambda: net.predict(_rows().to(torch.complex64)), "complex")
    _typed(InputDtypeError, lambda: net.predict_numpy(np.array(S2_ROW, dtype=object)), "object")
    one = net.predict(np.asarray(S2_ROW))  # NumPy and one row (no batch dim) work
    assert one[0].shape == (8,)
    nan = _rows()
    nan[1] = math.nan
    mean, std = net.predict(nan)
    assert torch.isnan(mean[1]).all() and torch.isfinite(mean[[0, 2]]).all()


# --- the cube path -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cube():
    return demo_scene(size=4, seed=2, chunks=4).cube


def test_retrieve_refuses_negative_and_complex_bands(cube):
    with pytest.raises(InputUnitsError, match="B4.*down to"):
        cube.assign(B4=cube.B4 - 1.0).physics.retrieve(["lai"]).compute()
    with pytest.raises(InputDtypeError, match="B4.*complex"):
        cube.assign(B4=cube.B4.astype(np.complex64)).physics.retrieve(["lai"])
    with pytest.raises(InputDtypeError, match="B4"):
        cube.assign(B4=cube.B4.compute().astype(object)).physics.retrieve(["lai"])


@pytest.fixture(scope="module")
def latents(cube):
    vae = load_vae("pixel_hybrid")
    z = cube.vae.encode(vae).compute()
    z = z[list(vae.latent_names)].assign_coords({k: cube[k] for k in ("tts", "tto", "psi")})
    return vae, z


def test_decode_refuses_latents_outside_the_box(latents):
    vae, z = latents
    assert np.isfinite(z.vae.decode(vae).B8.values).any()  # its own posterior means pass
    with pytest.raises(OutOfRangeError, match=r"'lai'.*\[50, 50\].*\[0, 8\]"):
        z.assign(lai=z.lai * 0 + 50).vae.decode(vae).compute()


def test_decode_refuses_sun_below_the_horizon_and_radians(latents):
    vae, z = latents
    with pytest.raises(OutOfRangeError, match=r"tts.*95"):
        z.assign_coords(tts=z.tts * 0 + 95).vae.decode(vae).compute()
    with pytest.raises(InputUnitsError, match="radians"):
        z.assign_coords(tts=np.radians(z.tts)).vae.decode(vae).compute()


def test_decode_keeps_nan_as_the_mask(latents):
    vae, z = latents
    masked = z.assign(lai=z.lai.where(z.x > z.x.min()))
    out = masked.vae.decode(vae).B8.compute()
    first = out.isel(x=0)
    assert np.isnan(first.values).all() and np.isfinite(out.isel(x=1).values).all()
    assert isinstance(out, xr.DataArray)


# --- the STAC loaders ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bbox",
    [(1.30, 43.60, 1.26, 43.63), (1.26, 43.63, 1.30, 43.60), (1.0, 2.0, 3.0), (0, 0, 200, 1)],
)
def test_load_s2_refuses_a_bad_bbox_before_any_request(bbox):
    from xr_physcube.exceptions import InvalidArgumentError
    from xr_physcube.io.stac import load_s1, load_s2

    for load in (load_s2, load_s1):  # a closed port: nothing is contacted
        _typed(InvalidArgumentError, lambda load=load: load("http://127.0.0.1:9", bbox, "2024"))


def test_items_that_miss_the_bbox_are_no_items():
    import datetime as dt

    import pystac

    from xr_physcube.exceptions import StacSearchError
    from xr_physcube.io._search import search_items

    item = pystac.Item("a", None, [10.0, 50.0, 10.1, 50.1], dt.datetime(2024, 5, 1), {})
    assert search_items([item], "c", (10.05, 50.05, 10.2, 50.2), "2024") == [item]
    with pytest.raises(StacSearchError, match="no STAC item"):
        search_items([item], "c", (1.26, 43.60, 1.30, 43.63), "2024")


def test_an_empty_cube_is_refused_when_the_method_is_called(cube):
    empty = cube.isel(x=slice(0, 0))
    with pytest.raises(DimensionError, match=r"empty along \['x'\]"):
        empty.physics.retrieve(["lai"])
    with pytest.raises(DimensionError, match="empty"):
        empty.vae.encode("pixel_hybrid")
    from test_grow import forcing_cube

    with pytest.raises(DimensionError, match="empty"):
        forcing_cube(2, 2).isel(y=slice(0, 0)).physics.grow("tas", "rg")
