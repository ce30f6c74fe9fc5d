"""Sentinel-1 soil moisture on measured data, leave-one-field-out (MNI 2017, 3 fields).

Data: field-mean Sentinel-1 VV/VH σ0, in-situ 5 cm soil moisture and LAI of the MNI
(Munich-North-Isar) 2017 campaign, fields 301 and 508 (winter wheat) and 319 (maize);
see ``<data>/mni2017_s1/PROVENANCE.md``. Samples: σ0 > 0 in both polarisations, LAI
and soil moisture present.

Every number is leave-one-field-out (LOFO): each field in turn is left out, everything
is fitted on the two others, and the left-out field is scored. Methods:

forward σ0 (dB; the measured mv and LAI of the left-out field are model inputs):
  default     WCM + Oh 2004, shipped LAI coefficients, hrms = 1 cm (no fitting)
  cal-lin     calibrated WCM, soil term C + D·mv + F·(θ − 40°) in dB
  cal-oh      calibrated WCM, Oh soil term, per-field hrms nuisance in training; the
              left-out field gets the training fields' geometric-mean hrms
soil moisture (m³/m³; only σ0, θ, LAI and dates of the left-out field are used):
  mean        the training fields' mean mv (the skill reference)
  inv-lin     calibrated WCM (cal-lin) inverted per date, VV+VH, with the training
              moisture prior and bounds
  inv-oh      the same with cal-oh
  cd-bayes    change detection, Gaussian posterior over the whole series (VV+VH,
              fitted incidence slope, one level per relative orbit)
  cd-minmax   bounded change detection (Gao et al. 2017), VV, level at mid-interval
Crop groups: vegetation coefficients are fitted per crop group (cereals: 301, 508;
maize: 319). Left-out 319 has no maize training field, so it gets the cereal set fitted
on 301+508 ("cereal fallback"); the table of strategies also reports a pooled set
(all training fields as one group) and a shared soil term with crop-specific A, B.

Columns: n, RMSE, bias (prediction − measurement), Pearson r, skill = 1 − MSE/MSE_ref
(MSE_ref: predicting the training fields' mean of the same quantity) and cov2, the
fraction of measurements within ±2 std of the prediction (where a std exists).

    python benchmarks/bench_s1_methods.py [--data DIR] [--threads 1]

DIR holds ``mni2017_s1/s1_sm_lai_mni2017.csv`` (default: the shared folder next to
the repository); when it is absent the script says so and exits with status 0.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from xr_physcube.models.change_detection import (
    ChangeDetectionParameters,
    change_detection_minmax,
    change_detection_mv,
)
from xr_physcube.models.change_detection_fit import fit_change_detection
from xr_physcube.models.sar import water_cloud_backscatter
from xr_physcube.models.wcm_calibration import calibrate_wcm
from xr_physcube.models.wcm_coefficients import WcmCalibration
from xr_physcube.models.wcm_inversion import estimate_hrms, forward_db, invert_mv

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
CSV = Path("mni2017_s1") / "s1_sm_lai_mni2017.csv"
DATASET = "MNI 2017 (LMU / ESA MULTIPLY; sar_homework multi.csv, multiply-org/sense)"
CROP_GROUP = {"winter_wheat": "cereals", "maize": "maize"}
DEFAULT_HRMS_CM = 1.0


@dataclass
class Field:
    """One field's valid samples, sorted by time (arrays of equal length)."""

    name: str
    group: str
    vv: np.ndarray  # linear sigma0
    vh: np.ndarray
    theta: np.ndarray  # degrees
    lai: np.ndarray  # m2/m2
    mv: np.ndarray  # m3/m3
    days: np.ndarray  # days since 2017-01-01
    orbit: np.ndarray  # relative orbit number


def load(data_dir: Path) -> dict[str, Field]:
    """Fields of the tidy MNI 2017 file with valid σ0 (both pols), LAI and mv."""
    df = pd.read_csv(data_dir / CSV, parse_dates=["s1_datetime_utc"])
    ok = (
        (df.sigma0_vv_lin > 0)
        & (df.sigma0_vh_lin > 0)
        & df.sm_insitu_m3m3.notna()
        & df.lai_insitu_hants.notna()
    )
    df = df[ok].sort_values(["field", "s1_datetime_utc"])
    t0 = pd.Timestamp("2017-01-01")
    out = {}
    for name, g in df.groupby("field"):
        out[str(name)] = Field(
            name=str(name),
            group=CROP_GROUP[g.crop.iloc[0]],
            vv=g.sigma0_vv_lin.to_numpy(float),
            vh=g.sigma0_vh_lin.to_numpy(float),
            theta=g.incidence_deg.to_numpy(float),
            lai=g.lai_insitu_hants.to_numpy(float),
            mv=g.sm_insitu_m3m3.to_numpy(float),
            days=((g.s1_datetime_utc - t0).dt.total_seconds() / 86400.0).to_numpy(float),
            orbit=g.relative_orbit.to_numpy(int),
        )
    return out


def _cat(fields: list[Field], attr: str) -> np.ndarray:
    return np.concatenate([getattr(f, attr) for f in fields])


# --- fitting on training fields only ----------------------------------------------------


def fit_wcm(train: dict[str, Field], soil_term: str, strategy: str) -> dict[str, WcmCalibration]:
    """WCM calibration(s) on the training fields; keys are crop groups.

    strategy: "crop" (one fit per crop group), "pooled" (one group "pooled"), or
    "shared" (one fit: shared soil term, A and B per crop group).
    """
    fields = list(train.values())
    kw = dict(series=np.concatenate([[f.name] * len(f.mv) for f in fields]), soil_term=soil_term)
    args = [_cat(fields, a) for a in ("vv", "vh", "theta", "lai", "mv")]
    if strategy == "pooled":
        return calibrate_wcm(*args, group=None, dataset=DATASET, **kw)
    groups = np.concatenate([[f.group] * len(f.mv) for f in fields])
    if strategy == "shared":
        return calibrate_wcm(*args, group=groups, dataset=DATASET, **kw)
    out = {}
    for g in sorted(set(groups)):
        sub = [f for f in fields if f.group == g]
        out.update(fit_wcm({f.name: f for f in sub}, soil_term, "shared"))
    return out


def pick_calibration(cals: dict[str, WcmCalibration], group: str) -> WcmCalibration:
    """The set for crop ``group``; a missing group falls back to cereals (or pooled)."""
    if group in cals:
        return cals[group]
    fallback = cals.get("cereals") or cals.get("all") or next(iter(cals.values()))
    return fallback.with_note(f"no {group} training field: {fallback.name} set used")


def fit_cd(train: dict[str, Field], **kw) -> ChangeDetectionParameters:
    fields = list(train.values())
    use_vh = kw.pop("use_vh", True)
    use_orbit = kw.pop("use_orbit", True)
    return fit_change_detection(
        [f.vv for f in fields],
        [f.vh for f in fields] if use_vh else None,
        [f.theta for f in fields],
        [f.lai for f in fields],
        [f.mv for f in fields],
        [f.days for f in fields],
        orbit=[f.orbit for f in fields] if use_orbit else None,
        fields=[f.name for f in fields],
        dataset=DATASET,
        **kw,
    )


# --- predictions for one left-out field -------------------------------------------------


def _db(x):
    return 10.0 * np.log10(x)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def predict_fold(test: Field, train: dict[str, Field], variants: bool = True) -> dict:
    """All method outputs for ``test`` from fits on ``train`` (which excludes ``test``)."""
    assert test.name not in train, "LOFO: the left-out field must not be in training"
    fields = list(train.values())
    out: dict[str, dict] = {}

    def fwd(name: str, vv: np.ndarray, vh: np.ndarray, std: tuple | None = None):
        ref = {p: float(np.mean(_db(_cat(fields, p)))) for p in ("vv", "vh")}
        for p, pred, s in (("vv", vv, std and std[0]), ("vh", vh, std and std[1])):
            out[f"{name} {p.upper()}"] = dict(
                kind="dB", pred=pred, obs=_db(getattr(test, p)), ref=ref[p], std=s
            )

    def mvm(name: str, pred, std=None):
        ref = float(np.mean(_cat(fields, "mv")))
        out[name] = dict(kind="mv", pred=np.asarray(pred, float), obs=test.mv, ref=ref, std=std)

    default = water_cloud_backscatter(test.mv, DEFAULT_HRMS_CM, test.theta, lai=test.lai)
    fwd("default", _db(_np(default.vv)), _db(_np(default.vh)))

    strategies = ("crop", "pooled", "shared") if variants else ("crop",)
    cals = {}
    for soil in ("linear", "oh"):
        for strategy in strategies:
            cals[soil, strategy] = pick_calibration(fit_wcm(train, soil, strategy), test.group)
    tag = {"linear": "cal-lin", "oh": "cal-oh"}
    for (soil, strategy), cal in cals.items():
        name = tag[soil] if strategy == "crop" else f"{tag[soil]} [{strategy}]"
        f = forward_db(cal, test.mv, test.theta, test.lai)
        noise = (np.full(len(test.mv), cal.vv.noise_db), np.full(len(test.mv), cal.vh.noise_db))
        fwd(name, _np(f.vv), _np(f.vh), noise)
        if strategy == "crop":
            inv = invert_mv(test.vv, test.vh, test.theta, test.lai, cal)
            mvm(f"inv-{soil[:3]}", _np(inv.mv), _np(inv.std))
    if variants:
        cal = cals["oh", "crop"]
        h = estimate_hrms(test.vv, test.vh, test.theta, test.lai, cal)  # σ0 only, no mv
        f = forward_db(cal, test.mv, test.theta, test.lai, hrms=h)
        fwd("cal-oh [hrms from test σ0]", _np(f.vv), _np(f.vh))
        inv = invert_mv(test.vv, test.vh, test.theta, test.lai, cal, hrms=h)
        mvm("inv-oh [hrms from test σ0]", _np(inv.mv), _np(inv.std))
        inv = invert_mv(test.vv, test.vh, test.theta, test.lai, cals["linear", "crop"], prior=False)
        mvm("inv-lin [no prior]", _np(inv.mv), _np(inv.std))

    mvm("mean", np.full(len(test.mv), np.mean(_cat(fields, "mv"))), None)
    out["mean"]["std"] = np.full(len(test.mv), np.std(_cat(fields, "mv")))

    cd_variants = {"cd-bayes": {"incidence": "cos2"}}
    if variants:
        cd_variants |= {
            "cd-bayes [fitted slope, no orbit levels]": {"use_orbit": False},
            "cd-bayes [cos2, no orbit levels]": {"use_orbit": False, "incidence": "cos2"},
            "cd-bayes [VV only]": {"use_vh": False, "incidence": "cos2"},
        }
    for name, kw in cd_variants.items():
        use_orbit = kw.get("use_orbit", True)
        params = fit_cd(train, **kw)
        est = change_detection_mv(
            test.vv,
            test.vh,
            test.theta,
            test.lai,
            params,
            time_days=test.days,
            orbit=test.orbit if use_orbit else None,
        )
        mvm(name, _np(est.mv), _np(est.std))
        if name == "cd-bayes":
            out[name]["params"] = params
            mm = change_detection_minmax(test.vv, test.theta, test.lai, params, orbit=test.orbit)
            mvm("cd-minmax", _np(mm.mv), _np(mm.std))
    for key, cal in cals.items():
        out.setdefault("_cals", {})[key] = cal
    return out


# --- scores -------------------------------------------------------------------------------


def score(pred, obs, ref, std=None) -> dict:
    pred, obs = np.asarray(pred, float), np.asarray(obs, float)
    err = pred - obs
    mse = float(np.mean(err**2))
    mse_ref = float(np.mean((np.asarray(ref, float) - obs) ** 2))
    r = float(np.corrcoef(pred, obs)[0, 1]) if np.std(pred) > 0 and np.std(obs) > 0 else math.nan
    cov = math.nan if std is None else float(np.mean(np.abs(err) <= 2.0 * np.asarray(std)))
    return dict(
        n=len(obs),
        rmse=math.sqrt(mse),
        bias=float(err.mean()),
        r=r,
        skill=1.0 - mse / mse_ref,
        cov=cov,
        sse=mse * len(obs),
        sse_ref=mse_ref * len(obs),
    )


def run_lofo(data: dict[str, Field], variants: bool = True) -> dict[str, dict]:
    """{left-out field: predict_fold output}, each fitted without that field."""
    return {
        name: predict_fold(test, {k: f for k, f in data.items() if k != name}, variants)
        for name, test in data.items()
    }


def table(folds: dict[str, dict], methods: list[str], fields: list[str]) -> dict:
    rows = {}
    for m in methods:
        per = {}
        for f in fields:
            o = folds[f][m]
            ref = np.full(len(o["obs"]), o["ref"])
            per[f] = score(o["pred"], o["obs"], ref, o["std"])
        cat = {k: np.concatenate([folds[f][m][k] for f in fields]) for k in ("pred", "obs")}
        ref = np.concatenate([np.full(len(folds[f][m]["obs"]), folds[f][m]["ref"]) for f in fields])
        stds = [folds[f][m]["std"] for f in fields]
        std = None if any(s is None for s in stds) else np.concatenate(stds)
        per["all"] = score(cat["pred"], cat["obs"], ref, std)
        rows[m] = per
    return rows


def _fmt(m: str, f: str, s: dict, digits: int) -> str:
    cov = "  -  " if math.isnan(s["cov"]) else f"{s['cov']:5.2f}"
    return (
        f"{m:<40s} {f:>4s} {s['n']:4d} {s['rmse']:7.{digits}f} {s['bias']:+7.{digits}f} "
        f"{s['r']:+6.2f} {s['skill']:+7.2f} {cov}"
    )


def print_table(rows: dict, fields: list[str], title: str, digits: int, only_all=False) -> None:
    print(f"\n{title}")
    print(
        f"{'method':<40s} {'fld':>4s} {'n':>4s} {'RMSE':>7s} {'bias':>7s} {'r':>6s} "
        f"{'skill':>7s} {'cov2':>5s}"
    )
    for m, per in rows.items():
        for f in ["all"] if only_all else [*fields, "all"]:
            print(_fmt(m, f, per[f], digits))


def describe(c: WcmCalibration) -> str:
    """One line: name, fields, coefficients (VV/VH), LOFO scores, note."""
    if c.soil_term == "linear":
        soil = (
            f"C {c.vv.c_db:.2f}/{c.vh.c_db:.2f} dB, D {c.vv.d_db:.2f}/{c.vh.d_db:.2f} "
            f"dB/(m3/m3), F {c.vv.f_db:+.3f}/{c.vh.f_db:+.3f} dB/deg"
        )
    else:
        soil = f"hrms {c.hrms:.2f} cm"
    lofo = ", ".join(f"{k} {v:.2f}" for k, v in c.lofo_rmse) or "-"
    return (
        f"{c.name}: fields {','.join(c.fields)}; A {c.vv.a:.4f}/{c.vh.a:.4f}, "
        f"B {c.vv.b:.3f}/{c.vh.b:.3f}, {soil}; train RMSE {c.vv.noise_db:.2f}/"
        f"{c.vh.noise_db:.2f} dB; LOFO RMSE {lofo}" + (f"; {c.note}" if c.note else "")
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding mni2017_s1/")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = ap.parse_args(argv)
    path = args.data / CSV
    if not path.is_file():
        print(f"bench_s1_methods: no data at {path}; nothing to do (give --data DIR).")
        return 0
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    data = load(args.data)
    names = list(data)
    listing = ", ".join(f"{k} ({f.group}, n={len(f.mv)})" for k, f in data.items())
    print(f"data: {path} — fields {listing}")
    print("all scores leave-one-field-out: fitted on the two other fields, scored on the field")
    folds = run_lofo(data)

    fwd_main = [f"{m} {p}" for m in ("default", "cal-lin", "cal-oh") for p in ("VV", "VH")]
    mv_main = ["mean", "inv-lin", "inv-oh", "cd-bayes", "cd-minmax"]
    first = folds[names[0]]
    fwd_var = [k for k in first if k.startswith("cal-") and "[" in k]
    mv_var = [k for k in first if k.startswith(("inv-", "cd-")) and "[" in k]
    rows_f = table(folds, fwd_main, names)
    rows_m = table(folds, mv_main, names)
    rows_fv = table(folds, fwd_var, names)
    print_table(rows_f, names, "forward sigma0 (dB), measured mv and LAI as inputs", 2)
    print_table(rows_m, names, "soil moisture (m3/m3) from sigma0, theta, LAI", 3)
    print_table(rows_fv, names, "variants, forward (dB)", 2, True)
    print_table(table(folds, mv_var, names), names, "variants, soil moisture (m3/m3)", 3, True)

    def pair(rows: dict, m: str) -> float:
        return rows[f"{m} VV"]["all"]["rmse"] + rows[f"{m} VH"]["all"]["rmse"]

    best_mv = min(mv_main[1:], key=lambda m: rows_m[m]["all"]["rmse"])
    b, ref = rows_m[best_mv]["all"], rows_m["mean"]["all"]
    meets = b["rmse"] <= 0.05 and b["skill"] > 0
    print(
        f"\nbest soil-moisture method by LOFO RMSE (main table): {best_mv}, RMSE {b['rmse']:.3f} "
        f"m3/m3, skill {b['skill']:+.2f} (training mean: RMSE {ref['rmse']:.3f}); target RMSE "
        f"<= 0.05 with skill > 0: {'met' if meets else 'NOT met'}"
    )
    best_f = min(("cal-lin", "cal-oh"), key=lambda m: pair(rows_f, m))
    cal_rows = {**rows_f, **rows_fv}
    recipes = sorted({k.rsplit(" ", 1)[0] for k in cal_rows if k.startswith("cal-")})
    best_recipe = min((r for r in recipes if "test" not in r), key=lambda m: pair(cal_rows, m))
    for label, m in (("soil term (crop sets)", best_f), ("recipe overall", best_recipe)):
        vv, vh = cal_rows[f"{m} VV"]["all"], cal_rows[f"{m} VH"]["all"]
        ok = vv["rmse"] <= 2 and vv["r"] >= 0.5
        print(
            f"best calibrated forward {label}: {m}; VV {vv['rmse']:.2f} dB r {vv['r']:+.2f}, "
            f"VH {vh['rmse']:.2f} dB r {vh['r']:+.2f}; target VV <= 2 dB with r >= 0.5: "
            f"{'met' if ok else 'NOT met'}"
        )

    # named coefficient sets on all fields, with the LOFO scores of the same recipe
    soil = "linear" if best_f == "cal-lin" else "oh"
    print(f"\ncoefficient sets fitted on all fields ({soil} soil term; LOFO of the same recipe):")
    for strategy in ("crop", "pooled"):
        tag = best_f if strategy == "crop" else f"{best_f} [{strategy}]"
        for group, cal in fit_wcm(data, soil, strategy).items():
            scored = [f for f in names if strategy == "pooled" or data[f].group == group]
            if len(scored) < 2:
                cal = cal.with_note(
                    f"only one {group} field: no LOFO score for this set; field "
                    f"{scored[0]} was scored with the cereal fallback (tables above)"
                )
            else:
                lofo = {}
                for pol in ("VV", "VH"):
                    pred = np.concatenate([folds[f][f"{tag} {pol}"]["pred"] for f in scored])
                    obs = np.concatenate([folds[f][f"{tag} {pol}"]["obs"] for f in scored])
                    lofo[f"{pol.lower()}_db"] = float(np.sqrt(np.mean((pred - obs) ** 2)))
                cal = cal.with_lofo(**lofo)
            print("  " + describe(cal))
    print(f"\n[{time.perf_counter() - start:.0f} s]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
