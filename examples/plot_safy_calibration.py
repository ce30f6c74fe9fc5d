"""Biomass and yield from an LAI series: SAFY calibrated per pixel
(``ds.physics.calibrate_safy``) on the maize parcels of the demo season.

The parcels, crops and daily green-LAI truth are those of
:func:`xr_physcube.io.demo_season.demo_season` (same seed, same random draws up to the
truth; the Sentinel-2 simulation is skipped to keep this fast). The maize parcels are
the pixels whose ``crop`` label is "maize" (the demo cube carries crop labels). LAI is
sampled on the demo's 5-day Sentinel-2 calendar, with about 40 % of pixel-dates lost to
clouds and Gaussian noise of 0.3 m²/m²; the weather is the shipped synthetic Toulouse
climate over the season (1 March – 31 August 2024). Left: observations, the fitted
SAFY GLAI and the modelled biomass of three pixels; right: the yield map (harvest index
× final biomass) over the maize parcels, other crops grey.

    python examples/plot_safy_calibration.py   ->  examples/figures/safy_calibration.png
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402

import xr_physcube.accessors  # noqa: E402, F401  (registers .physics)
from xr_physcube.io.demo import _parcels, _smooth_field  # noqa: E402
from xr_physcube.models.safy import shipped_climate  # noqa: E402
from xr_physcube.vae.seasons import (  # noqa: E402
    CROPS,
    S2_REVISIT_DAYS,
    SEASON_DAYS,
    SEASON_START,
    calendar,
    daily_rain,
    daily_truth,
    draw_fields,
)

OUT = Path(__file__).parent / "figures" / "safy_calibration.png"
SIZE = 64


def demo_maize_lai(seed: int = 0):
    """LAI cube (time, y, x) on the S2 calendar, the crop map and the weather."""
    rng = np.random.default_rng(seed)  # the draws of demo_season up to the truth
    days = pd.date_range(pd.Timestamp(SEASON_START), periods=SEASON_DAYS, freq="D")
    doy = days.dayofyear.to_numpy().astype(float)
    parcels = _parcels(SIZE, 14, rng)
    fields = draw_fields(int(parcels.max()) + 1, rng)
    pix = {k: v[parcels.ravel()] for k, v in fields.items()}
    texture = 1.0 + 0.25 * (_smooth_field(SIZE, rng, 6.0).ravel() - 0.5)
    truth = daily_truth(pix, doy, daily_rain(1, SEASON_DAYS, rng), lai_texture=texture)
    s2_day = calendar(SEASON_DAYS, S2_REVISIT_DAYS, 2)
    noise = np.random.default_rng(seed + 1)
    lai = truth["lai"][:, s2_day].T.reshape(s2_day.size, SIZE, SIZE)
    lai = np.clip(lai + noise.normal(0.0, 0.3, lai.shape), 0.0, None).astype(np.float32)
    lai[noise.random(lai.shape) < 0.4] = np.nan
    crop = pix["crop"].reshape(SIZE, SIZE)
    cube = xr.Dataset(
        {"lai": (("time", "y", "x"), lai)},
        coords={"time": days[s2_day], "y": np.arange(SIZE), "x": np.arange(SIZE)},
    )
    clim = shipped_climate()
    sl = slice(int(doy[0]) - 1, int(doy[-1]))
    weather = xr.Dataset(
        {"temperature": ("time", clim.temperature[sl]), "radiation": ("time", clim.radiation[sl])},
        coords={"time": days},
    )
    return cube, crop, weather


def main() -> None:
    cube, crop, weather = demo_maize_lai()
    maize = crop == list(CROPS).index("maize")
    lai = cube.lai.where(maize).chunk({"y": 32, "x": 32})
    result = cube.assign(lai=lai).physics.calibrate_safy("lai", weather, "maize", trajectory=True)
    result = result.compute()
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2), gridspec_kw={"width_ratios": [1.3, 1]})
    ax = axes[0]
    twin = ax.twinx()
    ys, xs = np.nonzero(maize)
    picks = np.linspace(0, ys.size - 1, 3).astype(int)
    for color, i in zip(("tab:green", "tab:blue", "tab:purple"), picks, strict=True):
        y, x = int(ys[i]), int(xs[i])
        px = result.isel(y=y, x=x)
        ax.plot(cube.time, cube.lai.values[:, y, x], "o", color=color, ms=4)
        ax.plot(px.time, px.glai, "-", color=color, label=f"pixel ({y}, {x}) GLAI")
        twin.plot(px.time, px.biomass / 100.0, "--", color=color)
    ax.set_ylabel("green LAI (m² m⁻²): dots observed, lines SAFY")
    twin.set_ylabel("dry biomass (t ha⁻¹), dashed")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("SAFY calibrated on noisy, cloudy 5-day LAI")
    ax.tick_params(axis="x", rotation=30)
    yield_t = (result["yield"] / 100.0).where(maize)
    axes[1].imshow(np.where(maize, np.nan, 1.0), cmap="Greys", vmin=0, vmax=2)
    im = axes[1].imshow(yield_t, cmap="YlOrBr")
    fig.colorbar(im, ax=axes[1], label="grain yield (t ha⁻¹, HI × final biomass)")
    mean = float(np.nanmean(yield_t))
    axes[1].set_title(f"yield of the demo maize parcel (mean {mean:.1f} t/ha)")
    axes[1].set_xticks([]), axes[1].set_yticks([])
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT} ({int(maize.sum())} maize pixels, mean yield {mean:.2f} t/ha)")


if __name__ == "__main__":
    main()
