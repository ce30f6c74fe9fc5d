"""The one blockwise mechanism (``xr_physcube.cube.blockwise``), the stateless accessors,
typed errors and the one checkpoint layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

import xr_physcube  # noqa: F401  (registers the accessors)
from xr_physcube import exceptions
from xr_physcube.cli import main
from xr_physcube.cube.blockwise import check_batch_size, map_rows
from xr_physcube.inverse import InverseModel, load_pretrained
from xr_physcube.io.demo import demo_scene
from xr_physcube.vae import PhysVAE


@pytest.fixture(scope="module")
def cube() -> xr.Dataset:
    return demo_scene(size=8, seed=1, chunks=4).cube


def test_map_rows_skips_invalid_rows_and_batches():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    x[[1, 4]] = np.nan
    calls = []

    def double(t):
        calls.append(t.shape[0])
        return (2 * t, t.sum(-1))

    twice, total = map_rows(double, [x], out_shapes=[(2,), ()], batch=3, device="cpu")
    assert calls == [3, 3, 2]  # 8 valid rows, 3 at a time
    assert np.isnan(twice[[1, 4]]).all() and np.isnan(total[[1, 4]]).all()
    ok = np.isfinite(x).all(-1)
    np.testing.assert_array_equal(twice[ok], 2 * x[ok])
    np.testing.assert_array_equal(total[ok], x[ok].sum(-1))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "8"])
def test_batch_size_must_be_a_positive_whole_number(bad, cube):
    with pytest.raises(exceptions.InvalidArgumentError, match="batch_size"):
        check_batch_size(bad)
    with pytest.raises(ValueError, match="batch_size"):  # at the call, not at compute time
        cube.physics.retrieve(["lai"], batch_size=bad)
    with pytest.raises(ValueError, match="batch_size"):
        cube.vae.encode(batch_size=bad)


def test_simulate_s1_honours_batch_size(monkeypatch):
    from xr_physcube.models import sar

    sizes = []
    original = sar.water_cloud_backscatter

    def counting(**kwargs):
        sizes.append(kwargs["mv"].shape[0])
        return original(**kwargs)

    monkeypatch.setattr(sar, "water_cloud_backscatter", counting)
    ds = xr.Dataset(
        {
            "mv": ("x", np.linspace(0.1, 0.4, 10)),
            "hrms": ("x", np.full(10, 1.0)),
            "theta": ("x", np.full(10, 38.0)),
            "lai": ("x", np.linspace(0.0, 4.0, 10)),
        }
    )
    out = ds.physics.simulate("S1", batch_size=4)
    assert sizes == [4, 4, 2]
    assert np.isfinite(out.VV.values).all()


def test_the_callers_network_is_neither_moved_nor_switched_to_eval(cube):
    net = load_pretrained("s2").train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    cube.physics.retrieve(["lai"], model=net).compute()
    assert net.training  # the blocks ran their own copy in eval mode
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    vae = PhysVAE(hidden=16).train()
    cube.isel(time=0).vae.encode(vae).compute()
    cube.isel(time=0).vae.reconstruct(vae).compute()
    assert vae.training


def test_fit_returns_the_model_and_a_new_dataset_uses_it_only_when_given(cube):
    model = cube.vae.fit(PhysVAE(hidden=16), max_steps=2, progress=False)
    assert len(model.history) == 2
    subset = cube.isel(x=slice(0, 4))
    tuned = subset.vae.encode(model).lai.values
    np.testing.assert_array_equal(tuned, cube.vae.encode(model).lai.isel(x=slice(0, 4)).values)
    shipped = subset.vae.encode().lai.values  # no model given: the shipped one, always
    assert not np.allclose(tuned, shipped, equal_nan=True)


def test_typed_errors_are_also_the_builtins_they_replace(cube):
    with pytest.raises(exceptions.MissingVariableError) as info:
        cube.drop_vars("B4").physics.retrieve(["lai"])
    assert isinstance(info.value, ValueError) and isinstance(info.value, exceptions.PhyscubeError)
    with pytest.raises(exceptions.InputUnitsError):
        (cube.assign(B4=cube.B4 * 10_000)).physics.retrieve(["lai"]).compute()
    with pytest.raises(exceptions.TimeAxisError):
        cube.physics.grow("B4", "B5")  # 4 dates, not daily
    assert issubclass(exceptions.StacSearchError, LookupError)


def test_checkpoints_of_another_kind_or_no_checkpoint_are_refused(tmp_path):
    vae_file = PhysVAE(hidden=16).save(tmp_path / "vae.pt")
    with pytest.raises(exceptions.CheckpointError, match="PhysVAE checkpoint"):
        InverseModel.load(vae_file)
    inverse_file = load_pretrained("s1").save(tmp_path / "s1.pt")
    with pytest.raises(exceptions.CheckpointError, match="InverseModel checkpoint"):
        PhysVAE.load(inverse_file)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    for loader in (InverseModel.load, PhysVAE.load):
        with pytest.raises(exceptions.CheckpointError, match="not a model checkpoint"):
            loader(junk)
    blob = torch.load(inverse_file, weights_only=True)
    assert sorted(blob) == ["config", "kind", "meta", "state_dict"]
    again = InverseModel.load(inverse_file)
    x = torch.rand(5, 4) * torch.tensor([0.2, 0.05, 10.0, 1.0]) + torch.tensor([0, 0, 30, 0])
    for a, b in zip(again.predict(x), load_pretrained("s1").predict(x), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_the_cli_reports_user_errors_in_one_line_and_lets_bugs_raise(monkeypatch, capsys):
    from xr_physcube import cli

    def user_error(args):
        raise exceptions.OutOfRangeError("lai must lie in [0, 15]")

    monkeypatch.setattr(cli, "_demo", user_error)
    assert main(["demo"]) == 1
    assert capsys.readouterr().err.strip() == "xr-physcube demo: error: lai must lie in [0, 15]"

    def bug(args):
        raise ValueError("an internal bug")

    monkeypatch.setattr(cli, "_demo", bug)
    with pytest.raises(ValueError, match="internal bug"):
        main(["demo"])


def test_train_vae_command_is_built_from_the_recipes(tmp_path, monkeypatch, capsys):
    import xr_physcube.vae.pretrained as pretrained

    calls = []

    class Fake:
        meta = {"recipe": "fake"}

    def fake_pretrain(name, path, **kwargs):
        calls.append((name, path, kwargs["steps"]))
        return Fake()

    monkeypatch.setattr(pretrained, "pretrain", fake_pretrain)
    monkeypatch.chdir(tmp_path)
    assert main(["train-vae", "pixel_hybrid", "--steps", "5"]) == 0
    assert calls == [("pixel_hybrid", tmp_path.resolve() / "vae_pixel_hybrid.pt", 5)]
    with pytest.raises(SystemExit):
        main(["train-vae", "no_such_recipe"])
    with pytest.raises(SystemExit):
        main(["train-vae", "pixel", "--steps", "0"])
