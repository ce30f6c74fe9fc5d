"""A flaky image host does not kill a tile job: failed reads are retried, and a read
that keeps failing gives NaN with a ``ReadFailureWarning`` (``read_errors="nan"``, the
CLI's default); with ``read_errors="raise"`` it raises.

The assets are served over HTTP on 127.0.0.1 (with byte ranges, as GDAL reads COGs) by a
server that answers 503 to the first request for every file, and always to one file.
"""

from __future__ import annotations

import http.server
import threading
import warnings
from pathlib import Path

import numpy as np
import pystac
import pytest
import stac_testdata as td
from test_stac import BOUNDS, TIME

import xr_physcube.io._reader as reader
from xr_physcube.exceptions import ReadFailureWarning
from xr_physcube.io.stac import load_s2


class FlakyHost(http.server.ThreadingHTTPServer):
    """Serves ``root`` with HTTP ranges; the first request for each file and every
    request for a path containing ``dead`` get 503."""

    def __init__(self, root: Path, dead: str):
        self.root, self.dead, self.seen, self.failed = root, dead, set(), 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: FlakyHost

    def log_message(self, *args) -> None:  # quiet
        pass

    def _fail(self) -> bool:
        with self.server.lock:
            first = self.path not in self.server.seen
            self.server.seen.add(self.path)
            if first or self.server.dead in self.path:
                self.server.failed += 1
                return True
        return False

    def _serve(self, body: bool) -> None:
        if self._fail():
            self.send_error(503)
            return
        data = (self.server.root / self.path.lstrip("/")).read_bytes()
        start, end = 0, len(data) - 1
        if rng := self.headers.get("Range"):
            a, b = rng.removeprefix("bytes=").split("-")
            start, end = int(a), min(int(b) if b else end, end)
        self.send_response(206 if rng else 200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.end_headers()
        if body:
            self.wfile.write(data[start : end + 1])

    def do_GET(self) -> None:  # noqa: N802
        self._serve(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(body=False)


@pytest.fixture
def flaky_items(local_catalog_dir, monkeypatch):
    """The S2 items with asset hrefs on the flaky host; B4 of the second date is dead."""
    monkeypatch.setattr(reader, "RETRY_DELAY_S", 0.05)
    catalog = pystac.Catalog.from_file(str(local_catalog_dir / "stac" / "catalog.json"))
    items = sorted(
        (it for it in catalog.get_items(recursive=True) if it.collection_id == td.S2_COLLECTION),
        key=lambda it: it.datetime,
    )
    dead_item = items[1].id
    host = FlakyHost(local_catalog_dir, dead=f"{dead_item}/red.tif")  # its B4
    threading.Thread(target=host.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{host.server_address[1]}"
    served = []
    for it in items:
        it = it.clone()
        for asset in it.assets.values():
            path = Path(asset.get_absolute_href()).resolve()
            asset.href = f"{url}/{path.relative_to(local_catalog_dir.resolve())}"
        served.append(it)
    yield served, host, items
    host.shutdown()
    host.server_close()


def _load(items, read_errors):
    return load_s2(items, td.bbox_lonlat(), TIME, bounds=BOUNDS, chunks=16,
                   bands=("B4", "B8"), read_errors=read_errors)  # fmt: skip


def test_failed_reads_are_retried_then_nan_with_a_warning(flaky_items):
    items, host, local_items = flaky_items
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cube = _load(items, "nan").compute(scheduler="threads")
    failures = [w for w in caught if issubclass(w.category, ReadFailureWarning)]
    assert failures and all("red.tif" in str(w.message) for w in failures)
    assert host.failed > len(failures)  # every file failed once: retried, then read
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        local = _load(local_items, "raise").compute()  # the same files, read from disk
    assert np.isnan(cube.B4.values[1]).all()  # the dead file: NaN, the job went on
    np.testing.assert_allclose(cube.B4.values[[0, 2]], local.B4.values[[0, 2]], rtol=1e-6)
    np.testing.assert_allclose(cube.B8.values, local.B8.values, rtol=1e-6)  # after retries


def test_failed_reads_raise_when_asked(flaky_items):
    items, _, _ = flaky_items
    with pytest.raises(RuntimeError, match="red.tif"):
        _load(items, "raise").compute(scheduler="threads")
