"""Registers the ``ds.physics`` and ``ds.vae`` Dataset accessors.

The xarray layer lives in :mod:`xr_physcube.cube`; importing this module (or
``xr_physcube``) registers its accessors.
"""

from xr_physcube.cube.physics import PhysicsAccessor
from xr_physcube.cube.vae import VAEAccessor

__all__ = ["PhysicsAccessor", "VAEAccessor"]
