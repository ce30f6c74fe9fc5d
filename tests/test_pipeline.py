"""End to end, as in a batch job: STAC API on loopback -> cube -> retrieve -> zarr -> reopen,
on a dask.distributed LocalCluster with 2 worker processes."""

from __future__ import annotations

import warnings

import numpy as np
import stac_testdata as td
import xarray as xr
from test_stac import BOUNDS, CLOUD_10M, TIME

import xr_physcube  # noqa: F401
from xr_physcube.io.stac import load_s1, load_s2, merge_cubes


def test_stac_cube_retrieve_to_zarr_on_local_cluster(stac_api_url, tmp_path):
    from distributed import Client, LocalCluster, get_task_stream

    path = tmp_path / "retrieval.zarr"
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", UserWarning)  # angle fallbacks of the test catalog
        s2 = load_s2(stac_api_url, td.bbox_lonlat(), TIME, bounds=BOUNDS, chunks=16)
        s1 = load_s1(stac_api_url, td.bbox_lonlat(), TIME, like=s2)
        cube = merge_cubes(s2, s1)
        with get_task_stream(client) as building:
            result = xr.merge(
                [
                    cube.physics.retrieve(["lai", "fcover"]),
                    cube.physics.retrieve(["mv"], model="pretrained-s1", std=False),
                ]
            )
        assert not building.data  # nothing computed while building the graph
        assert result.lai.chunks == cube.B4.chunks  # chunk-preserving
        with get_task_stream(client) as writing:
            result.to_zarr(path, mode="w")
        workers = {t["worker"] for t in writing.data}
        assert workers and workers <= set(cluster.scheduler_info["workers"])
        local = cube.compute()
    back = xr.open_zarr(path).load()
    expected = local.physics.retrieve(["lai", "fcover"])
    np.testing.assert_allclose(back.lai.values, expected.lai.values, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(back.fcover_std.values, expected.fcover_std.values, rtol=1e-5)
    assert np.isnan(back.lai.values[1][CLOUD_10M]).all()  # cloudy pixels stay NaN
    assert np.isfinite(back.lai.values[0]).mean() > 0.95
    assert float(np.nanmin(back.lai)) >= 0.0 and back.lai.attrs["units"] == "m2 m-2"
    assert np.isnan(back.mv.values[2]).all()  # no S1 acquisition near the third S2 date
