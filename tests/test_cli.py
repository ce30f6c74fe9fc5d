"""The README's main job: ``xr-physcube demo`` on the embedded cube, and ``train-inverse``'s
output path (argument handling only: nothing is trained here)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import xr_physcube
from xr_physcube import cli
from xr_physcube.cli import build_parser, main, train_out_path
from xr_physcube.io.demo import demo_scene


def _printed_rmse(printed: str, name: str) -> tuple[float, str]:
    match = re.search(rf"^\s*{name}\s+RMSE\s+(\S+)\s+(\S+)", printed, flags=re.MULTILINE)
    assert match, f"no RMSE line for {name} in:\n{printed}"
    return float(match.group(1)), match.group(2)


def test_demo_command_writes_zarr_figure_and_scores(tmp_path, capsys):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["demo", "--out", str(tmp_path), "--size", "20", "--chunk", "10"]) == 0
        result = xr.open_zarr(tmp_path / "retrieval.zarr").load()  # the default reader
    # Neither writing nor reading the store warns about (consolidated) Zarr metadata.
    zarr_warnings = [
        str(w.message)
        for w in caught
        if "zarr" in type(w.message).__name__.lower() or "onsolidated" in str(w.message)
    ]
    assert zarr_warnings == []
    printed = capsys.readouterr().out
    assert {"lai", "lai_std", "fcover", "ccc", "cwc", "mv"} <= set(result.data_vars)
    assert result.lai.shape == (4, 20, 20)
    assert np.isfinite(result.lai.values).mean() > 0.9
    png = tmp_path / "lai_map.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rmse, _ = _printed_rmse(printed, "lai")
    assert 0.0 < rmse < 1.5

    # Canopy water content (LAI x Cw, cm) is scored too, against the scene's own truth.
    cwc, units = _printed_rmse(printed, "cwc")
    assert units == "cm"
    truth = demo_scene(size=20, seed=0, chunks=None).truth
    true_cwc = truth.lai.values * truth.cw.values
    est = result.cwc.values
    valid = np.isfinite(est)
    expected = np.sqrt(np.mean((est[valid] - true_cwc[valid]) ** 2))
    assert np.isfinite(cwc) and cwc > 0.0
    assert cwc == pytest.approx(expected, abs=5e-5)  # printed with >= 2 significant digits
    # An honest retrieval beats predicting the mean: RMSE below the truth's spread.
    assert cwc < 0.8 * true_cwc[valid].std()


def test_zarr_store_written_without_consolidated_warning_becomes_error(tmp_path):
    # Same write as the demo, with the warning category turned into an error.
    from zarr.errors import ZarrUserWarning

    ds = xr.Dataset({"lai": (("time", "y"), np.ones((2, 3), np.float32))}).chunk({"time": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZarrUserWarning)
        warnings.simplefilter("error", RuntimeWarning)
        ds.to_zarr(tmp_path / "s.zarr", mode="w", zarr_format=cli.ZARR_FORMAT)
        back = xr.open_zarr(tmp_path / "s.zarr").load()
    np.testing.assert_array_equal(back.lai.values, 1.0)


def test_train_inverse_defaults_to_current_directory_not_the_package(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    package_dir = Path(xr_physcube.__file__).resolve().parent
    out = train_out_path(build_parser().parse_args(["train-inverse", "s2"])).resolve()
    assert out == tmp_path.resolve() / "s2.pt"
    assert not out.is_relative_to(package_dir)
    out = train_out_path(build_parser().parse_args(["train-inverse", "s1", "--out", "w/x.pt"]))
    assert out == Path("w/x.pt")


def test_train_inverse_replaces_shipped_weights_only_when_asked(tmp_path, monkeypatch):
    package_dir = Path(xr_physcube.__file__).resolve().parent
    args = build_parser().parse_args(["train-inverse", "s2", "--replace-shipped"])
    assert train_out_path(args).resolve() == package_dir / "inverse" / "weights" / "s2.pt"
    with pytest.raises(SystemExit):  # --out and --replace-shipped are exclusive
        build_parser().parse_args(["train-inverse", "s2", "--out", "a.pt", "--replace-shipped"])


def test_train_inverse_passes_and_prints_the_path(tmp_path, monkeypatch, capsys):
    import xr_physcube.inverse.pretrained as inverse_train

    calls = []

    def fake_train(name, n_samples=None, seed=0, out_path=None, **kwargs):
        calls.append((name, n_samples, seed, Path(out_path)))
        return Path(out_path)

    monkeypatch.setattr(inverse_train, "train_pretrained", fake_train)
    monkeypatch.chdir(tmp_path)
    assert main(["train-inverse", "s1", "--samples", "10"]) == 0
    assert calls == [("s1", 10, 0, tmp_path.resolve() / "s1.pt")]
    assert str(tmp_path.resolve() / "s1.pt") in capsys.readouterr().out


def test_train_inverse_help_documents_the_output(capsys):
    with pytest.raises(SystemExit):
        main(["train-inverse", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--replace-shipped" in text and "./<name>.pt" in text
