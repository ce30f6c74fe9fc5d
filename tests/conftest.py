"""Shared pytest fixtures.

STAC fixtures (``local_catalog_dir``, ``stac_api_url``): a tiny real STAC catalog of
Sentinel-1/2 GeoTIFFs (see ``stac_testdata.py``) served as a STAC API on 127.0.0.1 by
stac-fastapi-static under uvicorn, in a subprocess started once per session and always
terminated at teardown. No test touches the internet.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def local_catalog_dir(tmp_path_factory) -> Path:
    """Directory holding ``stac/catalog.json`` and the GeoTIFFs under ``data/``."""
    import stac_testdata

    root = tmp_path_factory.mktemp("stac_catalog")
    stac_testdata.build_catalog(root)
    return root


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def stac_api_url(local_catalog_dir, tmp_path_factory):
    """URL of a STAC API (stac-fastapi-static) serving the local catalog on loopback."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path_factory.mktemp("stac_server") / "server.log").open("w")
    catalog = local_catalog_dir / "stac" / "catalog.json"
    script = str(TESTS_DIR / "stac_testdata.py")
    # the server exits by itself if this process dies without running the teardown
    cmd = [sys.executable, script, str(catalog), str(port), str(os.getpid())]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60.0
        while True:
            if proc.poll() is not None:
                log.flush()
                raise RuntimeError(
                    f"STAC server exited with code {proc.returncode}; see {log.name}"
                )
            try:
                with urllib.request.urlopen(f"{url}/collections", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"STAC server did not answer on {url} within 60 s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
