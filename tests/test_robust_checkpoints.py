"""Loading a file that is not a checkpoint of the right kind says so, with the path, as a
``CheckpointError`` (a ``PhyscubeError`` and ``ValueError``); saving to a place that
cannot be written names the path."""

from __future__ import annotations

import pickle

import pytest
import torch

from xr_physcube.exceptions import CheckpointError, PhyscubeError
from xr_physcube.inverse.nets import InverseModel
from xr_physcube.inverse.pretrained import load_pretrained
from xr_physcube.vae.datacube import DataCubeVAE
from xr_physcube.vae.model import PhysVAE

LOADERS = {
    "InverseModel": InverseModel.load,
    "PhysVAE": PhysVAE.load,
    "DataCubeVAE": DataCubeVAE.load,
}
pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")


def _not_models(tmp_path):
    files = {
        "random bytes": bytes(range(256)) * 4,
        "empty file": b"",
        "a pickle": pickle.dumps({"config": {"input_names": ["B4"]}}),
        "text": b"lai,cab\n1,40\n",
    }
    for name, data in files.items():
        path = tmp_path / f"{name.replace(' ', '_')}.pt"
        path.write_bytes(data)
        yield name, path
    for name, blob in {
        "a dict without config": {"state_dict": {}},
        "a tensor": torch.zeros(3),
        "a config without weights": {"kind": "InverseModel", "config": {"input_names": []}},
    }.items():
        path = tmp_path / f"{name.replace(' ', '_')}.pt"
        torch.save(blob, path)
        yield name, path


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_files_that_are_not_models(tmp_path, kind):
    for what, path in _not_models(tmp_path):
        with pytest.raises(CheckpointError) as info:
            LOADERS[kind](path)
        assert str(path) in str(info.value), what
        assert isinstance(info.value, PhyscubeError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("kind", sorted(LOADERS))
@pytest.mark.parametrize("config", [{"foo": 1}, {"input_names": 5, "hidden": "x"}, [1, 2]])
def test_a_checkpoint_of_the_right_kind_with_a_config_that_does_not_build(tmp_path, kind, config):
    path = tmp_path / "odd.pt"
    torch.save({"kind": kind, "config": config, "state_dict": {}, "meta": {}}, path)
    with pytest.raises(CheckpointError, match=str(path)):
        LOADERS[kind](path)


def test_a_model_of_the_other_kind(tmp_path):
    vae = PhysVAE(hidden=8, depth=1).save(tmp_path / "vae.pt")
    inverse = load_pretrained("s2").save(tmp_path / "inverse.pt")
    with pytest.raises(CheckpointError, match=r"vae\.pt holds a PhysVAE.*PhysVAE\.load"):
        InverseModel.load(vae)
    with pytest.raises(CheckpointError, match=r"inverse\.pt holds a InverseModel"):
        PhysVAE.load(inverse)


def test_weights_that_do_not_fit_the_config(tmp_path):
    net = load_pretrained("s2")
    path = net.save(tmp_path / "net.pt")
    blob = torch.load(path, weights_only=True)
    blob["config"]["hidden"] = [8]
    torch.save(blob, path)
    with pytest.raises(CheckpointError, match=f"{path}.*does not fit"):
        InverseModel.load(path)


def test_a_folder_or_a_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match=f"{tmp_path}.*folder"):
        InverseModel.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="nothere"):
        PhysVAE.load(tmp_path / "nothere.pt")


@pytest.mark.parametrize("kind", ["inverse", "vae"])
def test_saving_where_nothing_can_be_written_names_the_path(tmp_path, kind):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    model = load_pretrained("s2") if kind == "inverse" else PhysVAE(hidden=8, depth=1)
    for target in (blocker / "model.pt", tmp_path, tmp_path / "missing" / "\0bad.pt"):
        with pytest.raises(CheckpointError) as info:
            model.save(target)
        message = str(info.value)
        assert "cannot write" in message and str(target).split("\0")[0] in message
        assert "enforce fail" not in message  # torch's internals stay out of the message
