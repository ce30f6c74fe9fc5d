"""The CUDA path gives the CPU's results (run where a device is present; skipped
cleanly elsewhere, e.g. in CI): PROSAIL band mode, the retrieval, the VAE encoder and
the data cube through the accessors with ``device="cuda"``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import xr_physcube  # noqa: F401
from xr_physcube.io.demo import load_demo
from xr_physcube.io.demo_season import demo_season

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def test_band_mode_prosail_on_cuda_matches_cpu():
    from xr_physcube.models.prosail import Prosail, ProsailParameters
    from xr_physcube.sensors.sentinel2 import Sentinel2Bands

    lai = torch.linspace(0.1, 7.0, 64, dtype=torch.float64)
    model = Prosail(sensor=Sentinel2Bands(band_step=3))
    cpu = model(ProsailParameters(lai=lai)).reflectance
    gpu = model.to("cuda")(ProsailParameters(lai=lai.cuda())).reflectance
    assert gpu.is_cuda
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=0, atol=1e-10)


def test_accessors_on_cuda_match_cpu():
    cube = load_demo(size=12, chunks=6)
    for method in ("retrieve", "encode"):
        run = cube.physics.retrieve if method == "retrieve" else cube.vae.encode
        kwargs = {"variables": ["lai"]} if method == "retrieve" else {}
        cpu = run(device="cpu", **kwargs).lai.compute()
        gpu = run(device="cuda", **kwargs).lai.compute()
        np.testing.assert_allclose(gpu, cpu, rtol=1e-4, atol=1e-5, err_msg=method)


def test_datacube_on_cuda_matches_cpu():
    season = demo_season(size=8, chunks=8)
    cpu = season.s2.vae.datacube(s1=season.s1, device="cpu").lai.compute()
    gpu = season.s2.vae.datacube(s1=season.s1, device="cuda").lai.compute()
    np.testing.assert_allclose(gpu, cpu, rtol=1e-4, atol=1e-4)
