"""The one Zarr format of every store the package writes."""

ZARR_FORMAT = 2
"""Zarr v2 with consolidated metadata: every reader (zarr-python 2 and 3, xarray's default
``open_zarr``, GDAL) opens it in one metadata read; the v3 specification has no
consolidated metadata and zarr-python 3 warns on writing it."""
