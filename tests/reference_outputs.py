"""The shipped models' outputs on a small demo cube, through the public accessors.

``python tests/reference_outputs.py`` (re)records them into
``tests/data/reference_outputs.npz``; ``test_reference_outputs.py`` recomputes them and
asserts the same arrays (up to float32 rounding across machines). They were first
recorded on main 34ddd19, before the xarray layer moved to ``xr_physcube.cube``, so the
test shows the move kept behaviour.
Re-record only for an intended change of the outputs, and say so in the commit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

import xr_physcube  # noqa: F401  (registers the accessors)
from xr_physcube.io.demo import demo_scene
from xr_physcube.models.safy import shipped_climate

STORE = Path(__file__).parent / "data" / "reference_outputs.npz"


def _growth_cube() -> xr.Dataset:
    c = shipped_climate()
    offset = np.linspace(-1.0, 1.5, 6).reshape(2, 3)
    return xr.Dataset(
        {
            "tas": (("time", "y", "x"), (c.temperature[:, None, None] + offset).astype("f4")),
            "rg": ("time", c.radiation.astype("f4")),
            "elue": (("y", "x"), np.linspace(2.0, 3.5, 6).reshape(2, 3).astype("f4")),
        },
        coords={"time": pd.date_range("2023-01-01", periods=c.doy.size, freq="D")},
    ).chunk({"y": 1})


def compute_outputs() -> dict[str, np.ndarray]:
    """Every accessor method with the shipped models, on a 12 × 12 demo cube (chunks 8)."""
    scene = demo_scene(size=12, seed=3, chunks=8)
    cube, truth = scene.cube, scene.truth
    results = {
        "retrieve_s2": cube.physics.retrieve(),
        "retrieve_s1": cube.physics.retrieve(["mv"], model="pretrained-s1"),
        "encode_temporal": cube.vae.encode(),
        "encode_pixel": cube.isel(time=1).vae.encode(),
        "reconstruct_pixel": cube.isel(time=2).vae.reconstruct(),
        "simulate_s2": truth[["lai", "cab", "cw", "cm"]].chunk({"y": 8}).physics.simulate(),
        "simulate_s1": truth[["lai", "mv"]]
        .assign(hrms=1.2, theta=cube.theta.compute())
        .chunk({"y": 8})
        .physics.simulate("S1"),
        "grow": _growth_cube().physics.grow("tas", "rg", d0=120, hi=0.45),
    }
    arrays = {}
    for key, ds in results.items():
        ds = ds.compute()
        for name in sorted(ds.data_vars):
            arrays[f"{key}/{name}"] = np.asarray(ds[name].values)
    return arrays


if __name__ == "__main__":
    STORE.parent.mkdir(exist_ok=True)
    outputs = compute_outputs()
    np.savez_compressed(STORE, **outputs)
    print(f"{len(outputs)} arrays -> {STORE} ({STORE.stat().st_size / 1024:.0f} KiB)")
