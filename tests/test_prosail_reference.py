"""PROSPECT-D, PROSPECT-5 and PROSAIL against the independent ``prosail`` package (PyPI 2.0.5).

300 random parameter sets drawn uniformly over the physical bounds (both leaf angle
distributions, full sun/view geometry) are compared on full 400–2500 nm spectra in
float64; the issue's tolerance is a max absolute difference of 1e-4.

Known difference, documented: ``prosail`` does not fold the relative azimuth into
[0°, 180°] (the 4SAIL Fortran original does, ``psi = abs(psi - 360*nint(psi/360))``),
so above 180° it evaluates the hot-spot term with a negative azimuth. We compare with
the reference for psi in [0°, 180°] and test the published folding (symmetry psi ↔
360° − psi) separately in ``test_sail.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

prosail_ref = pytest.importorskip("prosail")

from xr_physcube.models import prospect as prospect_mod  # noqa: E402
from xr_physcube.models import sail as sail_mod  # noqa: E402
from xr_physcube.models.prosail import ProsailParameters, prosail  # noqa: E402
from xr_physcube.models.prospect import LeafParameters, prospect  # noqa: E402

N_SETS = 300
TOL = 1e-4


def _uniform(rng, spec, n, lower=None, upper=None):
    lo = spec.lower if lower is None else lower
    hi = spec.upper if upper is None else upper
    return rng.uniform(lo, hi, n)


def _random_sets(seed: int, n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = prospect_mod
    s = sail_mod
    # Verhoef (a, b) must satisfy |a| + |b| <= 1: draw inside that diamond.
    a = rng.uniform(-1, 1, n)
    b = rng.uniform(-1, 1, n) * (1 - np.abs(a))
    return {
        "N": _uniform(rng, p.N, n),
        "cab": _uniform(rng, p.CAB, n),
        "car": _uniform(rng, p.CAR, n),
        "anth": _uniform(rng, p.ANTH, n),
        "cbrown": _uniform(rng, p.CBROWN, n),
        "cw": _uniform(rng, p.CW, n),
        "cm": _uniform(rng, p.CM, n),
        "lai": _uniform(rng, s.LAI, n),
        "ala": _uniform(rng, s.ALA, n),
        "lidfa": a,
        "lidfb": b,
        "hspot": _uniform(rng, s.HSPOT, n),
        "psoil": _uniform(rng, s.PSOIL, n),
        "rsoil": _uniform(rng, s.RSOIL, n),
        "tts": _uniform(rng, s.TTS, n),
        "tto": _uniform(rng, s.TTO, n),
        "psi": _uniform(rng, s.PSI, n, upper=180.0),
    }


@pytest.fixture(scope="module")
def draws() -> dict[str, np.ndarray]:
    return _random_sets(20261125, N_SETS)


@pytest.mark.parametrize("version", ["D", "5"])
def test_prospect_matches_reference(draws, version):
    keys = ["N", "cab", "car", "anth", "cbrown", "cw", "cm"]
    t = {k: torch.tensor(draws[k], dtype=torch.float64) for k in keys}
    if version == "5":
        t["anth"] = torch.zeros(N_SETS, dtype=torch.float64)
    ours = prospect(LeafParameters(**t), version=version)
    worst = 0.0
    for i in range(N_SETS):
        _, refl, trans = prosail_ref.run_prospect(
            draws["N"][i],
            draws["cab"][i],
            draws["car"][i],
            draws["cbrown"][i],
            draws["cw"][i],
            draws["cm"][i],
            ant=float(t["anth"][i]),
            prospect_version=version,
        )
        worst = max(
            worst,
            np.abs(ours.reflectance[i].numpy() - refl).max(),
            np.abs(ours.transmittance[i].numpy() - trans).max(),
        )
    assert worst <= TOL, f"PROSPECT-{version}: max |diff| = {worst:.3g}"


@pytest.mark.parametrize(
    ("version", "lidf_type"), [("D", "campbell"), ("D", "verhoef"), ("5", "verhoef")]
)
def test_prosail_matches_reference_all_terms(draws, version, lidf_type):
    n = N_SETS if version == "D" and lidf_type == "campbell" else N_SETS // 3
    t = {k: torch.tensor(v[:n], dtype=torch.float64) for k, v in draws.items()}
    if version == "5":
        t["anth"] = torch.zeros(n, dtype=torch.float64)
    ours = prosail(ProsailParameters(**t), version=version, lidf_type=lidf_type)
    assert ours.rsot.dtype == torch.float64 and ours.rsot.shape == (n, 2101)
    worst = 0.0
    for i in range(n):
        d = {k: float(t[k][i]) for k in t}
        ref = prosail_ref.run_prosail(
            d["N"],
            d["cab"],
            d["car"],
            d["cbrown"],
            d["cw"],
            d["cm"],
            d["lai"],
            d["ala"] if lidf_type == "campbell" else d["lidfa"],
            d["hspot"],
            d["tts"],
            d["tto"],
            d["psi"],
            ant=d["anth"],
            prospect_version=version,
            typelidf=2 if lidf_type == "campbell" else 1,
            lidfb=d["lidfb"],
            factor="ALL",
            rsoil=d["rsoil"],
            psoil=d["psoil"],
        )
        for mine, theirs in zip((ours.rsot, ours.rddt, ours.rsdt, ours.rdot), ref, strict=True):
            worst = max(worst, float(np.abs(mine[i].numpy() - theirs).max()))
    assert worst <= TOL, f"PROSAIL-{version}/{lidf_type}: max |diff| = {worst:.3g}"


def test_reference_comparison_covers_the_bounds(draws):
    """The random sets really span the parameter space (guards the test itself)."""
    for name in ("lai", "tts", "tto", "cab", "cw", "cm", "N"):
        lo, hi = draws[name].min(), draws[name].max()
        spec = ProsailParameters.parameter_set()[name]
        span = spec.upper - spec.lower
        assert lo - spec.lower < 0.05 * span and spec.upper - hi < 0.05 * span, name
