"""Reading the package's CSV data tables (``# `` comment lines, then a header row)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import numpy as np


@cache
def read_table(package: str, name: str) -> dict[str, np.ndarray]:
    """Columns of ``<package>/data/<name>`` keyed by header name (float64, read-only)."""
    text = (files(package) / "data" / name).read_text()
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    header = lines[0].split(",")
    values = np.loadtxt(lines[1:], delimiter=",", ndmin=2)
    columns = {h: values[:, i].copy() for i, h in enumerate(header)}
    for col in columns.values():
        col.flags.writeable = False
    return columns
