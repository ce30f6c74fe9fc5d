"""``benchmarks/bench_real.py`` on the measured data in ``../shared/realdata`` (skipped
where that folder is absent): the filtered sample counts, a finite RMSE for every
method, and leave-one-group-out methods that never see their test group."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "realdata"
PEERS = ROOT.parent / "shared" / "peers"
SENSAGRI = DATA / "sensagri_s2_lai" / "s2_lai_field.csv"
MNI = DATA / "mni2017_s1" / "s1_sm_lai_mni2017.csv"
SITES = {"FR", "IT", "ES"}
FIELDS = {301, 319, 508}

pytestmark = pytest.mark.skipif(
    not (SENSAGRI.exists() and MNI.exists()),
    reason=f"measured data not found at {DATA} (it is not part of the repository)",
)


@pytest.fixture(scope="module")
def bench():
    path = ROOT / "benchmarks" / "bench_real.py"
    spec = importlib.util.spec_from_file_location("bench_real", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def _spy(bench, group: str, calls: list, calibrated: bool):
    """A method recording the groups the harness hands it; predicts the training mean."""

    def predict(train, test):
        calls.append((set(train[group]), set(test[group])))
        if calibrated:
            assert not set(train[group]) & set(test[group])
            return np.full(len(test), train.truth.mean()), None
        assert len(train) == 0  # shipped methods get no training rows
        return np.full(len(test), 1.0), None

    kind = "calibrated" if calibrated else "shipped"
    return bench.Method(f"spy {kind} {group}", predict, calibrated=calibrated)


def _main(bench, *argv, extra_s2=(), extra_s1=()):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        results = bench.main(list(argv), extra_s2, extra_s1)
    return results, out.getvalue()


@pytest.fixture(scope="module")
def run(bench):
    calls = {k: [] for k in ("s2_fit", "s2_shipped", "s1_fit", "recalibrated", "cd_fit")}

    class CheckedRecalibrated(bench.Recalibrated):  # the registry's own calibrated method
        def __call__(self, train, test):
            calls["recalibrated"].append((set(train.site), set(test.site)))
            assert not set(train.site) & set(test.site)
            return super().__call__(train, test)

    extra_s2 = [
        _spy(bench, "site", calls["s2_fit"], True),
        _spy(bench, "site", calls["s2_shipped"], False),
    ]
    extra_s1 = [_spy(bench, "field", calls["s1_fit"], True)]
    fit_cd = bench.fit_change_detection_on

    def checked_fit_cd(rows, descriptor="lai"):  # the refit of the change-detection recipe
        calls["cd_fit"].append((set(rows.field), descriptor))
        return fit_cd(rows, descriptor)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bench, "Recalibrated", CheckedRecalibrated)
        mp.setattr(bench, "fit_change_detection_on", checked_fit_cd)
        results, printed = _main(
            bench, "--data", str(DATA), "--peers", str(PEERS), extra_s2=extra_s2, extra_s1=extra_s1
        )
    return results, printed, calls


def test_sensagri_filter(bench):
    rows, _ = bench.load_sensagri(SENSAGRI, 15, "keep-one")
    assert (rows.dt_field_minus_s2_days.abs() <= 15).all()
    assert rows.sample_id.is_unique  # one S2 date per field sample
    assert not (rows.same_field_sample_in_other_tile & (rows.tile == "T33TWG")).any()
    assert rows.same_field_sample_in_other_tile.sum() == 31  # their T33TWF copies stay
    assert rows.truth.notna().all() and ((rows.psi >= 0) & (rows.psi <= 180)).all()
    assert len(rows) == 405
    assert rows.site.value_counts().to_dict() == {"ES": 179, "IT": 135, "FR": 91}
    both, _ = bench.load_sensagri(SENSAGRI, 15, "drop-both")  # the 374
    assert len(both) == 374 and not both.same_field_sample_in_other_tile.any()


def test_counts_and_finite_rmse(run):
    results, printed, _ = run
    by = {(r["dataset"], r["method"], r["group"]): r for r in results}
    methods = {r["method"] for r in results if r["dataset"] == "sensagri"}
    assert any("SNAP" in m for m in methods), methods
    assert any("pixel_hybrid" in m for m in methods) and any(m.endswith(" pixel") for m in methods)
    for m in methods:
        counts = {g: by[("sensagri", m, g)]["n"] for g in ("all", "FR", "IT", "ES")}
        assert counts == {"all": 405, "FR": 91, "IT": 135, "ES": 179}, m
        assert by[("sensagri", m, "all")]["n_nan"] == 0, m
    mni = [r for r in results if r["dataset"] in ("mni", "mni_forward")]
    assert {"VV", "VH", "training mean (other fields)"} <= {r["method"] for r in mni}
    soil = {r["method"] for r in mni if r["method"].startswith("physics.soil_moisture")}
    assert len(soil) == 4 and any("inverse" in m for m in soil), soil
    assert any("s1_lai" in r["method"] for r in mni)  # retrieve on the LAI cube
    for r in mni:
        expected = {"all": 208, 301: 76, 508: 76, 319: 56}[r["group"]]
        assert (r["n"], r["n_nan"]) == (expected, 0), r
    for r in results:
        assert np.isfinite(r["rmse"]) and r["rmse"] > 0, r
    # the printed tables: one data row per result, each with a finite RMSE (4th column)
    cells = [line.split("|")[1:-1] for line in printed.splitlines() if re.match(r"\| \S", line)]
    body = [c for c in cells if c[2].strip().isdigit()]
    assert len(body) == len(results)
    assert all(np.isfinite(float(c[3])) for c in body)
    assert "PAI" in printed and "STAND-IN" in printed


def test_calibrated_methods_never_see_their_test_group(run):
    results, _, calls = run
    for key, groups in (("s2_fit", SITES), ("recalibrated", SITES), ("s1_fit", FIELDS)):
        folds = calls[key]
        assert len(folds) == 3, key
        assert sorted(len(h) for _, h in folds) == [1, 1, 1]
        assert set().union(*(h for _, h in folds)) == groups
        for seen, held_out in folds:
            assert seen == groups - held_out, key
    assert calls["s2_shipped"] == [(set(), SITES)]  # once, on all rows, nothing to fit
    # change detection's recipe is refitted without the scored field, per descriptor
    for descriptor in ("lai", "ndvi"):
        seen = [fields for fields, d in calls["cd_fit"] if d == descriptor]
        held_out = [FIELDS - f for f in seen]
        assert len(held_out) == 3 and all(len(h) == 1 for h in held_out)
        assert set().union(*held_out) == FIELDS
    baseline = [r for r in results if r["method"] == "training mean (other fields)"]
    assert len(baseline) == 4 and all(abs(r["skill"]) < 1e-12 for r in baseline)


def test_leak_guard(bench):
    rows = pd.DataFrame({"site": ["FR", "IT", "ES", "ES"], "truth": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(bench.LeakError, match="ES"):
        bench.check_disjoint("m", rows, rows[rows.site == "ES"], "site")
    bench.check_disjoint("m", rows[rows.site != "ES"], rows[rows.site == "ES"], "site")
    nan_site = rows.assign(site=[None, "IT", "ES", "ES"])
    fit = bench.Method("fit", lambda train, test: (np.zeros(len(test)), None), calibrated=True)
    with pytest.raises(ValueError, match="every row needs its group"):
        bench.predict_all(fit, nan_site, "site")


def test_skips_what_is_absent(bench, tmp_path):
    results, printed = _main(bench, "--data", str(tmp_path / "none"))
    assert results == [] and "measured data not found" in printed and "skipped" in printed
    results, printed = _main(bench, "--data", str(DATA), "--peers", str(tmp_path))
    assert "SNAP BV-NET peer not found" in printed
    assert results and not any("SNAP" in r["method"] for r in results)
