"""The shipped physics-constrained VAE on the demo cube: reconstruction and LAI.

Encodes the embedded demo cube (S2 + S1, a cloud on the second date) with
``ds.vae.encode()``, reconstructs it with ``ds.vae.reconstruct()`` and draws:
observed vs reconstructed reflectance (all bands), one pixel's observed and modelled
spectrum, the LAI map (VAE posterior mean and the truth) and one pixel's LAI time
series with its ±2σ band. Encoding and reconstruction use the accessor's default on a
time series, the shipped ``temporal_hybrid`` model (it sees all dates of a pixel); the
time series also shows the per-pixel ``pixel_hybrid`` model, which sees one date at a
time. Writes ``examples/figures/vae_demo.png`` and prints the reconstruction RMSE per band.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import xr_physcube  # noqa: E402, F401
from xr_physcube.cube.vae import VAEAccessor  # noqa: E402, F401
from xr_physcube.io.demo import demo_scene  # noqa: E402
from xr_physcube.sensors.sentinel2 import BAND_INFO, BANDS  # noqa: E402
from xr_physcube.vae import load_pretrained  # noqa: E402

OUT = Path(__file__).parent / "figures" / "vae_demo.png"


def main() -> None:
    scene = demo_scene(64, seed=0, chunks=32)
    ds, truth = scene.cube, scene.truth
    latent = ds.vae.encode().compute()  # default on a time series: temporal_hybrid
    latent_p = ds.vae.encode(load_pretrained("pixel_hybrid")).compute()
    recon = ds.vae.reconstruct().compute()
    obs = ds.compute()

    rmse = {b: float(np.sqrt(np.nanmean((recon[b].values - obs[b].values) ** 2))) for b in BANDS}
    print("reconstruction RMSE per band:", {b: round(v, 4) for b, v in rmse.items()})

    fig, axes = plt.subplots(2, 3, figsize=(15, 9))
    ax = axes[0, 0]
    for b in BANDS:
        o, r = obs[b].values.ravel(), recon[b].values.ravel()
        ok = np.isfinite(o) & np.isfinite(r)
        ax.scatter(o[ok][::7], r[ok][::7], s=2, alpha=0.4, label=f"{b} ({rmse[b]:.3f})")
    ax.plot([0, 0.6], [0, 0.6], "k--", lw=0.8)
    ax.set(xlabel="observed reflectance", ylabel="VAE reconstruction", title="All bands, all dates")
    ax.legend(fontsize=7, markerscale=4, ncol=2, title="band (RMSE)", title_fontsize=7)

    # The pixel of largest LAI amplitude among those under the cloud of the second date.
    t = 2
    cloudy_any = ~np.isfinite(obs.B4.values).all(axis=0)
    amplitude = np.where(cloudy_any, np.ptp(truth.lai.values, axis=0), -1.0)
    yy, xx = (int(i) for i in np.unravel_index(np.argmax(amplitude), amplitude.shape))
    wl = [BAND_INFO[b].central_wavelength_nm for b in BANDS]
    ax = axes[0, 1]
    ax.plot(wl, [obs[b].values[t, yy, xx] for b in BANDS], "o-", label="observed")
    ax.plot(wl, [recon[b].values[t, yy, xx] for b in BANDS], "s--", label="VAE (PROSAIL)")
    ax.set(
        xlabel="wavelength (nm)",
        ylabel="reflectance",
        title=f"Pixel (y={yy}, x={xx}), {str(ds.time.values[t])[:10]}",
    )
    ax.legend()

    ax = axes[0, 2]
    db = lambda v: 10 * np.log10(v)  # noqa: E731
    for p, c in (("VV", "C0"), ("VH", "C1")):
        ax.scatter(db(obs[p].values).ravel()[::5], db(recon[p].values).ravel()[::5], s=2,
                   alpha=0.3, c=c, label=p)  # fmt: skip
    ax.plot([-30, -5], [-30, -5], "k--", lw=0.8)
    ax.set(xlabel="observed σ0 (dB)", ylabel="VAE reconstruction (dB)", title="Sentinel-1")
    ax.legend(markerscale=4)

    kw = dict(vmin=0, vmax=6, cmap="YlGn")
    im = axes[1, 0].imshow(latent.lai.values[t], **kw)
    axes[1, 0].set_title(f"temporal VAE LAI (posterior mean), {str(ds.time.values[t])[:10]}")
    fig.colorbar(im, ax=axes[1, 0], label="LAI (m² m⁻²)")
    im = axes[1, 1].imshow(truth.lai.values[t], **kw)
    axes[1, 1].set_title("true LAI")
    fig.colorbar(im, ax=axes[1, 1], label="LAI (m² m⁻²)")
    axes[1, 1].plot(xx, yy, "r+", ms=12)

    ax = axes[1, 2]
    dates = ds.time.values
    for lat, label, c in ((latent_p, "pixel VAE", "C0"), (latent, "temporal VAE", "C2")):
        m, s = lat.lai.values[:, yy, xx], lat.lai_std.values[:, yy, xx]
        lo, hi = np.maximum(m - 2 * s, 0.0), m + 2 * s  # LAI >= 0
        ax.fill_between(dates, lo, hi, alpha=0.25, color=c, label=f"{label} ±2σ")
        ax.plot(dates, m, "o-", color=c, label=f"{label} posterior mean")
    ax.plot(dates, truth.lai.values[:, yy, xx], "k^--", label="truth")
    cloudy = ~np.isfinite(obs.B4.values[:, yy, xx])
    if cloudy.any():
        ax.plot(dates[cloudy], truth.lai.values[cloudy, yy, xx], "rx", ms=10,
                label="S2 cloudy (S1 only)")  # fmt: skip
    ax.set(ylabel="LAI (m² m⁻²)", title=f"LAI time series, pixel (y={yy}, x={xx})")
    ax.tick_params(axis="x", rotation=30)
    ax.legend(fontsize=8)

    fig.suptitle("Physics-constrained VAE (PROSAIL-D + WCM/Oh decoder) on the demo cube")
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
