"""Peak resident memory of a block of code, for the benchmarks.

:class:`PeakRSS` samples the process's RSS (psutil) from a thread every few
milliseconds; :func:`fresh_python` runs a snippet in a new interpreter (so that its
peak is its own, not the benchmark's) with this folder importable.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
MIB = 2**20


class PeakRSS:
    """``with PeakRSS() as rss: ...``; then ``rss.base`` (bytes at entry), ``rss.peak``
    (highest sample) and ``rss.above`` (peak - base)."""

    def __init__(self, interval_s: float = 0.002):
        self.interval_s = interval_s
        self._proc = psutil.Process()
        self._done = threading.Event()
        self.base = self.peak = 0

    def _sample(self) -> None:
        while not self._done.wait(self.interval_s):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> PeakRSS:
        self.base = self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.peak = max(self.peak, self._proc.memory_info().rss)
        self._done.set()
        self._thread.join()

    @property
    def above(self) -> int:
        return self.peak - self.base


def fresh_python(code: str) -> str:
    """Run ``code`` in a new Python process (``from _rss import PeakRSS`` works there);
    returns its stdout, raising with its stderr if it fails."""
    prelude = f"import sys; sys.path.insert(0, {str(HERE)!r})\n"
    done = subprocess.run(
        [sys.executable, "-c", prelude + code], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return done.stdout
