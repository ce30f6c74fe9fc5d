"""The shipped models give the same outputs through the accessors as values recorded
from the code before the xarray layer moved (``reference_outputs.py``).

Same up to float32 rounding: bit-identity holds on the machine that recorded them, but
another CPU or BLAS build may round the last bits differently (a CI run saw every
product differ); a real change of behaviour moves values far more than ``RTOL``.
"""

from __future__ import annotations

import numpy as np
from reference_outputs import STORE, compute_outputs

RTOL = 1e-4
"""Relative tolerance, ~1000 float32 ulps: rounding noise through networks and a
365-day SAFY loop stays well under it; a changed weight, equation or default does not."""
ATOL = 1e-6
"""Absolute floor for values near zero (~16 float32 ulps at 1: FAPAR near 0 moved by
4.8e-7 between two runs on this machine under load; reflectance, sigma0 and biomass are
O(1e-3..1e3), so a real change still shows)."""
SCALE_ATOL = 1e-6
"""...and at least this fraction of the array's largest value (~16 float32 ulps of it): a
network's de-normalised output carries rounding noise of that absolute size at every
pixel, so near-zero pixels of a large-scale variable cannot be compared relatively (canopy
chlorophyll content, up to ~370, moved 1.5e-5 at a pixel of 0.044 when the simulated
input reflectances moved <= 5e-7 from a reordered float32 GEMM)."""


def _atol(want: np.ndarray) -> float:
    finite = np.abs(want[np.isfinite(want)])
    return max(ATOL, SCALE_ATOL * float(finite.max(initial=0.0)))


def _worst(got: np.ndarray, want: np.ndarray) -> str:
    ok = np.isfinite(want) & np.isfinite(got)
    diff = np.abs(got[ok].astype(float) - want[ok].astype(float))
    rel = diff / np.maximum(np.abs(want[ok].astype(float)), ATOL)
    return f"max |diff| {diff.max(initial=0):.3g}, max rel {rel.max(initial=0):.3g}"


def test_accessor_outputs_match_the_recorded_ones():
    recorded = np.load(STORE)
    got = compute_outputs()
    assert sorted(got) == sorted(recorded.files)
    differ = {
        k: _worst(got[k], recorded[k])
        for k in recorded.files
        if not np.allclose(got[k], recorded[k], rtol=RTOL, atol=_atol(recorded[k]), equal_nan=True)
    }
    assert not differ, f"outputs changed: {differ}"
    nan_moved = [k for k in recorded.files if (np.isnan(got[k]) != np.isnan(recorded[k])).any()]
    assert not nan_moved, f"valid pixels changed: {nan_moved}"
    # the comparison is not vacuous: every product has finite values
    assert all(np.isfinite(got[k]).any() for k in got)


def test_the_tolerance_catches_a_small_real_change():
    recorded = np.load(STORE)
    lai = recorded["retrieve_s2/lai"]
    nudged = np.where(np.isfinite(lai), lai * 1.001 + 1e-3, lai)  # 0.1 % + 0.001 m2/m2
    assert not np.allclose(nudged, lai, rtol=RTOL, atol=_atol(lai), equal_nan=True)
