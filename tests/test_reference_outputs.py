"""The shipped models give bit-identical outputs through the accessors, compared with
values recorded from the code before the xarray layer moved (``reference_outputs.py``)."""

from __future__ import annotations

import numpy as np
from reference_outputs import STORE, compute_outputs


def test_accessor_outputs_are_bit_identical_to_the_recorded_ones():
    recorded = np.load(STORE)
    got = compute_outputs()
    assert sorted(got) == sorted(recorded.files)
    differ = [k for k in recorded.files if not np.array_equal(got[k], recorded[k], equal_nan=True)]
    assert not differ, f"outputs changed: {differ}"
    # the comparison is not vacuous: every product has finite values
    assert all(np.isfinite(got[k]).any() for k in got)
