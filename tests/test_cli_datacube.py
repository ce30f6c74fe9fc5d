"""``xr-physcube datacube``: the data cube of a tile from a real STAC API on loopback.

The store the command writes must equal ``s2.vae.datacube(s1=load_s1(like=s2))`` on the
same tile, on dask threads and on a two-worker LocalCluster, with either modality alone.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import stac_testdata as td
import xarray as xr
from test_stac import BOUNDS, TIME

import xr_physcube  # noqa: F401  (registers the accessors)
from xr_physcube.cli import main
from xr_physcube.io.stac import load_s1, load_s2
from xr_physcube.io.store import store_status


def _args(url: str, out, *extra: str) -> list[str]:
    bbox = [str(v) for v in td.bbox_lonlat()]
    bounds = [str(v) for v in BOUNDS]
    return ["datacube", url, "--bbox", *bbox, "--time", TIME, "--bounds", *bounds,
            "--chunk", "16", "--out", str(out), *extra]  # fmt: skip


@pytest.fixture(autouse=True)
def _quiet_angle_fallbacks():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the test catalog has no angle metadata
        yield


@pytest.fixture(scope="module")
def tile(stac_api_url):
    s2 = load_s2(stac_api_url, td.bbox_lonlat(), TIME, bounds=BOUNDS, chunks=16)
    s1 = load_s1(stac_api_url, td.bbox_lonlat(), TIME, like=s2)
    return s2, s1


def _assert_same(written: xr.Dataset, expected: xr.Dataset) -> None:
    assert set(written.data_vars) == set(expected.data_vars)
    np.testing.assert_array_equal(written.time.values, expected.time.values)
    for name in expected.data_vars:
        np.testing.assert_allclose(written[name], expected[name], rtol=1e-5, atol=1e-6)


def test_datacube_job_writes_what_the_python_api_gives(stac_api_url, tile, tmp_path, capsys):
    out = tmp_path / "cube.zarr"
    assert main(_args(stac_api_url, out, "--freq", "4D")) == 0
    printed = capsys.readouterr().out
    assert store_status(out) == "complete"
    written = xr.open_zarr(out).load()
    s2, s1 = tile
    expected = s2.vae.datacube(s1=s1, freq="4D").compute()
    _assert_same(written, expected)
    steps = np.diff(written.time.values).astype("timedelta64[D]").astype(int)
    assert set(steps) == {4}  # the regular grid asked for
    first = pd.Timestamp(min(s2.time.values[0], s1.time.values[0])).normalize()
    assert written.time.values[0] == first  # from the first acquisition's day
    assert {"lai", "lai_std", "mv", "mv_std"} <= set(written.data_vars)
    assert np.isfinite(written.lai).all() and np.isfinite(written.mv).all()
    assert written.lai.attrs["units"] == "m2 m-2"
    assert f"{written.sizes['time']} dates every 4D" in printed


def test_datacube_job_with_one_modality_on_a_local_cluster(stac_api_url, tile, tmp_path):
    s2, s1 = tile
    start, end = "2024-05-03", "2024-05-28"
    s2_only = tmp_path / "s2.zarr"
    assert main(_args(stac_api_url, s2_only, "--no-s1", "--workers", "2",
                      "--start", start, "--end", end)) == 0  # fmt: skip
    expected = s2.vae.datacube(freq="5D", start=start, end=end).compute()
    _assert_same(xr.open_zarr(s2_only).load(), expected)
    assert str(xr.open_zarr(s2_only).time.values[0])[:10] == start
    s1_only = tmp_path / "s1.zarr"
    assert main(_args(stac_api_url, s1_only, "--no-s2")) == 0
    _assert_same(xr.open_zarr(s1_only).load(), s1.vae.datacube(freq="5D").compute())


@pytest.mark.parametrize(
    "option",
    [
        ("--no-s1", "--no-s2"),
        ("--overwrite", "--resume"),
        ("--memory-budget", "0"),
        ("--bbox", "1.27", "43.61", "1.26", "43.62"),
    ],  # fmt: skip
)
def test_datacube_job_rejects_bad_options_before_searching(option, capsys):
    args = ["datacube", "http://127.0.0.1:1", "--bbox", "0", "0", "1", "1", "--time", TIME,
            "--out", "never.zarr"]  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        main([*args, *option])
    assert exit_info.value.code == 2
    assert "argument --" in capsys.readouterr().err


def test_datacube_job_reports_a_bad_grid_in_one_line(stac_api_url, tmp_path, capsys):
    out = tmp_path / "x.zarr"
    assert main(_args(stac_api_url, out, "--freq", "fortnightly")) == 1
    err = capsys.readouterr().err
    assert "freq='fortnightly'" in err and "Traceback" not in err
    assert not out.exists()
