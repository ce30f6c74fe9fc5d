"""Simulate a canopy spectrum with PROSAIL and its Sentinel-2 bands; write a PNG.

python examples/plot_prosail_spectrum.py   # -> examples/figures/prosail_spectrum.png
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from xr_physcube.models.prosail import ProsailParameters, prosail  # noqa: E402
from xr_physcube.sensors.sentinel2 import (  # noqa: E402
    BAND_INFO,
    BANDS,
    WAVELENGTHS_NM,
    Sentinel2Bands,
)

OUT = Path(__file__).parent / "figures" / "prosail_spectrum.png"


def main() -> Path:
    lai = torch.tensor([0.5, 2.0, 5.0])
    params = ProsailParameters(lai=lai, cab=45.0, cw=0.012, cm=0.006, tts=35.0, tto=5.0)
    spectra = prosail(params).reflectance
    bands = Sentinel2Bands()(spectra)
    centres = [BAND_INFO[b].central_wavelength_nm for b in BANDS]

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, value in enumerate(lai.tolist()):
        (line,) = ax.plot(WAVELENGTHS_NM, spectra[i], lw=1.2, label=f"LAI {value:g}")
        ax.plot(centres, bands[i], "o", color=line.get_color(), ms=6, mec="k")
    for name, c in zip(BANDS, centres, strict=True):
        ax.annotate(name, (c, 0.005), ha="center", fontsize=7, color="0.35")
    ax.set(
        xlabel="wavelength (nm)", ylabel="canopy reflectance (-)", xlim=(400, 2500), ylim=(0, None)
    )
    ax.set_title("PROSAIL-D spectra (lines) and Sentinel-2A bands (dots)")
    ax.legend()
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=120)
    return OUT


if __name__ == "__main__":
    print(main())
