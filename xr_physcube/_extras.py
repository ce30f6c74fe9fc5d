"""Optional dependencies: what each extra of ``pip install 'xr_physcube[...]'`` brings,
and the one check that names the extra when a module is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from xr_physcube.exceptions import MissingExtraError

EXTRAS = {
    "pystac": "stac",
    "pystac_client": "stac",
    "stackstac": "stac",
    "matplotlib": "viz",
    "distributed": "distributed",
    "odc": "odc-stac",
    "planetary_computer": "planetary-computer",
}
"""Module -> the extra that installs it (pyproject.toml ``[project.optional-dependencies]``;
``all`` installs every one but planetary-computer)."""


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtraError` saying which extra gives
    it and what needs it (``purpose``, e.g. "loading cubes from a STAC API")."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        extra = EXTRAS.get(module.split(".")[0], "all")
        raise MissingExtraError(
            f"{purpose} needs {module.split('.')[0]!r}, which is not installed: "
            f"pip install 'xr_physcube[{extra}]'"
        ) from err
