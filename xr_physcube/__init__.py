"""xr_physcube: differentiable bio/geophysical models on Sentinel-1/2 xarray data cubes.

Importing the package registers the ``.physics`` and ``.vae`` Dataset accessors.
"""

from xr_physcube import accessors  # noqa: F401  (registers the accessors)
from xr_physcube._version import __version__

__all__ = ["__version__"]
