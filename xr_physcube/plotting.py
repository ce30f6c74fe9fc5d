"""Figures for retrievals on cubes (matplotlib; call with the Agg backend in batch jobs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr


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
    import matplotlib.pyplot as plt

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
