"""keep_freed_memory: freed temporaries are reused instead of page-faulted back in."""

import subprocess
import sys

import pytest

from xr_physcube.performance import _libc, keep_freed_memory

_PROBE = """
import resource, sys, torch
from xr_physcube.performance import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def faults_of_one_allocation():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.ones(16 * 1024 * 1024)  # 64 MB, written once
    del x
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults_of_one_allocation()
print(min(faults_of_one_allocation() for _ in range(3)))
"""


def _second_allocation_faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(_libc() is None, reason="needs glibc")
def test_freed_memory_is_reused_without_page_faults():
    default = _second_allocation_faults("default")
    kept = _second_allocation_faults("keep")
    assert default > 10_000  # 64 MB / 4 kB pages: mapped afresh every time
    assert kept < default / 10


def test_bad_threshold_is_refused():
    with pytest.raises(ValueError, match="mmap_threshold_bytes"):
        keep_freed_memory(0)
