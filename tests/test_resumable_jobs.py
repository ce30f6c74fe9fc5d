"""Interrupted batch jobs: flagged incomplete, never taken for complete, resumed to the
store an undisturbed run writes, byte for byte (``xr_physcube.io.store``).

A real ``xr-physcube retrieve`` on the loopback STAC API is killed (SIGKILL) part-way
through its writes; each region's completion is slowed in that child process only, so
the kill lands mid-job on any machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import stac_testdata as td
import xarray as xr
from test_stac import BOUNDS, TIME

from xr_physcube.cli import main
from xr_physcube.exceptions import IncompleteStoreError, InvalidArgumentError
from xr_physcube.io.store import DONE_DIR, open_store, store_status, write_store

# the child: the real CLI, each finished region recorded 0.4 s later than it would be
SLOW_CHILD = """
import sys, time
import xr_physcube.io.store as store
record = store._mark_done
def slow(written, marker):
    record(written, marker)
    time.sleep(0.4)
store._mark_done = slow
from xr_physcube.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _job(url: str, out: Path, *extra: str) -> list[str]:
    bbox = [str(v) for v in td.bbox_lonlat()]
    bounds = [str(v) for v in BOUNDS]
    return ["retrieve", url, "--bbox", *bbox, "--time", TIME, "--bounds", *bounds,
            "--chunk", "8", "--no-s1", "--variables", "lai", "fcover", "--out", str(out),
            *extra]  # fmt: skip


def _files(store: Path) -> dict[str, bytes]:
    return {str(p.relative_to(store)): p.read_bytes() for p in store.rglob("*") if p.is_file()}


def _kill_mid_job(args: list[str], store: Path, after: int = 2) -> None:
    """Run the CLI in a child and SIGKILL it once ``after`` regions are recorded."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    child = subprocess.Popen([sys.executable, "-c", SLOW_CHILD, *args], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and child.poll() is None:
            done = store / DONE_DIR
            if done.is_dir() and len([p for p in done.iterdir() if p.name[0] != "."]) >= after:
                break
            time.sleep(0.02)
        assert child.poll() is None, child.stderr.read().decode()[-2000:]
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()


@pytest.fixture(autouse=True)
def _quiet_angle_fallbacks():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the test catalog has no angle metadata
        yield


def test_killed_retrieve_job_is_flagged_and_resumes_to_the_same_store(
    stac_api_url, tmp_path, capsys
):
    reference = tmp_path / "undisturbed.zarr"
    assert main(_job(stac_api_url, reference)) == 0
    assert store_status(reference) == "complete"

    store = tmp_path / "killed.zarr"
    _kill_mid_job(_job(stac_api_url, store), store)
    assert store_status(store) == "incomplete"
    written = [p for p in (store / DONE_DIR).iterdir() if p.name[0] != "."]
    assert 2 <= len(written) < 16  # 32x32 px in 8x8 regions: killed part-way
    with pytest.raises(IncompleteStoreError, match="--resume"):
        open_store(store)
    with pytest.warns(RuntimeWarning, match="consolidated"):  # plain xarray is warned too
        xr.open_zarr(store)
    capsys.readouterr()
    assert main(_job(stac_api_url, store)) == 1  # neither taken for done nor replaced
    assert "--resume" in capsys.readouterr().err
    other = _job(stac_api_url, store, "--resume")
    other[other.index("fcover")] = "ccc"  # not the job that was interrupted
    partial = _files(store)
    assert main(other) == 1
    assert "different job" in capsys.readouterr().err
    assert _files(store) == partial

    assert main(_job(stac_api_url, store, "--resume")) == 0
    assert store_status(store) == "complete" and not (store / DONE_DIR).exists()
    assert _files(store) == _files(reference)  # byte for byte, metadata included
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        xr.open_zarr(store)


def test_resume_refuses_a_complete_store_or_another_job(stac_api_url, tmp_path, capsys):
    store = tmp_path / "lai.zarr"
    assert main(_job(stac_api_url, store)) == 0
    before = _files(store)
    assert main(_job(stac_api_url, store, "--resume")) == 1
    assert "complete" in capsys.readouterr().err
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    assert main(_job(stac_api_url, user, "--resume")) == 1
    assert (user / "notes.txt").read_text() == "keep me"
    assert _files(store) == before


def _lazy_result(size: int = 16) -> xr.Dataset:
    data = np.arange(3 * size * size, dtype="float32").reshape(3, size, size)
    ds = xr.Dataset(
        {"lai": (("time", "y", "x"), data), "n": ("time", np.arange(3.0))},
        coords={"time": np.arange(3), "y": np.arange(size), "x": np.arange(size)},
    )
    return ds.chunk({"time": -1, "y": 8, "x": 8})


def test_write_store_resumes_only_a_store_of_the_same_job(tmp_path):
    store = tmp_path / "s.zarr"
    result = _lazy_result()
    write_store(result, store, progress=False)
    xr.testing.assert_identical(open_store(store).load().drop_attrs(), result.load())
    attrs = store / ".zattrs"
    attrs.write_text(attrs.read_text().replace("complete", "incomplete"))  # as if killed
    other = result.isel(x=slice(0, 8))
    with pytest.raises(InvalidArgumentError, match="different job"):
        write_store(other, store, resume=True, progress=False)
    with pytest.raises(InvalidArgumentError, match="dims"):
        write_store(result.isel(x=0), tmp_path / "t.zarr", progress=False)


def test_write_store_never_replaces_a_users_files(tmp_path):
    user = tmp_path / "mine.zarr"
    xr.Dataset({"old": ("x", np.arange(3.0))}).to_zarr(user, zarr_format=2)
    with pytest.raises(FileExistsError, match="not written by xr-physcube"):
        write_store(_lazy_result(), user, progress=False)
    assert set(xr.open_zarr(user).data_vars) == {"old"}
    ours = tmp_path / "ours.zarr"
    write_store(_lazy_result(), ours, progress=False)
    write_store(_lazy_result() * 2, ours, progress=False)  # its own store: replaced
    assert float(open_store(ours).lai.max()) == 2 * float(_lazy_result().lai.max())
