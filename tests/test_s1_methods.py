"""Sentinel-1 soil-moisture methods: WCM calibration/inversion and change detection.

Synthetic checks (σ0 generated with the methods' own forward models, no noise, so the
fitted/retrieved values must equal the generating ones), input errors, and on the
measured MNI 2017 data (skipped when the shared folder is absent) that the
leave-one-field-out benchmark never fits on the field it scores.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from xr_physcube.exceptions import (
    DimensionError,
    InputUnitsError,
    InvalidArgumentError,
    OutOfRangeError,
    PhyscubeError,
    TimeAxisError,
)
from xr_physcube.models import change_detection as cd
from xr_physcube.models import change_detection_fit as cdf
from xr_physcube.models import wcm_calibration as wcal
from xr_physcube.models import wcm_coefficients as wc
from xr_physcube.models import wcm_inversion as winv
from xr_physcube.models.sar import WcmCoefficients, water_cloud_backscatter

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
HAS_DATA = (DATA / "mni2017_s1" / "s1_sm_lai_mni2017.csv").is_file()


@pytest.fixture(autouse=True)
def _one_thread():
    """Small matrices: one torch thread is faster on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _lin(db):
    return 10.0 ** (np.asarray(db) / 10.0)


def _samples(n=240, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 5.0, n), rng.uniform(30.0, 45.0, n), rng.uniform(0.05, 0.4, n)


# --- WCM calibration ------------------------------------------------------------------


def test_calibration_recovers_linear_soil_and_crop_specific_vegetation():
    lai, theta, mv = _samples()
    group = np.where(np.arange(len(mv)) % 2 == 0, "cereals", "maize")
    soil = {"vv": (-11.0, 25.0, -0.12), "vh": (-19.0, 18.0, -0.20)}
    veg = {
        "cereals": {"vv": (0.08, 0.25), "vh": (0.02, 0.12)},
        "maize": {"vv": (0.15, 0.10), "vh": (0.04, 0.30)},
    }
    sig = {"vv": np.empty_like(mv), "vh": np.empty_like(mv)}
    for g in veg:
        true = wc.WcmCalibration(
            g,
            "linear",
            "lai",
            *(wc.PolarisationCoefficients(*veg[g][p], 0.0, *soil[p]) for p in ("vv", "vh")),
        )
        sel = group == g
        out = winv.forward_db(true, mv[sel], theta[sel], lai[sel])
        sig["vv"][sel], sig["vh"][sel] = _lin(out.vv), _lin(out.vh)
    cals = wcal.calibrate_wcm(sig["vv"], sig["vh"], theta, lai, mv, group=group, dataset="syn")
    assert set(cals) == {"cereals", "maize"}
    for g, cal in cals.items():
        assert cal.dataset == "syn" and cal.n_samples == int((group == g).sum())
        for p in ("vv", "vh"):
            c = cal.pol(p)
            got = (c.a, c.b, c.c_db, c.d_db, c.f_db)
            np.testing.assert_allclose(got, (*veg[g][p], *soil[p]), rtol=1e-6, atol=1e-8)
            assert c.noise_db < 1e-6
    with pytest.raises(AttributeError):  # frozen provenance
        cals["maize"].name = "x"
    scored = cals["maize"].with_lofo(vv_db=2.0)
    assert dict(scored.lofo_rmse) == {"vv_db": 2.0} and cals["maize"].lofo_rmse == ()


def test_calibration_recovers_oh_soil_with_per_series_roughness():
    lai, theta, mv = _samples(seed=1)
    series = np.repeat(["f1", "f2", "f3"], len(mv) // 3)
    hrms = {"f1": 0.6, "f2": 1.0, "f3": 1.8}
    true = wc.WcmCalibration(
        "t",
        "oh",
        "lai",
        wc.PolarisationCoefficients(0.08, 0.25, 0.0),
        wc.PolarisationCoefficients(0.02, 0.12, 0.0),
    )
    out = winv.forward_db(true, mv, theta, lai, hrms=np.vectorize(hrms.get)(series))
    cal = wcal.calibrate_wcm(
        _lin(out.vv), _lin(out.vh), theta, lai, mv, series=series, soil_term="oh"
    )["all"]
    np.testing.assert_allclose(
        [cal.vv.a, cal.vv.b, cal.vh.a, cal.vh.b], [0.08, 0.25, 0.02, 0.12], rtol=1e-6
    )
    np.testing.assert_allclose([h for _, h in cal.series_hrms], [0.6, 1.0, 1.8], rtol=1e-6)
    assert cal.fields == ("f1", "f2", "f3")
    assert cal.hrms == pytest.approx((0.6 * 1.0 * 1.8) ** (1 / 3), rel=1e-6)
    # roughness of one series from its sigma0 alone, at its true moisture
    sel = series == "f3"
    h = winv.estimate_hrms(
        _lin(out.vv)[sel], _lin(out.vh)[sel], theta[sel], lai[sel], cal, mv=mv[sel], n_grid=2000
    )
    assert h == pytest.approx(1.8, rel=3e-3)


def test_forward_model_equals_the_shipped_wcm_and_the_written_out_linear_soil():
    lai, theta, mv = _samples(n=40, seed=5)
    pol_vv, pol_vh = (0.07, 0.3), (0.015, 0.1)
    oh = wc.WcmCalibration(
        "t",
        "oh",
        "lai",
        wc.PolarisationCoefficients(*pol_vv, 1.0),
        wc.PolarisationCoefficients(*pol_vh, 1.0),
        hrms=1.3,
    )
    got = winv.forward_db(oh, mv, theta, lai)
    coefficients = WcmCoefficients(a_vv=pol_vv[0], b_vv=pol_vv[1], a_vh=pol_vh[0], b_vh=pol_vh[1])
    ref = water_cloud_backscatter(mv, 1.3, theta, lai=lai, coefficients=coefficients)
    np.testing.assert_allclose(got.vv.numpy(), 10 * np.log10(ref.vv.numpy()), atol=1e-10)
    np.testing.assert_allclose(got.vh.numpy(), 10 * np.log10(ref.vh.numpy()), atol=1e-10)
    lin = wc.WcmCalibration(
        "t",
        "linear",
        "lai",
        wc.PolarisationCoefficients(*pol_vv, 1.0, -11.0, 25.0, -0.12),
        wc.PolarisationCoefficients(*pol_vh, 1.0, -19.0, 18.0, -0.2),
    )
    cos_t = np.cos(np.radians(theta))
    tau2 = np.exp(-2 * pol_vv[1] * lai / cos_t)
    soil = _lin(-11.0 + 25.0 * mv - 0.12 * (theta - 40.0))
    want = 10 * np.log10(pol_vv[0] * lai * cos_t * (1 - tau2) + tau2 * soil)
    np.testing.assert_allclose(winv.forward_db(lin, mv, theta, lai).vv.numpy(), want, atol=1e-10)


@pytest.mark.parametrize("soil_term", ["linear", "oh"])
def test_invert_mv_returns_the_generating_moisture_and_is_differentiable(soil_term):
    lai, theta, mv = _samples(n=50, seed=2)
    extra = (-11.0, 25.0, -0.12) if soil_term == "linear" else ()
    extra_vh = (-19.0, 18.0, -0.20) if soil_term == "linear" else ()
    cal = wc.WcmCalibration(
        "t",
        soil_term,
        "lai",
        wc.PolarisationCoefficients(0.08, 0.25, 0.5, *extra),
        wc.PolarisationCoefficients(0.02, 0.12, 0.5, *extra_vh),
        hrms=1.2 if soil_term == "oh" else None,
    )
    out = winv.forward_db(cal, mv, theta, lai)
    vv = torch.tensor(_lin(out.vv), requires_grad=True)
    est = winv.invert_mv(vv, _lin(out.vh), theta, lai, cal, prior=False, clip=False)
    np.testing.assert_allclose(est.mv.detach().numpy(), mv, rtol=1e-9)
    assert bool((est.std > 0).all())
    est.mv.sum().backward()
    assert bool(torch.isfinite(vv.grad).all()) and bool((vv.grad > 0).all())
    # with the prior the estimate lies between the measurement and the prior mean
    with_prior = winv.invert_mv(_lin(out.vv), _lin(out.vh), theta, lai, cal, clip=False)
    lo, hi = np.minimum(mv, cal.mv_mean), np.maximum(mv, cal.mv_mean)
    got = with_prior.mv.numpy()
    assert np.all((got >= lo - 1e-12) & (got <= hi + 1e-12))
    assert np.all(with_prior.std.numpy() < est.std.detach().numpy())


# --- change detection -----------------------------------------------------------------


def _series(T=80, n=4, seed=3):
    rng = np.random.default_rng(seed)
    days = np.arange(T) * 1.5
    wave = np.sin(days[:, None] / 8.0 + np.arange(n))
    mv = 0.2 + 0.07 * wave + 0.02 * rng.standard_normal((T, n))
    lai = np.linspace(0.3, 4.5, T)[:, None] * np.linspace(0.8, 1.2, n)
    orbits = np.tile([44, 95, 117, 168], T)[:T]
    theta = np.vectorize({44: 33.3, 95: 44.7, 117: 42.5, 168: 36.0}.get)(orbits)
    theta = theta[:, None] + np.zeros(n)
    return days, mv, lai, theta, orbits


def _sigma0(pc: cd.PolarisationChange, level_db, mv, lai, theta, theta_ref=40.0):
    """σ0 (linear) of the change-detection model, written out here independently:
    dB at theta_ref = level + s0 exp(-2 b LAI / cos θ) mv, then taken back to θ with the
    fitted-slope law or, for incidence_slope None, the cos² law."""
    cos_t = np.cos(np.radians(theta))
    y = level_db + pc.s0 * np.exp(-2.0 * pc.b * lai / cos_t) * mv
    if pc.incidence_slope is None:
        return _lin(y - 20.0 * np.log10(math.cos(math.radians(theta_ref)) / cos_t))
    return _lin(y + pc.incidence_slope * (theta - theta_ref))


@pytest.mark.parametrize("slope", [-0.13, None])
def test_minmax_change_detection_returns_the_true_series(slope):
    days, mv, lai, theta, _ = _series()
    pc = cd.PolarisationChange(s0=22.0, b=0.15, noise_db=0.5, drift_db=0.0, incidence_slope=slope)
    for j in range(mv.shape[1]):  # each series reaches its own bounds
        params = cd.ChangeDetectionParameters(
            vv=pc, vh=None, mv_min=mv[:, j].min(), mv_max=mv[:, j].max()
        )
        sig = _sigma0(pc, -11.0 - j, mv[:, j], lai[:, j], theta[:, j])
        for anchor in ("mid", "dry"):
            est = cd.change_detection_minmax(sig, theta[:, j], lai[:, j], params, anchor=anchor)
            np.testing.assert_allclose(est.mv.numpy(), mv[:, j], atol=1e-12)
        wrong = dataclasses.replace(params, vv=dataclasses.replace(pc, b=0.0))
        off = cd.change_detection_minmax(sig, theta[:, j], lai[:, j], wrong)
        assert np.abs(off.mv.numpy() - mv[:, j]).max() > 0.01  # vegetation term matters


def test_bayesian_change_detection_returns_the_true_series():
    days, mv, lai, theta, _ = _series()
    # constant sensitivity (b = 0): the series level is then not identifiable from σ0 and
    # comes from the prior mean, here the true series mean; the changes come from σ0.
    pv = cd.PolarisationChange(s0=22.0, b=0.0, noise_db=1e-3, drift_db=0.0, incidence_slope=-0.13)
    ph = cd.PolarisationChange(s0=15.0, b=0.0, noise_db=1e-3, drift_db=0.0, incidence_slope=-0.2)
    vv = _sigma0(pv, -11.0, mv, lai, theta)
    vh = _sigma0(ph, -18.0, mv, lai, theta)
    for j in range(mv.shape[1]):
        params = cd.ChangeDetectionParameters(
            vv=pv,
            vh=ph,
            mv_mean=float(mv[:, j].mean()),
            mv_std=1.0,
            mv_corr_days=1e-3,
            mv_min=0.02,
            mv_max=0.5,
        )
        est = cd.change_detection_mv(
            vv[:, j], vh[:, j], theta[:, j], lai[:, j], params, time_days=days
        )
        np.testing.assert_allclose(est.mv.numpy(), mv[:, j], atol=1e-6)


def test_orbit_levels_remove_per_orbit_offsets_and_missing_dates_are_skipped():
    days, mv, lai, theta, orbits = _series(T=60, n=3)
    pc = cd.PolarisationChange(s0=20.0, b=0.1, noise_db=0.8, drift_db=0.1, incidence_slope=None)
    params = cd.ChangeDetectionParameters(vv=pc, vh=None, mv_mean=0.2, mv_std=0.05)
    cos2 = 20 * np.log10(np.cos(np.radians(theta)) / math.cos(math.radians(40.0)))
    S = cd.sensitivity(torch.tensor(lai), torch.tensor(theta), 20.0, 0.1).numpy()
    sig = _lin(-12.0 + S * mv + cos2)
    offset = np.vectorize({44: 1.5, 95: -0.7, 117: 0.3, 168: -2.0}.get)(orbits)[:, None]
    a = cd.change_detection_mv(sig, None, theta, lai, params, time_days=days, orbit=orbits)
    b = cd.change_detection_mv(
        sig * _lin(offset), None, theta, lai, params, time_days=days, orbit=orbits
    )
    np.testing.assert_allclose(a.mv.numpy(), b.mv.numpy(), atol=1e-9)
    holes = sig.copy()
    holes[5:9, 1] = np.nan
    c = cd.change_detection_mv(holes, None, theta, lai, params, time_days=days, orbit=orbits)
    assert np.isfinite(c.mv.numpy()).all()
    np.testing.assert_allclose(c.mv.numpy()[:, [0, 2]], a.mv.numpy()[:, [0, 2]], atol=1e-12)
    assert bool((c.std[5:9, 1] > a.std[5:9, 1]).all())  # less information at missing dates


def test_fit_change_detection_recovers_sensitivity_and_noise():
    rng = np.random.default_rng(4)
    days, mv, lai, theta, _ = _series(T=90, n=4)
    pc = cd.PolarisationChange(s0=25.0, b=0.1, noise_db=0.5, drift_db=0.0, incidence_slope=-0.15)
    vv = _sigma0(pc, -12.0, mv, lai, theta) * _lin(0.5 * rng.standard_normal(mv.shape))
    cols = range(mv.shape[1])
    params = cdf.fit_change_detection(
        [vv[:, j] for j in cols],
        None,
        [theta[:, j] for j in cols],
        [lai[:, j] for j in cols],
        [mv[:, j] for j in cols],
        [days] * len(cols),
        fields=list("abcd"),
    )
    assert params.vh is None and params.fields == ("a", "b", "c", "d")
    assert params.vv.s0 == pytest.approx(25.0, rel=0.15)
    assert params.vv.noise_db == pytest.approx(0.5, rel=0.15)
    assert params.vv.incidence_slope == pytest.approx(-0.15, abs=0.03)
    assert params.mv_mean == pytest.approx(mv.mean()) and params.mv_min < params.mv_max


# --- bad input --------------------------------------------------------------------------


def _valid(n=6):
    return {
        "vv": np.full(n, 0.05),
        "vh": np.full(n, 0.01),
        "theta": np.full(n, 38.0),
        "lai": np.linspace(0.5, 3.0, n),
        "mv": np.linspace(0.1, 0.3, n),
    }


BAD = {
    "nan-only series": lambda d: d | {"vv": np.full_like(d["vv"], np.nan)},
    "negative linear sigma0": lambda d: d | {"vv": -d["vv"]},
    "sigma0 in dB": lambda d: d | {"vv": 10 * np.log10(d["vv"])},
    "theta in radians": lambda d: d | {"theta": np.radians(d["theta"])},
    "mismatched shapes": lambda d: d | {"lai": d["lai"][:-1]},
    "empty arrays": lambda d: {k: v[:0] for k, v in d.items()},
}
ERRORS = {  # the package's exception for each bad input, and a word of its message
    "nan-only series": (OutOfRangeError, "NaN"),
    "negative linear sigma0": (OutOfRangeError, "linear"),
    "sigma0 in dB": (InputUnitsError, "dB"),
    "theta in radians": (InputUnitsError, "radians"),
    "mismatched shapes": (DimensionError, "shape"),
    "empty arrays": (DimensionError, "empty"),
}


def _cal():
    pol = wc.PolarisationCoefficients(0.05, 0.2, 1.0, -12.0, 20.0, -0.1)
    return wc.WcmCalibration("t", "linear", "lai", pol, pol)


CALLS = {
    "calibrate_wcm": lambda d: wcal.calibrate_wcm(d["vv"], d["vh"], d["theta"], d["lai"], d["mv"]),
    "invert_mv": lambda d: winv.invert_mv(d["vv"], d["vh"], d["theta"], d["lai"], _cal()),
    "change_detection_mv": lambda d: cd.change_detection_mv(
        d["vv"],
        d["vh"],
        d["theta"],
        d["lai"],
        cd.ChangeDetectionParameters(
            vv=cd.PolarisationChange(20, 0.1, 1, 0.1), vh=cd.PolarisationChange(15, 0.1, 1, 0.1)
        ),
    ),
    "change_detection_minmax": lambda d: cd.change_detection_minmax(
        d["vv"],
        d["theta"],
        d["lai"],
        cd.ChangeDetectionParameters(vv=cd.PolarisationChange(20, 0.1, 1, 0.1), vh=None),
    ),
    "fit_change_detection": lambda d: cdf.fit_change_detection(
        [d["vv"]], [d["vh"]], [d["theta"]], [d["lai"]], [d["mv"]], [np.arange(len(d["mv"]))]
    ),
}


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("bad", sorted(BAD))
def test_bad_input_raises_the_packages_typed_error(call, bad):
    if call == "change_detection_minmax" and bad == "mismatched shapes":
        data = _valid() | {"theta": _valid()["theta"][:-1]}
    else:
        data = BAD[bad](_valid())
    error, word = ERRORS[bad]
    with pytest.raises(error) as info:
        CALLS[call](data)
    assert isinstance(info.value, ValueError) and isinstance(info.value, PhyscubeError)
    assert word in str(info.value), str(info.value)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: wcal.calibrate_wcm(*_args(), soil_term="iem"), InvalidArgumentError, "soil_term"),
        (lambda: wcal.calibrate_wcm(*_args(), descriptor="evi"), InvalidArgumentError, "evi"),
        (lambda: wcal.calibrate_wcm(*_args(), group=["a"]), DimensionError, "one label"),
        (lambda: winv.invert_mv(None, None, 38.0, 1.0, _cal()), InvalidArgumentError, "give"),
        (lambda: _cal().pol("hh"), InvalidArgumentError, "polarisation"),
        (
            lambda: winv.estimate_hrms(*_args()[:4], _cal()),
            InvalidArgumentError,
            "Oh calibration",
        ),
        (lambda: _cd(time_days=np.arange(6)[::-1]), TimeAxisError, "non-decreasing"),
        (lambda: _cd(time_days=np.arange(5)), DimensionError, "time_days"),
        (lambda: _cd(orbit=[1, 2]), DimensionError, "orbit"),
        (
            lambda: cd.change_detection_minmax(*_args()[::2][:3], _cd_params(), anchor="wet"),
            InvalidArgumentError,
            "anchor",
        ),
        (
            lambda: cdf.fit_change_detection(None, None, [], [], [], []),
            InvalidArgumentError,
            "give",
        ),
        (lambda: cdf.fit_change_detection([], None, [], [], [], []), DimensionError, "no training"),
    ],
)
def test_bad_options_raise_typed_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def _args():
    d = _valid()
    return d["vv"], d["vh"], d["theta"], d["lai"], d["mv"]


def _cd_params():
    return cd.ChangeDetectionParameters(vv=cd.PolarisationChange(20, 0.1, 1, 0.1), vh=None)


def _cd(**kw):
    d = _valid()
    return cd.change_detection_mv(d["vv"], None, d["theta"], d["lai"], _cd_params(), **kw)


def test_valid_input_passes_every_call():
    for name, call in CALLS.items():
        if name != "fit_change_detection":
            call(_valid())


def test_change_detection_names_the_series_without_data():
    d = _valid()
    vv = np.stack([d["vv"], np.full_like(d["vv"], np.nan)], axis=1)
    two = {k: np.stack([v, v], axis=1) for k, v in d.items()}
    params = cd.ChangeDetectionParameters(vv=cd.PolarisationChange(20, 0.1, 1, 0.1), vh=None)
    with pytest.raises(OutOfRangeError, match=r"series \[1\]"):
        cd.change_detection_mv(vv, None, two["theta"], two["lai"], params)


# --- the benchmark on measured data ----------------------------------------------------


@functools.cache
def _bench():
    name = "bench_s1_methods"
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_benchmark_without_data_says_so_and_exits_0(tmp_path, capsys):
    assert _bench().main(["--data", str(tmp_path)]) == 0
    assert "no data" in capsys.readouterr().out


@pytest.mark.skipif(not HAS_DATA, reason=f"measured data not present ({DATA})")
def test_lofo_never_fits_on_the_left_out_field(monkeypatch):
    bench = _bench()
    data = bench.load(DATA)
    assert len(data) >= 3

    def rows(*cols) -> set:
        return set(zip(*(np.round(np.asarray(c, float).ravel(), 9) for c in cols), strict=True))

    field_rows = {k: rows(f.vv, f.vh, f.theta, f.lai, f.mv) for k, f in data.items()}
    for a in field_rows:  # the row signature identifies a field
        for b in field_rows:
            assert a == b or field_rows[a].isdisjoint(field_rows[b])
    seen: list[tuple[str, str, set]] = []
    current = {}
    real = {
        "cal": bench.calibrate_wcm,
        "cd": bench.fit_change_detection,
        "fold": bench.predict_fold,
    }

    def fold(test, train, variants=True):
        current["test"] = test.name
        return real["fold"](test, train, variants)

    def spy_cal(vv, vh, theta, lai, mv, **kw):  # few iterations: this checks data flow only
        seen.append((current["test"], "wcm", rows(vv, vh, theta, lai, mv)))
        return real["cal"](vv, vh, theta, lai, mv, **kw, max_iter=15)

    def spy_cd(vv, vh, theta, lai, mv, days, **kw):
        cat = [np.concatenate(x) for x in (vv, vh, theta, lai, mv)]
        seen.append((current["test"], "cd", rows(*cat)))
        return real["cd"](vv, vh, theta, lai, mv, days, **kw, max_iter=10)

    monkeypatch.setattr(bench, "predict_fold", fold)
    monkeypatch.setattr(bench, "calibrate_wcm", spy_cal)
    monkeypatch.setattr(bench, "fit_change_detection", spy_cd)
    folds = bench.run_lofo(data, variants=False)
    assert set(folds) == set(data)
    for test in data:
        fits = [(kind, r) for t, kind, r in seen if t == test]
        assert {k for k, _ in fits} == {"wcm", "cd"}
        train_rows = set().union(*(field_rows[k] for k in data if k != test))
        for _, r in fits:
            assert r.isdisjoint(field_rows[test]), f"fold {test}: a fit saw the left-out field"
            assert r <= train_rows

    # the skill reference and the baseline are the training fields' mean mv
    for test, out in folds.items():
        train_mv = np.concatenate([f.mv for k, f in data.items() if k != test])
        for method in ("mean", "inv-lin", "inv-oh", "cd-bayes", "cd-minmax"):
            assert out[method]["ref"] == pytest.approx(train_mv.mean(), rel=1e-12)
        np.testing.assert_allclose(out["mean"]["pred"], train_mv.mean(), rtol=1e-12)

    # and the soil-moisture retrievals of a field do not change with its measured mv
    test = data["508"]
    shuffled = bench.Field(**{**test.__dict__, "mv": np.random.default_rng(0).permutation(test.mv)})
    again = bench.predict_fold(shuffled, {k: f for k, f in data.items() if k != "508"}, False)
    for method in ("mean", "inv-lin", "inv-oh", "cd-bayes", "cd-minmax"):
        np.testing.assert_array_equal(again[method]["pred"], folds["508"][method]["pred"])
