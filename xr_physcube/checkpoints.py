"""One checkpoint layout for every network the package saves.

A checkpoint is a ``torch.save`` dictionary ``{"kind", "config", "state_dict", "meta"}``:
``kind`` names the class that reads it (``"InverseModel"``, ``"PhysVAE"``), ``config``
the constructor's arguments, ``state_dict`` the tensors (CPU), ``meta`` JSON-like
provenance (how it was trained). Files are read with ``weights_only=True`` (no pickled
code runs). Files written before this layout (``{"config", "state", "metadata"}`` of the
inverse networks, no ``kind``) are still read.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import torch

from xr_physcube.exceptions import CheckpointError

KEYS = ("kind", "config", "state_dict", "meta")


def save_checkpoint(
    path: str | Path,
    kind: str,
    config: dict[str, Any],
    module: torch.nn.Module,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write ``module``'s state (persistent tensors, on CPU) with its ``config`` and
    ``meta`` to ``path`` (folders created); returns the path.

    The file is written next to ``path`` under a temporary name and renamed when
    complete, so an interrupted save leaves any previous checkpoint intact.

    Raises:
        CheckpointError: ``path`` is a folder or cannot be written (the message names it).
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"cannot write the checkpoint {path}: it is a folder")
    state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
    blob = {"kind": kind, "config": config, "state_dict": state, "meta": dict(meta or {})}
    partial = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb") as f:
            torch.save(blob, f)
        os.replace(partial, path)
    except (OSError, RuntimeError, ValueError) as err:
        with contextlib.suppress(OSError, ValueError):
            partial.unlink(missing_ok=True)
        reason = getattr(err, "strerror", None) or str(err)
        raise CheckpointError(f"cannot write the checkpoint {path}: {reason}") from err
    return path


def _kind_of(blob: dict[str, Any]) -> str | None:
    if "kind" in blob:
        return blob["kind"]
    config = blob.get("config", {})
    if isinstance(config, dict) and "input_names" in config:
        return "InverseModel"
    if isinstance(config, dict) and "latents" in config:
        return "PhysVAE"
    return None


def load_checkpoint(path: str | Path, kind: str, map_location: Any = "cpu") -> dict[str, Any]:
    """The ``{"config", "state_dict", "meta"}`` of a checkpoint of ``kind``.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: a folder, not a torch checkpoint, not one of this package, or of another
            kind (a VAE file given to the inverse networks' loader, say).
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file {path}")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for a file that is not its own
        first = (str(err).strip().splitlines() or [""])[0][:120]  # torch's text runs long
        raise CheckpointError(
            f"{path} is not a model checkpoint of xr_physcube ({type(err).__name__}: {first})"
        ) from err
    if not isinstance(blob, dict) or "config" not in blob:
        raise CheckpointError(f"{path} is not a model checkpoint of xr_physcube")
    found = _kind_of(blob)
    if found != kind:
        raise CheckpointError(
            f"{path} holds a {found or 'unknown'} checkpoint, not a {kind}"
            + (f"; load it with {found}.load" if found else "")
        )
    state = blob.get("state_dict", blob.get("state"))
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} has no weights (state_dict)")
    return {
        "config": blob["config"],
        "state_dict": state,
        "meta": blob.get("meta", blob.get("metadata", {})),
    }


def state_checksum(module: torch.nn.Module) -> str:
    """SHA-256 (first 16 hex digits) of a model's parameters and buffers, names and
    values: the provenance attribute ``model_sha256`` of the products it makes."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
