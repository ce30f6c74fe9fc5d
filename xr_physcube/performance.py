"""Process-level tuning for large batched runs on CPU.

Every chunk of a batched forward model allocates and frees tens of MB of temporary
tensors. glibc's allocator hands blocks that large back to the kernel on ``free`` and
maps them again on the next allocation; each 4 kB page then costs a page fault that
the kernel must zero-fill, which can take a third of a compiled PROSAIL run on CPU.
:func:`keep_freed_memory` tells glibc to keep freed memory for reuse instead.

The trade-off: the process's resident memory stays at its high-water mark until it
exits. Worth it for batch jobs and benchmarks; not done implicitly on import.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

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
