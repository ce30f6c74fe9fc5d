"""Regenerate the spectral package data from its published sources (needs network once).

    pip download --no-deps pyrsr==0.8.0 prosail==2.0.5 radiative-transfer-models==1.6.2 -d /tmp/src
    (unpack all) python tools/make_package_data.py /tmp/src/pyrsr-0.8.0 /tmp/src/prosail_whl \
        /tmp/src/radiative_transfer_models_whl

Not used at run time or in tests; kept so the provenance of every number is reproducible.
"""

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1] / "xr_physcube"
WL = np.arange(400, 2501)
S2_BANDS = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12"]


def write(path: Path, header: str, columns: list[str], data: np.ndarray, fmt: str) -> None:
    with open(path, "w") as f:
        for line in header.strip().splitlines():
            f.write(f"# {line}\n")
        f.write(",".join(columns) + "\n")
        np.savetxt(f, data, delimiter=",", fmt=fmt)


def s2_srf(pyrsr_root: Path) -> None:
    for sat in ("2A", "2B"):
        table = np.zeros((WL.size, len(S2_BANDS)))
        for j, band in enumerate(S2_BANDS):
            src = pyrsr_root / f"pyrsr/data/Sentinel-{sat}/MSI/band_{band[1:]}"
            wl, resp = np.loadtxt(src, skiprows=1, unpack=True)
            table[:, j] = np.interp(WL, wl, resp, left=0.0, right=0.0)
        write(
            ROOT / f"sensors/data/s{sat.lower()}_msi_srf.csv",
            f"Sentinel-{sat} MSI relative spectral response, 400-2500 nm at 1 nm.\n"
            "Source: ESA, S2-SRF_COPE-GSEG-EOPG-TN-15-0007 v3.0 (19 Dec 2017), as redistributed\n"
            "in pyrsr 0.8.0 (Apache-2.0), pyrsr/data/Sentinel-2?/MSI/band_*.",
            ["wavelength_nm", *S2_BANDS],
            np.column_stack([WL, table]),
            "%.6g",
        )


def s2c_srf(rtm_root: Path) -> None:
    src = rtm_root / "pypro4sail/spectra/sensor_response_functions/Sentinel2C.txt"
    with open(src) as f:
        header = f.readline().split()
    assert header == ["SR_WL", "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A"] + [
        "B09",
        "B10",
        "B11",
        "B12",
    ], header
    d = np.loadtxt(src, skiprows=1)
    assert np.array_equal(d[:, 0], WL) and d[:, 1:].min() >= 0
    write(
        ROOT / "sensors/data/s2c_msi_srf.csv",
        "Sentinel-2C MSI relative spectral response, 400-2500 nm at 1 nm.\n"
        "Source: ESA, S2-SRF_COPE-GSEG-EOPG-TN-15-0007 v4.0 (2024; version identified by its "
        "equivalent\nwavelengths), as redistributed in radiative-transfer-models 1.6.2 "
        "(pypro4sail, GPL-3.0-or-later),\n"
        "pypro4sail/spectra/sensor_response_functions/Sentinel2C.txt.",
        ["wavelength_nm", *S2_BANDS],
        d,
        "%.6g",
    )


def prospect(prosail_root: Path) -> None:
    d = np.loadtxt(prosail_root / "prosail/prospect_d_spectra.txt", comments="#")
    assert np.array_equal(d[:, 0], WL)
    write(
        ROOT / "models/data/prospect_d.csv",
        "PROSPECT-D refractive index and specific absorption coefficients, 400-2500 nm.\n"
        "Source: Feret, Gitelson, Noble & Jacquemoud (2017) RSE 193:204-215, dataSpec_PDB.m\n"
        "(16 Jan 2017), as redistributed in the prosail 2.0.5 Python package. Brown pigment\n"
        "coefficient by F. Baret (INRA). Units: kcab, kcar, kanth cm2/ug; kbrown arbitrary;\n"
        "kw cm-1; km cm2/g.",
        ["wavelength_nm", "nr", "kcab", "kcar", "kanth", "kbrown", "kw", "km"],
        d,
        "%.7g",
    )
    p5 = np.loadtxt(prosail_root / "prosail/prospect5_spectra.txt")
    write(
        ROOT / "models/data/prospect_5.csv",
        "PROSPECT-5 refractive index and specific absorption coefficients, 400-2500 nm.\n"
        "Source: Feret et al. (2008) RSE 112:3030-3043 (dataSpec_P5), as redistributed in the\n"
        "prosail 2.0.5 Python package. Units: kcab, kcar cm2/ug; kbrown arbitrary; kw cm-1;\n"
        "km cm2/g.",
        ["wavelength_nm", "nr", "kcab", "kcar", "kbrown", "kw", "km"],
        np.column_stack([WL, p5]),
        "%.7g",
    )
    soil = np.loadtxt(prosail_root / "prosail/soil_reflectance.txt")
    write(
        ROOT / "models/data/soil_reflectance.csv",
        "Reference dry and wet soil reflectance used by PROSAIL (soil_1 dry, soil_2 wet),\n"
        "400-2500 nm. Source: the PROSAIL distribution of Jacquemoud et al. (2009) RSE 113:S56\n"
        "(dataSpec_PDB.m), as redistributed in the prosail 2.0.5 Python package.",
        ["wavelength_nm", "dry", "wet"],
        np.column_stack([WL, soil]),
        "%.7g",
    )


if __name__ == "__main__":
    s2_srf(Path(sys.argv[1]))
    prospect(Path(sys.argv[2]))
    s2c_srf(Path(sys.argv[3]))
