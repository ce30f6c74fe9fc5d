"""The README's main job: ``xr-physcube demo`` on the embedded cube."""

from __future__ import annotations

import re

import numpy as np
import xarray as xr

from xr_physcube.cli import main


def test_demo_command_writes_zarr_figure_and_scores(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--size", "20", "--chunk", "10"]) == 0
    printed = capsys.readouterr().out
    result = xr.open_zarr(tmp_path / "retrieval.zarr")
    assert {"lai", "lai_std", "fcover", "ccc", "cwc", "mv"} <= set(result.data_vars)
    assert result.lai.shape == (4, 20, 20)
    assert np.isfinite(result.lai.values).mean() > 0.9
    png = tmp_path / "lai_map.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rmse = float(re.search(r"lai\s+RMSE\s+([\d.]+)", printed).group(1))
    assert 0.0 < rmse < 1.5
