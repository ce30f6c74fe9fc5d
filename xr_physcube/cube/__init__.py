"""The xarray layer: the ``ds.physics`` and ``ds.vae`` accessors and what they share.

* :mod:`~xr_physcube.cube.blockwise`: the one blockwise mechanism (gather, the
  ``apply_ufunc`` call, the masked and batched loop inside a chunk);
* :mod:`~xr_physcube.cube.checks`: unit checks of observations and missing-variable hints;
* :mod:`~xr_physcube.cube.physics`: ``ds.physics`` (simulate, retrieve, soil_moisture,
  grow, calibrate_safy);
* :mod:`~xr_physcube.cube.soil_moisture`: soil moisture from a Sentinel-1 series cube;
* :mod:`~xr_physcube.cube.grow`: SAFY on a daily forcing cube;
* :mod:`~xr_physcube.cube.safy_calibration`: SAFY calibrated per pixel on an LAI series
  (biomass and yield maps);
* :mod:`~xr_physcube.cube.sampling`: the VAE's input layout and training minibatches;
* :mod:`~xr_physcube.cube.vae`: ``ds.vae`` (fit, encode, decode, reconstruct).

Physics modules know nothing of xarray; this package knows nothing of their internals.
"""
