"""The README's Python snippets run as written, in order, in one namespace (later
snippets use names from earlier ones, as a reader pasting them into a notebook would).
Snippets that reach a public STAC API (``https://``) are skipped: no network in tests;
the same calls run against a loopback STAC API in ``test_stac.py``."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _snippets() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    return [b for b in blocks if "https://" not in b]


def test_readme_snippets_run(tmp_path, monkeypatch):
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)  # snippets write files (e.g. a fine-tuned VAE)
    snippets = _snippets()
    assert len(snippets) >= 6
    namespace: dict = {}
    for i, code in enumerate(snippets):
        try:
            exec(compile(code, f"README.md python block {i}", "exec"), namespace)
        except Exception as err:  # name the snippet that broke
            pytest.fail(f"README snippet {i} failed: {err!r}\n{code}")
    # what the snippets say they produce
    assert tuple(namespace["spectra"].shape) == (3, 2101)
    assert namespace["lai"].dims == ("time", "y", "x")
    crop = namespace["crop"]
    assert set(crop.data_vars) == {"glai", "biomass", "yield"}
    peak = crop.glai.max("time").values
    assert np.all((peak > 1.0) & (peak < 10.0)) and np.all(np.diff(peak.ravel()) > 0)
    assert {"B2", "B12", "VV", "VH"} <= set(namespace["recon"].data_vars)
    assert (tmp_path / "my_vae.pt").is_file()
    import rasterio

    field = namespace["field_lai"]
    assert (field.sizes["y"], field.sizes["x"]) == (12, 8)
    with rasterio.open(tmp_path / "lai_field.tif") as cog:  # the GIS sees the CRS
        assert cog.crs == namespace["field_cube"].rio.crs and cog.shape == (12, 8)
