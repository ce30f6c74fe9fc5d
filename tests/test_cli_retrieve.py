"""``xr-physcube retrieve``: the batch job on a tile, against a real STAC API on loopback.

The store the command writes must equal what the Python API gives on the same cube, on
dask threads and on a two-worker LocalCluster.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import stac_testdata as td
import xarray as xr
from test_stac import BOUNDS, CLOUD_10M, TIME

import xr_physcube  # noqa: F401  (registers the accessors)
from xr_physcube.cli import S2_PRODUCTS, main
from xr_physcube.io.stac import load_cube, load_s2


def _args(url: str, out, *extra: str) -> list[str]:
    bbox = [str(v) for v in td.bbox_lonlat()]
    bounds = [str(v) for v in BOUNDS]
    return ["retrieve", url, "--bbox", *bbox, "--time", TIME, "--bounds", *bounds,
            "--chunk", "16", "--out", str(out), *extra]  # fmt: skip


@pytest.fixture(autouse=True)
def _quiet_angle_fallbacks():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the test catalog has no angle metadata
        yield


def test_retrieve_job_writes_what_the_python_api_gives(stac_api_url, tmp_path, capsys):
    out = tmp_path / "tile.zarr"
    assert main(_args(stac_api_url, out)) == 0
    printed = capsys.readouterr().out
    written = xr.open_zarr(out).load()
    assert set(written.data_vars) == {
        *S2_PRODUCTS, *(f"{v}_std" for v in S2_PRODUCTS), "mv", "mv_std"
    }  # fmt: skip
    cube = load_cube(stac_api_url, td.bbox_lonlat(), TIME, bounds=BOUNDS, chunks=16).compute()
    expected = cube.physics.retrieve(list(S2_PRODUCTS))
    for name in S2_PRODUCTS:
        np.testing.assert_allclose(written[name], expected[name], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        written.mv, cube.physics.retrieve(["mv"], model="pretrained-s1").mv, rtol=1e-5
    )
    assert np.isnan(written.lai.values[1][CLOUD_10M]).all()  # cloudy pixels stay NaN
    assert written.lai.attrs["units"] == "m2 m-2"
    lai_line = next(line for line in printed.splitlines() if line.strip().startswith("lai "))
    assert f"{float(np.nanmean(written.lai)):.4g}" in lai_line


def test_retrieve_job_with_the_vae_on_a_local_cluster(stac_api_url, tmp_path):
    out = tmp_path / "vae.zarr"
    assert main(_args(stac_api_url, out, "--method", "vae", "--no-s1", "--workers", "2")) == 0
    written = xr.open_zarr(out).load()
    cube = load_s2(stac_api_url, td.bbox_lonlat(), TIME, bounds=BOUNDS, chunks=16).compute()
    expected = cube.vae.encode()
    assert {"lai", "lai_std", "cab", "mv"} <= set(written.data_vars)
    np.testing.assert_allclose(written.lai, expected.lai, rtol=1e-4, atol=1e-5)
    # S2 only: a posterior wherever something was observed, NaN under the cloud
    observed = np.isfinite(cube.B4.values)
    assert observed.mean() > 0.9 and not observed[1][CLOUD_10M].any()
    np.testing.assert_array_equal(np.isfinite(written.lai.values), observed)


def test_retrieve_job_on_a_running_scheduler(stac_api_url, tmp_path, capsys):
    from distributed import LocalCluster

    out = tmp_path / "lai.zarr"
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        args = _args(stac_api_url, out, "--no-s1", "--variables", "lai",
                     "--scheduler", cluster.scheduler_address)  # fmt: skip
        assert main(args) == 0
        assert cluster.scheduler_address in capsys.readouterr().out
    written = xr.open_zarr(out).load()
    assert set(written.data_vars) == {"lai", "lai_std"}
    cube = load_s2(stac_api_url, td.bbox_lonlat(), TIME, bounds=BOUNDS, chunks=16).compute()
    np.testing.assert_allclose(written.lai, cube.physics.retrieve("lai").lai, rtol=1e-5)


def test_retrieve_job_arguments_are_checked():
    with pytest.raises(SystemExit):
        main(["retrieve", "http://127.0.0.1:1", "--time", TIME, "--out", "x.zarr"])  # no bbox
    with pytest.raises(SystemExit):
        main(["retrieve", "http://127.0.0.1:1", "--bbox", "0", "0", "1", "1", "--time", TIME,
              "--out", "x.zarr", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"])  # fmt: skip
