"""Figures for retrievals on cubes (matplotlib; call with the Agg backend in batch jobs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from xr_physcube._extras import require


def rgb(cube: xr.Dataset, time_index: int, gain: float = 3.5) -> np.ndarray:
    """True-colour composite (B4, B3, B2) of one date, (y, x, 3) in [0, 1]; NaN -> white."""
    bands = [cube[b].isel(time=time_index).values for b in ("B4", "B3", "B2")]
    img = np.clip(np.stack(bands, axis=-1) * gain, 0.0, 1.0)
    return np.where(np.isnan(img), 1.0, img)


def plot_retrieval(
    result: xr.Dataset,
    truth: xr.Dataset | None,
    cube: xr.Dataset,
    path: str | Path,
    variable: str = "lai",
    time_index: int | None = None,
) -> Path:
    """RGB, retrieved map and its std for one date, and (with ``truth``) a scatter of
    retrieved vs true: that date in blue over all dates in grey, with the 1:1 line.

    Writes a PNG to ``path`` and returns its path."""
    plt = require("matplotlib.pyplot", "plotting")

    if time_index is None:
        time_index = int(result.sizes["time"]) - 1
    date = str(result.time.values[time_index])[:10]
    mean = result[variable].isel(time=time_index)
    units = result[variable].attrs.get("units", "")
    vmax = float(np.nanpercentile(result[variable].values, 99)) or 1.0
    panels = 4 if truth is not None else 3
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 4.0))
    axes[0].imshow(rgb(cube, time_index))
    axes[0].set_title(f"Sentinel-2 RGB {date}")
    im = axes[1].imshow(mean.values, vmin=0, vmax=vmax, cmap="YlGn")
    axes[1].set_title(f"retrieved {variable} ({units})")
    fig.colorbar(im, ax=axes[1], shrink=0.8)
    if f"{variable}_std" in result:
        im = axes[2].imshow(result[f"{variable}_std"].isel(time=time_index).values, cmap="magma")
        axes[2].set_title(f"{variable} std ({units})")
        fig.colorbar(im, ax=axes[2], shrink=0.8)
    if truth is not None:
        ax = axes[-1]
        true = truth[variable].isel(time=time_index).values
        all_true, all_est = truth[variable].values.ravel(), result[variable].values.ravel()
        ax.plot(all_true, all_est, ".", ms=1, alpha=0.15, color="0.5", zorder=0, label="all dates")
        ax.plot(
            true.ravel(),
            mean.values.ravel(),
            ".",
            ms=2,
            alpha=0.4,
            color="C0",
            label=f"{date} (date of the maps)",
        )
        ax.plot([0, vmax], [0, vmax], "k--", lw=1, label="1:1")
        suffix = f" ({units})" if units else ""
        ax.set(
            xlabel=f"true {variable}{suffix}",
            ylabel=f"retrieved {variable}{suffix}",
            title="retrieved vs simulation truth",
        )
        legend = ax.legend(loc="upper left", markerscale=6, fontsize="small")
        for handle in legend.legend_handles:
            handle.set_alpha(1.0)
    for ax in axes[: panels - (truth is not None)]:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _typical_pixel(cube: xr.Dataset, truth: xr.Dataset | None) -> tuple[int, int]:
    """(y, x) of a pixel with a real season (LAI range above the median): with ``truth``,
    the one of median LAI RMSE among them; else the one of median LAI range."""
    span = (cube.lai.max("time") - cube.lai.min("time")).values
    score = span
    if truth is not None:
        true = truth.lai.sel(time=cube.time)
        span = (true.max("time") - true.min("time")).values
        score = np.sqrt(((cube.lai - true) ** 2).mean("time")).values
    seasonal = np.isfinite(score) & (span >= np.nanmedian(span))
    values = np.where(seasonal, score, np.nan)
    target = np.nanmedian(values)
    flat = int(np.nanargmin(np.abs(values - target)))
    return np.unravel_index(flat, span.shape)


def plot_datacube(
    cube: xr.Dataset,
    s2: xr.Dataset | None,
    s1: xr.Dataset | None,
    path: str | Path,
    truth: xr.Dataset | None = None,
    pixel: tuple[int, int] | None = None,
    map_dates: int = 3,
) -> Path:
    """One pixel's S2 (NDVI) and S1 (VV, VH dB) acquisitions on their own dates above
    the regular-grid LAI and soil moisture with ±2 std (and the daily ``truth``), then a
    row of LAI maps on ``map_dates`` grid dates, the cloudiest S2 date's nearest first.
    ``pixel`` (y, x) indices; default a typical pixel with a season (median LAI error,
    or median LAI range without ``truth``). Returns the PNG path."""
    plt = require("matplotlib.pyplot", "plotting")

    if pixel is None:
        pixel = _typical_pixel(cube, truth)
    iy, ix = int(pixel[0]), int(pixel[1])
    at = {"y": iy, "x": ix}
    fig = plt.figure(figsize=(12, 9), layout="constrained")
    grid = fig.add_gridspec(3, map_dates)
    ax_obs = fig.add_subplot(grid[0, :])
    if s2 is not None:
        px = s2.isel(at)
        ndvi = (px.B8 - px.B4) / (px.B8 + px.B4)
        ax_obs.plot(px.time, ndvi, "o", color="tab:green", label="S2 NDVI (clear dates)")
    ax_obs.set_ylabel("NDVI")
    if s1 is not None:
        ax_db = ax_obs.twinx()
        px1 = s1.isel(at)
        for pol, mark in (("VV", "s"), ("VH", "^")):
            ax_db.plot(px1.time, 10 * np.log10(px1[pol]), mark, ms=4, label=f"S1 {pol}", alpha=0.7)
        ax_db.set_ylabel("σ0 (dB)")
        ax_db.legend(loc="upper right")
    ax_obs.legend(loc="upper left")
    ax_obs.set_title("observations on their own dates")
    ax_lai = fig.add_subplot(grid[1, :])
    for ax, name, label, color in (
        (ax_lai, "lai", "LAI (m²/m²)", "tab:green"),
        (ax_lai.twinx(), "mv", "mv (m³/m³)", "tab:blue"),
    ):
        px, sd = cube[name].isel(at), cube[f"{name}_std"].isel(at)
        ax.fill_between(px.time, px - 2 * sd, px + 2 * sd, color=color, alpha=0.2)
        ax.plot(px.time, px, "-o", ms=3, color=color, label=f"{name} grid ±2 std")
        if truth is not None:
            ax.plot(
                truth.time, truth[name].isel(at), "--", color=color, lw=1, label=f"{name} truth"
            )
        ax.set_ylabel(label, color=color)
        ax.legend(loc="upper left" if name == "lai" else "upper right")
    ax_lai.set_title("regular grid: posterior mean ±2 std, and the daily truth")
    if s2 is not None:
        cloud = s2.B4.isnull().mean(("y", "x")).values
        worst = s2.time.values[int(np.argmax(cloud))]
        first = int(np.argmin(np.abs(cube.time.values - worst)))
    else:
        first = cube.sizes["time"] // 2
    picks = sorted({first, *np.linspace(0, cube.sizes["time"] - 1, map_dates + 1).astype(int)[1:]})
    for col, t in enumerate(picks[:map_dates]):
        ax = fig.add_subplot(grid[2, col])
        img = cube.lai.isel(time=t)
        im = ax.imshow(img, vmin=0, vmax=6, cmap="YlGn")
        ax.set_title(
            f"LAI {str(cube.time.values[t])[:10]}" + (" (S2 cloudy)" if t == first else "")
        )
        ax.axis("off")
    fig.colorbar(im, ax=fig.axes[-1], shrink=0.8, label="LAI")
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
