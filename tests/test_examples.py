"""The scripts in ``examples/`` run as documented and draw a non-blank figure.

Each script is copied to a temporary folder and run there in a fresh interpreter, so it
writes ``figures/<name>.png`` beside the copy, not over the committed figure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("plot_*.py"))


def test_every_example_is_covered():
    assert [s.name for s in SCRIPTS] == sorted(
        s.name for s in EXAMPLES.glob("*.py") if not s.name.startswith("_")
    )
    assert len(SCRIPTS) >= 4


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_example_script_draws_its_figure(script, tmp_path):
    copy = tmp_path / script.name
    shutil.copy(script, copy)
    done = subprocess.run(
        [sys.executable, str(copy)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = list((tmp_path / "figures").glob("*.png"))
    committed = EXAMPLES / "figures" / f"{script.stem.removeprefix('plot_')}.png"
    assert [f.name for f in figures] == [committed.name]  # the name the README shows
    image = mpimg.imread(figures[0])
    assert image.shape[0] > 300 and image.shape[1] > 300
    # not blank: many distinct colours, not one background
    colours = np.unique(image[..., :3].reshape(-1, 3).round(2), axis=0)
    assert len(colours) > 50
