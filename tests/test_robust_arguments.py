"""Every public numeric argument is checked at the call: a count below 1, a non-positive
frequency or learning rate, a fraction out of (0, 1) ends in an ``InvalidArgumentError``
(a ``PhyscubeError`` and a ``ValueError``) naming the argument and its valid range,
never in all-NaN results, a silent default or an internal error."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import xr_physcube  # noqa: F401  (registers the accessors)
from xr_physcube.exceptions import InvalidArgumentError, PhyscubeError
from xr_physcube.inverse.pretrained import load_pretrained, train_pretrained
from xr_physcube.inverse.train import fit as fit_inverse
from xr_physcube.io.demo import demo_scene
from xr_physcube.io.demo_season import demo_season
from xr_physcube.models.iem import Iem, iem, iem_backscatter
from xr_physcube.models.prosail import Prosail
from xr_physcube.models.safy import Safy, safy
from xr_physcube.models.soil_backscatter import bare_soil_backscatter
from xr_physcube.vae.model import PhysVAE
from xr_physcube.validation import non_negative_float, positive_float, positive_int

BAD_COUNTS = [0, -1, 2.5, True, "3", None]


@pytest.fixture(scope="module")
def cube():
    return demo_scene(size=4, seed=1, chunks=4).cube


def _raises(fn, name: str):
    with pytest.raises(InvalidArgumentError, match=name) as info:
        fn()
    assert isinstance(info.value, PhyscubeError) and isinstance(info.value, ValueError)
    return str(info.value)


@pytest.mark.parametrize("value", BAD_COUNTS)
def test_positive_int_names_the_argument_and_its_range(value):
    message = _raises(lambda: positive_int(value, "n_terms"), "n_terms")
    assert "1" in message
    assert positive_int(np.int64(3), "n") == 3


@pytest.mark.parametrize("value", [0, -1.0, math.nan, math.inf, "1", None])
def test_positive_float_refuses_zero_negative_nan_inf_text(value):
    _raises(lambda: positive_float(value, "frequency_ghz"), r"frequency_ghz.*> 0")
    assert positive_float(5, "f") == 5.0


def test_non_negative_float():
    assert non_negative_float(0, "kl_weight") == 0.0
    _raises(lambda: non_negative_float(-0.1, "kl_weight"), r"kl_weight.*≥ 0")


@pytest.mark.parametrize("n_terms", [0, -1, 2.5])
def test_iem_series_terms(n_terms):
    params = dict(mv=0.2, hrms=1.0, corr_length=5.0, theta=38.0)
    _raises(lambda: iem_backscatter(**params, n_terms=n_terms), "n_terms")
    _raises(lambda: Iem(n_terms=n_terms), "n_terms")
    one = torch.ones(1)
    _raises(lambda: iem(one * 15, one, one * 5, one * 0.6, n_terms=n_terms), "n_terms")


@pytest.mark.parametrize("freq", [0.0, -5.405, math.nan])
def test_radar_frequency(freq):
    _raises(lambda: iem_backscatter(mv=0.2, frequency_ghz=freq), "frequency_ghz")
    _raises(lambda: bare_soil_backscatter(mv=0.2, frequency_ghz=freq), "frequency_ghz")


def test_prosail_and_safy_options():
    _raises(lambda: Prosail(chunk_size=0), "chunk_size")
    _raises(lambda: Prosail(spectral_step=0), "spectral_step")
    _raises(lambda: Safy(emergence_width=0.0), "emergence_width")
    forcing = np.full(30, 15.0)
    _raises(lambda: safy(forcing, forcing, emergence_width=math.nan, d0=3), "emergence_width")


@pytest.mark.parametrize("batch_size", [-1, 0, 1.5])
def test_batch_sizes_of_the_accessors_and_predict(cube, batch_size):
    _raises(lambda: cube.physics.retrieve(["lai"], batch_size=batch_size), "batch_size")
    _raises(lambda: cube.vae.encode("pixel_hybrid", batch_size=batch_size), "batch_size")
    net = load_pretrained("s2")
    x = torch.tensor([[0.03, 0.05, 0.04, 0.08, 0.2, 0.25, 0.3, 0.32, 0.2, 0.1, 35, 5, 100]])
    _raises(lambda: net.predict(x, batch_size=batch_size), "batch_size")


def test_grow_batch_size():
    from test_grow import forcing_cube

    ds = forcing_cube(2, 2)
    for bad in (-1, 0):
        _raises(lambda bad=bad: ds.physics.grow("tas", "rg", batch_size=bad), "batch_size")


def test_encode_memory_budget(cube):
    _raises(lambda: cube.vae.encode("pixel_hybrid", memory_budget=0), "memory_budget")


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"max_steps": 0}, "max_steps"),
        ({"epochs": 0}, "epochs"),
        ({"max_steps": 1, "batch_size": 0}, "batch_size"),
        ({"max_steps": 1, "lr": -1.0}, "lr"),
        ({"max_steps": 1, "lr": 0.0}, "lr"),
        ({"max_steps": 1, "kl_weight": -1.0}, "kl_weight"),
    ],
)
def test_vae_fit_takes_no_step_on_bad_options(cube, kwargs, name):
    model = PhysVAE(hidden=8, depth=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _raises(lambda: cube.vae.fit(model, progress=False, **kwargs), name)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": -1}, "batch_size"),
        ({"lr": 0.0}, "lr"),
        ({"patience": 0}, "patience"),
        ({"val_fraction": 1.0}, "val_fraction"),
    ],
)
def test_inverse_fit_options(kwargs, name):
    net = load_pretrained("s2")
    x, y = torch.rand(20, 13), torch.rand(20, 8)
    _raises(lambda: fit_inverse(net, x, y, progress=False, **kwargs), name)


@pytest.mark.parametrize("samples", [0, -5])
def test_training_sample_count_is_not_replaced_by_the_default(samples, tmp_path):
    _raises(lambda: train_pretrained("s2", n_samples=samples, out_path=tmp_path / "x.pt"), "n_")
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.parametrize(("size", "chunks"), [(0, 4), (1, 4), (-3, None), (8, 0)])
def test_demo_cube_sizes(size, chunks):
    _raises(lambda: demo_scene(size=size, chunks=chunks), "size|chunks")
    _raises(lambda: demo_season(size=size, chunks=chunks), "size|chunks")


@pytest.mark.parametrize(
    ("kwargs", "name"), [({"hidden": 0}, "hidden"), ({"depth": -1}, "depth"),
                         ({"spectral_step": 0}, "spectral_step"), ({"n_free": -1}, "n_free")],
)  # fmt: skip
def test_vae_architecture(kwargs, name):
    _raises(lambda: PhysVAE(**kwargs), name)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"resolution": 0}, "resolution"), ({"timeout": -1}, "timeout"), ({"chunks": 0}, "chunks")],
)
def test_stac_loader_options_before_any_request(kwargs, name):
    from xr_physcube.io.stac import load_s1, load_s2

    for load in (load_s2, load_s1):  # a closed port: nothing is contacted
        _raises(
            lambda load=load: load("http://127.0.0.1:9", (1, 43, 1.1, 43.1), "2024", **kwargs), name
        )
