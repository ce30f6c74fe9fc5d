"""Process-level tuning for large batched runs on CPU.

Every chunk of a batched forward model allocates and frees tens of MB of temporary
tensors. glibc's allocator hands blocks that large back to the kernel on ``free`` and
maps them again on the next allocation; each 4 kB page then costs a page fault that
the kernel must zero-fill, which can take a third of a compiled PROSAIL run on CPU.
:func:`keep_freed_memory` tells glibc to keep freed memory for reuse instead.

The trade-off: the process's resident memory stays at its high-water mark until it
exits. Worth it for batch jobs and benchmarks; not done implicitly on import.

:func:`task_threads` keeps dask threads × torch threads within the cores: each dask
task runs torch with ``cores // dask threads`` threads (at least one).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import sys
import threading
from collections.abc import Iterator

from xr_physcube.exceptions import InvalidArgumentError

_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_THRESHOLD = -3
_MAX_INT = 2**31 - 1


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        return libc if hasattr(libc, "mallopt") else None  # glibc only (not musl)
    except OSError:
        return None


def keep_freed_memory(mmap_threshold_bytes: int = 1 << 30) -> bool:
    """Make glibc keep freed blocks up to ``mmap_threshold_bytes`` (default 1 GiB) for reuse.

    Sets ``M_MMAP_THRESHOLD`` (blocks smaller than this come from the reusable heap) and
    ``M_TRIM_THRESHOLD`` (never return the heap top to the kernel). Same effect as the
    environment variables ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` set
    before Python starts. Returns True if applied, False where the C library is not glibc
    (macOS, Windows, musl), where it does nothing.
    """
    if not 0 < mmap_threshold_bytes <= _MAX_INT:
        raise InvalidArgumentError(f"mmap_threshold_bytes must be in (0, {_MAX_INT}]")
    libc = _libc()
    if libc is None:
        return False
    ok_mmap = libc.mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold_bytes))
    ok_trim = libc.mallopt(_M_TRIM_THRESHOLD, _MAX_INT)
    return bool(ok_mmap and ok_trim)


def _dask_threads() -> int | None:
    """Threads of the dask pool running the current thread: a distributed worker's
    ``nthreads`` or the local threaded scheduler's pool size; None outside a pool."""
    current = threading.current_thread()
    if current is threading.main_thread():
        return None  # the synchronous scheduler, or no dask at all
    try:
        from distributed import get_worker

        return int(get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        pass
    try:
        import dask.threaded as threaded
    except ImportError:
        return None
    pools = [threaded.default_pool, *(p for d in list(threaded.pools.values()) for p in d.values())]
    for pool in pools:
        if pool is not None and current in getattr(pool, "_threads", ()):
            return int(pool._max_workers)
    return os.cpu_count() or 1  # another pool: assume one thread per core, like dask


def torch_threads_per_task(cores: int | None = None) -> int | None:
    """Torch threads for a task on this thread: ``max(1, cores // dask threads)`` inside a
    dask pool (so dask threads × torch threads ≤ cores), None outside one."""
    n_dask = _dask_threads()
    if n_dask is None:
        return None
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return max(1, (cores or os.cpu_count() or 1) // max(n_dask, 1))


@contextlib.contextmanager
def task_threads() -> Iterator[int]:
    """Run a block with :func:`torch_threads_per_task` torch threads (restored after);
    outside a dask pool torch's setting is left alone. Yields the threads in use.

    Every blockwise task of the accessors runs under it: without it each of dask's
    threads would run a full torch thread pool (cores² threads on cores cores)."""
    import torch  # not at import: the command line starts without it

    wanted = torch_threads_per_task()
    before = torch.get_num_threads()
    if wanted is None or wanted >= before:
        yield before
        return
    torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        torch.set_num_threads(before)
