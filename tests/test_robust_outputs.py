"""No command deletes or overwrites what is not its own previous output, and a bad output
place ends in one line on stderr (exit code 1), not a traceback."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from xr_physcube.cli import main
from xr_physcube.cli.outputs import MARKER, is_marked_store, prepare_demo_out


def _user_files(folder):
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("field notes")
    (folder / "plots").mkdir()
    (folder / "plots" / "a.png").write_bytes(b"\x89PNG")
    return sorted(p.relative_to(folder) for p in folder.rglob("*"))


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("store", ["retrieval.zarr", "datacube.zarr"])
def test_demo_keeps_the_users_files(tmp_path, capsys, store):
    kept = _user_files(tmp_path / store)
    err = _one_line_error(capsys, ["demo", "--out", str(tmp_path), "--size", "4"])
    assert store in err and "Choose another --out" in err
    assert sorted(p.relative_to(tmp_path / store) for p in (tmp_path / store).rglob("*")) == kept


def test_demo_keeps_a_store_it_did_not_write(tmp_path, capsys):
    xr.Dataset({"a": ("x", np.arange(3))}).to_zarr(tmp_path / "retrieval.zarr", zarr_format=2)
    _one_line_error(capsys, ["demo", "--out", str(tmp_path), "--size", "4"])
    assert xr.open_zarr(tmp_path / "retrieval.zarr").a.values.tolist() == [0, 1, 2]


def test_demo_keeps_a_figure_that_is_not_its_own(tmp_path, capsys):
    (tmp_path / "lai_map.png").write_bytes(b"mine")
    _one_line_error(capsys, ["demo", "--out", str(tmp_path), "--size", "4"])
    assert (tmp_path / "lai_map.png").read_bytes() == b"mine"


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_the_demos_own_previous_output_may_be_replaced(tmp_path, zarr_format):
    ds = xr.Dataset({"lai": ("x", np.ones(2))}, attrs={MARKER: "xr-physcube demo"})
    ds.to_zarr(tmp_path / "retrieval.zarr", zarr_format=zarr_format, consolidated=False)
    (tmp_path / "lai_map.png").write_bytes(b"old figure")
    (tmp_path / "datacube.zarr").mkdir()  # an empty folder is not anyone's data
    assert is_marked_store(tmp_path / "retrieval.zarr")
    prepare_demo_out(tmp_path)  # no error
    assert not is_marked_store(tmp_path / "datacube.zarr")


def test_an_output_path_that_cannot_be_written(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    err = _one_line_error(capsys, ["demo", "--out", str(blocker / "out"), "--size", "4"])
    assert "cannot be written" in err and str(blocker / "out") in err
    err = _one_line_error(capsys, ["demo", "--out", str(blocker), "--size", "4"])
    assert "not a folder" in err
    assert blocker.read_text() == "x"


@pytest.mark.parametrize("size", ["0", "-4"])
def test_demo_size_zero_is_a_usage_error(tmp_path, capsys, size):
    with pytest.raises(SystemExit) as info:
        main(["demo", "--out", str(tmp_path / "o"), "--size", size])
    assert info.value.code == 2
    assert "--size" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_demo_size_one_is_one_line(tmp_path, capsys):
    err = _one_line_error(capsys, ["demo", "--out", str(tmp_path / "o"), "--size", "1"])
    assert "size" in err and "at least 2" in err


@pytest.mark.parametrize("argv", [["--chunk", "0"], ["--workers", "-1"]])
def test_demo_counts(tmp_path, argv):
    with pytest.raises(SystemExit):
        main(["demo", "--out", str(tmp_path), *argv])


def test_train_inverse_samples_zero(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train-inverse", "s2", "--samples", "0", "--out", str(tmp_path / "s2.pt")])
    assert "--samples" in capsys.readouterr().err
    assert not (tmp_path / "s2.pt").exists()


@pytest.mark.parametrize("command", [["train-inverse", "s2"], ["train-vae", "pixel"]])
def test_training_keeps_a_file_that_is_not_a_checkpoint(tmp_path, capsys, command):
    mine = tmp_path / "results.pt"
    mine.write_text("my results")
    err = _one_line_error(capsys, [*command, "--out", str(mine)])
    assert "not a" in err and "checkpoint" in err and str(mine) in err
    assert mine.read_text() == "my results"


def test_training_keeps_a_checkpoint_of_the_other_kind(tmp_path, capsys):
    from xr_physcube.vae.model import PhysVAE

    vae = PhysVAE(hidden=8, depth=1).save(tmp_path / "vae.pt")
    before = vae.read_bytes()
    _one_line_error(capsys, ["train-inverse", "s2", "--out", str(vae)])
    assert vae.read_bytes() == before
