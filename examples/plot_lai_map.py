"""Load → retrieve → plot: an LAI map from the embedded demo cube.

    python examples/plot_lai_map.py   # -> examples/figures/lai_map.png

With a STAC API instead of the demo cube, replace ``load_demo()`` by
``xr_physcube.io.stac.load_s2(url, bbox=..., time=...)``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import xr_physcube  # noqa: E402, F401  (registers .physics)
from xr_physcube.io.demo import demo_scene  # noqa: E402
from xr_physcube.plotting import plot_retrieval  # noqa: E402

OUT = Path(__file__).parent / "figures" / "lai_map.png"


def main() -> Path:
    scene = demo_scene()
    cube = scene.cube  # lazy (time, y, x) S1 + S2 cube
    lai = cube.physics.retrieve(["lai"]).compute()  # blockwise on dask chunks
    return plot_retrieval(lai, scene.truth, cube.compute(), OUT, time_index=2)


if __name__ == "__main__":
    print(main())
