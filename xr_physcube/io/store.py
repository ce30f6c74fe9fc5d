"""Zarr stores that say whether they are complete: the batch jobs' writer and reader.

A job writes its store region by region (one spatial block of every variable at a time,
all of ``time`` at once) and records each finished region in a ``.xr_physcube_done``
folder inside the store. The group attribute ``xr_physcube_status`` reads
``"incomplete"`` until the last region is written; then it becomes ``"complete"``, the
record folder is removed and the metadata is consolidated. So

- :func:`open_store` refuses an interrupted store (:class:`IncompleteStoreError`), and a
  plain ``xr.open_zarr`` warns that consolidated metadata is missing;
- ``write_store(..., resume=True)`` skips the regions already written and writes the
  others, giving the store an uninterrupted run gives (same regions, same code);
- a store is replaced only if it is one of ours (:func:`store_status` not None): nothing
  else is ever deleted.

The store is Zarr v2 with consolidated metadata (``ZARR_FORMAT``): every reader (zarr 2
and 3, xarray's default ``open_zarr``, GDAL) opens it in one metadata read.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
from pathlib import Path

import xarray as xr

from xr_physcube._zarr import ZARR_FORMAT
from xr_physcube.exceptions import IncompleteStoreError, InvalidArgumentError

STATUS_ATTR = "xr_physcube_status"
JOB_ATTR = "xr_physcube_job"
DONE_DIR = ".xr_physcube_done"
SPATIAL_DIMS = ("y", "x")


def _attrs(store: Path) -> dict:
    """The group attributes of a Zarr v2 ``store`` ({} if none or unreadable)."""
    try:
        attrs = json.loads((store / ".zattrs").read_text())
    except (OSError, ValueError):
        return {}
    return attrs if isinstance(attrs, dict) else {}


def store_status(store: str | Path) -> str | None:
    """``"complete"``, ``"incomplete"`` or None (no store, or not written by
    :func:`write_store`), from the store's group attributes."""
    status = _attrs(Path(store)).get(STATUS_ATTR)
    return status if status in ("complete", "incomplete") else None


def open_store(store: str | Path, **kwargs) -> xr.Dataset:
    """``xr.open_zarr`` of a store written by a job; :class:`IncompleteStoreError` if the
    job was interrupted (its unwritten chunks would read as NaN, like masked pixels)."""
    if store_status(store) == "incomplete":
        raise IncompleteStoreError(
            f"{store} is incomplete: the job that wrote it was interrupted; run it again "
            "with --resume (or write_store(..., resume=True)) to finish it"
        )
    return xr.open_zarr(store, **kwargs)


def _fingerprint(result: xr.Dataset) -> str:
    """What a resumed job must share with the interrupted one: variables, dims, dtypes,
    shapes, chunks and coordinates."""
    layout = {
        name: [list(var.dims), str(var.dtype), list(var.shape), var.chunks and list(var.chunks)]
        for name, var in sorted(result.variables.items())
    }
    digest = hashlib.sha256(json.dumps(layout, default=str).encode())
    for name in sorted(result.coords):
        if result[name].chunks is None:
            digest.update(result[name].values.tobytes())
    return digest.hexdigest()[:16]


def _regions(result: xr.Dataset) -> list[dict[str, slice]]:
    """The spatial blocks of ``result``'s dask chunks, as ``to_zarr`` regions."""
    chunks = result.chunksizes
    bounds = []
    for dim in SPATIAL_DIMS:
        sizes = chunks.get(dim, (result.sizes[dim],))
        edges = list(itertools.accumulate(sizes, initial=0))
        bounds.append([slice(a, b) for a, b in itertools.pairwise(edges)])
    return [dict(zip(SPATIAL_DIMS, pair, strict=True)) for pair in itertools.product(*bounds)]


def _is_spatial(var: xr.Variable) -> bool:
    return set(SPATIAL_DIMS) <= set(var.dims)


def _region_key(region: dict[str, slice]) -> str:
    return "_".join(f"{region[d].start}-{region[d].stop}" for d in SPATIAL_DIMS)


def _mark_done(_written, marker: Path) -> None:
    marker.touch()


def check_replaceable(store: Path, overwrite: bool, resume: bool) -> None:
    """Refuse to write over ``store`` unless it is one of ours and the caller said so:
    ``overwrite`` replaces a store written by a job (or an empty folder), ``resume``
    continues an incomplete one. Nothing else is ever deleted."""
    status = store_status(store)
    if resume:
        if status != "incomplete":
            what = {"complete": "is complete", None: "is not an interrupted job's store"}
            raise FileExistsError(f"--resume: {store} {what[status]}; nothing to resume")
        return
    if not store.exists():
        return
    if not overwrite:
        hint = " (interrupted: pass --resume)" if status == "incomplete" else ""
        raise FileExistsError(f"{store} already exists{hint}; pass --overwrite to replace it")
    empty_dir = store.is_dir() and not any(store.iterdir())
    if status is None and not empty_dir:
        raise FileExistsError(
            f"{store} exists and was not written by xr-physcube; --overwrite only replaces "
            "a store a job wrote (or an empty folder)"
        )


def write_store(
    result: xr.Dataset,
    store: str | Path,
    *,
    resume: bool = False,
    client=None,
    progress: bool = True,
) -> None:
    """Compute ``result`` into the Zarr ``store`` region by region, resumably.

    Args:
        result: lazy Dataset with ``y`` and ``x`` dims; each task computes one spatial
            block (all of ``time``), so its memory is that of the blocks being computed.
        store: folder to write. An existing one is replaced only if it is a job's store
            or an empty folder (:func:`check_replaceable`; FileExistsError otherwise; the
            CLI checks before loading anything).
        resume: continue the incomplete ``store`` of an interrupted run of the same job
            (same variables, shapes, chunks and coordinates, else
            :class:`~xr_physcube.exceptions.InvalidArgumentError`).
        client: a ``dask.distributed.Client`` to compute on (default: the current
            scheduler, e.g. dask threads).
        progress: show a progress bar.
    """
    import dask

    store = Path(store)
    missing = [d for d in SPATIAL_DIMS if d not in result.dims]
    if missing:
        raise InvalidArgumentError(f"write_store needs dims {SPATIAL_DIMS}; missing {missing}")
    job = _fingerprint(result)
    done = store / DONE_DIR
    if resume:
        if _attrs(store).get(JOB_ATTR) != job:
            raise InvalidArgumentError(
                f"--resume: {store} was written by a different job (other variables, extent, "
                "dates or chunks); write to a new store instead"
            )
    else:
        check_replaceable(store, overwrite=True, resume=False)  # never a user's files
        if store.exists():
            shutil.rmtree(store)
        header = result.copy()
        header.attrs = {**result.attrs, STATUS_ATTR: "incomplete", JOB_ATTR: job}
        for name, var in result.variables.items():  # small lazy non-spatial variables
            if var.chunks is not None and not _is_spatial(var):
                header[name] = var.load()
        # metadata and the in-memory coordinates now; the dask arrays region by region
        header.to_zarr(store, mode="w-", zarr_format=ZARR_FORMAT, consolidated=False, compute=False)
        done.mkdir()  # a Zarr group of its own, so Zarr readers know what it is
        (done / ".zgroup").write_text(json.dumps({"zarr_format": ZARR_FORMAT}))
    body = result.drop_vars([n for n, v in result.variables.items() if not _is_spatial(v)])
    tasks = []
    for region in _regions(result):
        marker = done / _region_key(region)
        if marker.exists():
            continue
        part = body.isel(region).to_zarr(
            store, region=region, zarr_format=ZARR_FORMAT, consolidated=False, compute=False
        )
        tasks.append(dask.delayed(_mark_done)(part, marker))
    _compute(tasks, client, progress)
    _finish(store)


def _compute(tasks: list, client, progress: bool) -> None:
    import dask

    if not tasks:
        return
    if client is not None:
        from dask.distributed import progress as progress_bar

        futures = client.compute(tasks)
        if progress:
            progress_bar(futures)
        client.gather(futures)
        return
    if progress:
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            dask.compute(*tasks)
    else:
        dask.compute(*tasks)


def _finish(store: Path) -> None:
    """Mark ``store`` complete, drop the region records and consolidate the metadata."""
    import zarr

    group = zarr.open_group(store, mode="r+", zarr_format=ZARR_FORMAT)
    group.attrs[STATUS_ATTR] = "complete"
    shutil.rmtree(store / DONE_DIR, ignore_errors=True)
    zarr.consolidate_metadata(store, zarr_format=ZARR_FORMAT)
