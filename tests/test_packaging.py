"""Library-grade packaging: one version source, a typed package, a LICENSE, torch as a
range, and the core working without the optional extras (STAC, plotting, distributed),
which name themselves when missing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import xr_physcube

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_one_version_source_a_license_and_a_typed_package():
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    attr = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "xr_physcube._version.__version__"
    from xr_physcube._version import __version__

    assert xr_physcube.__version__ == __version__
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    assert (ROOT / "xr_physcube" / "py.typed").is_file()


def test_torch_is_a_range_and_the_constraints_pin_the_cpu_wheel():
    torch_req = next(d for d in PYPROJECT["project"]["dependencies"] if d.startswith("torch"))
    assert "==" not in torch_req and ">=" in torch_req
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text()
    assert "-c constraints.txt" in (ROOT / ".ci" / "run").read_text()


def test_the_core_runs_without_the_extras_and_names_them_when_needed():
    script = textwrap.dedent(
        """
        import sys
        for name in ("pystac", "pystac_client", "stackstac", "matplotlib", "distributed"):
            sys.modules[name] = None  # as if not installed
        import xr_physcube
        from xr_physcube.io.demo import load_demo
        from xr_physcube.exceptions import MissingExtraError

        lai = load_demo(size=8).physics.retrieve(["lai"]).lai.compute()
        assert lai.notnull().any()
        try:
            import xr_physcube.io.stac
        except MissingExtraError as err:
            assert "xr_physcube[stac]" in str(err), err
        else:
            raise AssertionError("io.stac imported without pystac")
        from xr_physcube.cli import main
        assert main(["demo", "--out", sys.argv[1], "--size", "8"]) == 1
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script, "/tmp/xr_physcube_no_extras_demo"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "pip install 'xr_physcube[viz]'" in out.stderr  # the demo's one-line error


def test_ci_runs_exactly_the_readme_test_command():
    import re

    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    test_command = next(b.strip() for b in blocks if "pytest" in b)
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()
