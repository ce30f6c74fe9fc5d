"""Plot Sentinel-1 sigma0 (WCM over Oh 2004) vs soil moisture for several LAI, the three
bare-soil models (Oh 2004, Dubois 1995, IEM) side by side, and a SAFY maize season (GLAI
and dry biomass) driven by the shipped synthetic Toulouse climate.

    python examples/plot_sar_safy.py   ->  examples/figures/sar_safy.png
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from xr_physcube.models.iem import iem_backscatter  # noqa: E402
from xr_physcube.models.safy import safy, shipped_climate  # noqa: E402
from xr_physcube.models.sar import (  # noqa: E402
    bare_soil_backscatter,
    to_db,
    water_cloud_backscatter,
)

OUT = Path(__file__).parent / "figures" / "sar_safy.png"


def main() -> None:
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.8))
    axes = axes.ravel()
    mv = torch.linspace(0.05, 0.40, 50)
    theta = 38.0
    lais = [0.0, 1.0, 2.0, 4.0, 6.0]
    colors = plt.cm.viridis_r(torch.linspace(0.1, 1, len(lais)).numpy())
    for lai, color in zip(lais, colors, strict=True):
        s = to_db(water_cloud_backscatter(mv, hrms=1.0, theta=theta, lai=lai))
        axes[0].plot(mv, s.vv, color=color, label=f"LAI {lai:g}")
        axes[1].plot(mv, s.vh, color=color, label=f"LAI {lai:g}")
    for ax, pol in zip(axes[:2], ("VV", "VH"), strict=True):
        ax.set(xlabel="soil moisture mv (m³/m³)", ylabel=f"σ⁰ {pol} (dB)",
               title=f"Sentinel-1 {pol}: WCM + Oh 2004, θ={theta:g}°, hrms=1 cm")  # fmt: skip
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)

    ax = axes[2]
    for hrms, ls in ((0.5, ":"), (1.0, "-"), (2.0, "--")):
        oh = to_db(bare_soil_backscatter(mv=mv, hrms=hrms, theta=theta))
        du = to_db(bare_soil_backscatter(mv=mv, hrms=hrms, theta=theta, soil_model="dubois"))
        ie = to_db(iem_backscatter(mv=mv, hrms=hrms, corr_length=5.0, theta=theta))
        ax.plot(mv, oh.vv, color="tab:blue", ls=ls, label=f"Oh 2004, s={hrms:g} cm")
        ax.plot(mv, du.vv, color="tab:red", ls=ls, label=f"Dubois 1995, s={hrms:g} cm")
        ax.plot(mv, ie.vv, color="tab:purple", ls=ls, label=f"IEM (exp., L=5 cm), s={hrms:g} cm")
    ax.set(xlabel="soil moisture mv (m³/m³)", ylabel="bare-soil σ⁰ VV (dB)",
           title=f"Bare soil VV, θ={theta:g}° (Dubois, IEM: loam, Hallikainen ε)")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=1)

    clim = shipped_climate()
    out = safy(torch.tensor(clim.temperature), torch.tensor(clim.radiation))
    doy = clim.doy
    ax = axes[3]
    ax.plot(doy, out.glai, color="tab:green", label="green LAI")
    ax.set(xlabel="day of year", ylabel="GLAI (m²/m²)", xlim=(100, 300),
           title="SAFY maize (synthetic Toulouse climate)")  # fmt: skip
    ax2 = ax.twinx()
    ax2.plot(doy, out.biomass / 100, color="tab:brown", label="dry biomass")
    ax2.plot(doy, out.yield_ / 100, color="tab:orange", ls="--", label="yield (HI 0.5)")
    ax2.set_ylabel("t/ha")
    lines = ax.get_lines() + ax2.get_lines()
    ax.legend(lines, [ln.get_label() for ln in lines], fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
