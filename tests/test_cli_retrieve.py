"""``xr-physcube retrieve``: the batch job on a tile, against a real STAC API on loopback.

The store the command writes must equal what the Python API gives on the same cube, on
dask threads and on a two-worker LocalCluster.
"""

from __future__ import annotations

import socket
import time
import warnings

import numpy as np
import pytest
import stac_testdata as td
import xarray as xr
from pystac_client.exceptions import APIError
from test_stac import BOUNDS, CLOUD_10M, TIME

import xr_physcube  # noqa: F401  (registers the accessors)
from xr_physcube.cli import S2_PRODUCTS, main
from xr_physcube.io.stac import load_cube, load_s2, search_items


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


@pytest.fixture
def mute_api_url():
    """A loopback port that accepts connections and never answers (a hung server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def test_stac_search_times_out_on_a_mute_server(mute_api_url):
    start = time.perf_counter()
    with pytest.raises(APIError, match="timed out"):
        search_items(mute_api_url, td.S2_COLLECTION, None, TIME, timeout=0.5)
    assert time.perf_counter() - start < 1.5  # one attempt, not pystac-client's 6


def test_retrieve_job_fails_fast_with_a_message(mute_api_url, tmp_path, capsys):
    start = time.perf_counter()
    out = tmp_path / "x.zarr"
    assert main(_args(mute_api_url, out, "--timeout", "0.5")) == 1
    assert time.perf_counter() - start < 5
    err = capsys.readouterr().err
    assert mute_api_url in err and "timed out" in err and "Traceback" not in err
    assert not out.exists()


def test_retrieve_job_reports_an_empty_search(stac_api_url, tmp_path, capsys):
    out = tmp_path / "x.zarr"
    args = _args(stac_api_url, out)
    args[args.index("--time") + 1] = "2019-01-01/2019-01-31"  # no scene then
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "no STAC item" in err and "2019-01-01/2019-01-31" in err
    far = ["retrieve", stac_api_url, "--bbox", "10", "10", "10.01", "10.01", "--time", TIME,
           "--out", str(out)]  # fmt: skip
    assert main(far) == 1
    assert "no STAC item" in capsys.readouterr().err
    assert not out.exists()


def test_retrieve_job_unknown_variable_lists_the_valid_ones(capsys):
    args = ["retrieve", "http://127.0.0.1:1", "--bbox", "0", "0", "1", "1", "--time", TIME,
            "--out", "never.zarr", "--variables", "lai", "laii"]  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:  # before any request (port 1 is closed)
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "'laii'" in err and all(name in err for name in S2_PRODUCTS)


def test_retrieve_job_keeps_an_existing_out(stac_api_url, tmp_path, capsys):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    for extra in ((), ("--overwrite",)):  # a plain folder is never replaced
        assert main(_args(stac_api_url, folder, *extra)) == 1
        assert "--out" in capsys.readouterr().err
        assert (folder / "notes.txt").read_text() == "keep me"
    store = tmp_path / "old.zarr"  # a Zarr store of the user's: never replaced
    xr.Dataset({"old": ("x", np.arange(3.0))}).to_zarr(store, zarr_format=2)
    for extra in ((), ("--overwrite",)):
        assert main(_args(stac_api_url, store, "--no-s1", "--variables", "lai", *extra)) == 1
        assert "--out" in capsys.readouterr().err
        assert set(xr.open_zarr(store).data_vars) == {"old"}
    ours = tmp_path / "ours.zarr"  # an earlier job's store: replaced with --overwrite only
    job = _args(stac_api_url, ours, "--no-s1", "--variables", "lai")
    assert main(job) == 0
    assert main(job) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(_args(stac_api_url, ours, "--no-s1", "--variables", "fcover", "--overwrite")) == 0
    assert set(xr.open_zarr(ours).data_vars) == {"fcover", "fcover_std"}


@pytest.mark.parametrize(
    "option",
    [
        ("--time", "2024-13-01/2024-05-31"),
        ("--time", "May 2024"),
        ("--time", "2024-5-1/2024-5-31"),
        ("--time", ""),
        ("--time", "2024-05-31/2024-05-01"),
        ("--time", "2024-05-01/2024-05-31/2024-06-01"),
        ("--time", "../.."),
        ("--workers", "-1"),
        ("--timeout", "0"),
        ("--bbox", "1.27", "43.61", "1.26", "43.62"),  # W > E
        ("--bbox", "1.26", "43.61", "1.26", "43.61"),  # no area
        ("--bbox", "1.26", "91", "1.27", "92"),
        ("--variables", "lai", "--method", "vae"),  # the VAE returns all its parameters
    ],
)
def test_retrieve_job_rejects_bad_values_before_searching(option, capsys):
    args = ["retrieve", "http://127.0.0.1:1", "--bbox", "0", "0", "1", "1", "--time", TIME,
            "--out", "never.zarr"]  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        main([*args, *option])
    assert exit_info.value.code == 2
    assert f"argument {option[0]}" in capsys.readouterr().err


def test_retrieve_job_with_the_odc_stac_engine_writes_the_same_store(stac_api_url, tmp_path):
    stores = {}
    for engine in ("stackstac", "odc-stac"):
        stores[engine] = tmp_path / f"{engine}.zarr"
        args = _args(stac_api_url, stores[engine], "--variables", "lai", "--engine", engine)
        assert main(args) == 0
    a, b = (xr.open_zarr(stores[e]).load() for e in ("stackstac", "odc-stac"))
    xr.testing.assert_allclose(a, b)
    assert b.rio.crs == a.rio.crs and {"lai", "mv"} <= set(b.data_vars)


def test_retrieve_job_writes_cogs_a_gis_opens(stac_api_url, tmp_path, capsys):
    import rasterio

    out = tmp_path / "cogs"
    job = _args(stac_api_url, out, "--no-s1", "--variables", "lai", "--format", "cog")
    assert main(job) == 0
    cube = load_s2(stac_api_url, td.bbox_lonlat(), TIME, bounds=BOUNDS, chunks=16)
    expected = cube.physics.retrieve(["lai"]).compute()
    with rasterio.open(out / "lai.tif") as cog:
        assert cog.crs == cube.rio.crs and cog.transform == cube.rio.transform()
        assert cog.count == cube.sizes["time"] and cog.tags()["units"] == "m2 m-2"
        assert cog.descriptions[0] == str(cube.time.values[0])[:10]
        np.testing.assert_allclose(cog.read(), expected.lai.values, rtol=1e-5, equal_nan=True)
    assert (out / "lai_std.tif").is_file()
    assert main(job) == 1  # exists
    assert main([*job, "--overwrite"]) == 0  # its own COG folder: replaced
    mine = tmp_path / "mine"
    mine.mkdir()
    assert main(_args(stac_api_url, mine, "--format", "cog", "--overwrite")) == 1
    assert "--out" in capsys.readouterr().err
