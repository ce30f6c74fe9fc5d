"""Where ``xr-physcube demo`` writes, and the check that it replaces only its own files.

Writing a Zarr store with ``mode="w"`` deletes everything in its folder first, so the
demo's stores are marked (root attribute :data:`MARKER`) and a path is written only if
it does not exist, is an empty folder, or is a store with that mark. The figures are
replaced only next to such a store (a previous run of the demo in the same folder).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from xr_physcube.exceptions import InvalidArgumentError

MARKER = "xr_physcube_output"
"""Root attribute of the demo's Zarr stores; its value names the command."""

DEMO_STORES = ("retrieval.zarr", "datacube.zarr")
DEMO_FIGURES = ("lai_map.png", "datacube.png")


def is_marked_store(path: Path, command: str = "demo") -> bool:
    """True if ``path`` is a Zarr store (v2 or v3) whose root attributes carry
    :data:`MARKER` = ``command``, or a store :func:`~xr_physcube.io.store.write_store`
    wrote (complete or interrupted)."""
    from xr_physcube.io.store import store_status

    if store_status(path) is not None:
        return True
    for name, key in ((".zattrs", None), ("zarr.json", "attributes")):
        meta = path / name
        if meta.is_file():
            try:
                attrs = json.loads(meta.read_text())
            except (OSError, ValueError):
                return False
            attrs = attrs.get(key, {}) if key else attrs
            return isinstance(attrs, dict) and attrs.get(MARKER) == f"xr-physcube {command}"
    return False


def prepare_demo_out(out: Path) -> None:
    """Create ``out`` and check that the demo may write there.

    Raises:
        FileExistsError: a store or figure path of the demo holds something that is not
            the demo's previous output (a folder of the user's files, another store).
        InvalidArgumentError: ``out`` cannot be created or written to.
    """
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} exists and is not a folder")
    foreign = []
    ours = False
    for name in DEMO_STORES:
        store = out / name
        if not store.exists():
            continue
        if store.is_dir() and (is_marked_store(store) or not any(store.iterdir())):
            ours = ours or is_marked_store(store)
            continue
        foreign.append(store)
    foreign += [out / f for f in DEMO_FIGURES if (out / f).exists() and not ours]
    if foreign:
        listed = ", ".join(str(p) for p in foreign)
        raise FileExistsError(
            f"--out {out}: {listed}: already there and not written by a previous "
            "xr-physcube demo, which would delete or overwrite it. Choose another --out "
            "(a store of an older demo, written without the mark: delete it yourself)"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        raise InvalidArgumentError(
            f"--out {out} cannot be written to ({err.strerror or err})"
        ) from err


def check_train_out(path: Path, kind: str) -> None:
    """Let ``train-inverse``/``train-vae`` write ``path`` only if it does not exist or is
    a checkpoint of ``kind`` (a previous training's output); else FileExistsError."""
    from xr_physcube.checkpoints import load_checkpoint
    from xr_physcube.exceptions import CheckpointError

    if not path.exists():
        return
    try:
        load_checkpoint(path, kind)
    except (CheckpointError, OSError) as err:
        raise FileExistsError(
            f"--out {path} exists and is not a {kind} checkpoint; it is kept. Choose another --out"
        ) from err
