"""Fit the shipped S2 network's LAI model-error term on measured field data and write it
into the package's weights (``xr_physcube/inverse/weights/s2.pt``).

    python tools/calibrate_model_error.py [--data ../shared/realdata] [--dry-run]

The data are the SENSAGRI S2 + field LAI/PAI samples (FR, IT, ES) as filtered by
``benchmarks/bench_real.py`` (one S2 date within 15 days of the field date). Only the
std changes: ``std² = std_net² + (a + b·|lai|)²`` with ``(a, b)`` fitted by maximum
likelihood on all the samples (:func:`xr_physcube.inverse.calibration.calibrate`); the
network and its mean are untouched. The fit is recorded in the weights' metadata
(``model_error_lai``). ``benchmarks/bench_real.py`` scores the same recipe
leave-one-site-out (row "retrieve, model error refitted"), which is the honest estimate
of its coverage; sites not in these data score the shipped term itself.

The product never reads the data: this tool is run by a developer, and the data stay
outside the repository.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_real  # noqa: E402

from xr_physcube.inverse.calibration import calibrate  # noqa: E402
from xr_physcube.inverse.pretrained import WEIGHTS_DIR, load_pretrained  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=bench_real.SHARED / "realdata")
    parser.add_argument("--dry-run", action="store_true", help="print the fit, write nothing")
    args = parser.parse_args(argv)
    path = args.data / "sensagri_s2_lai" / "s2_lai_field.csv"
    if not path.exists():
        print(f"no SENSAGRI data at {path}: nothing done")
        return 0
    rows, log = bench_real.load_sensagri(path)
    print("; ".join(log))
    net = load_pretrained("s2")
    x = bench_real.s2_cube(rows)[list(net.input_names)].to_array("input").T.values
    tuned = calibrate(net, x, rows.truth.to_numpy(), "lai")
    a, b = tuned.model_error["lai"]
    tuned.metadata["model_error_lai"].update(
        {
            "data": "SENSAGRI S2 + field LAI/PAI (FR, IT, ES), |field - S2| <= 15 days",
            "tool": "tools/calibrate_model_error.py",
        }  # fmt: skip
    )
    print(f"LAI model error: a = {a:.4f} m2/m2, b = {b:.4f} (n = {len(rows)})")
    if not args.dry_run:
        out = tuned.save(WEIGHTS_DIR / "s2.pt")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
