"""Georeferencing of the cubes the package builds, written the way rioxarray reads it: a
``spatial_ref`` coordinate holding the CRS (WKT, CF grid-mapping attributes, GDAL
``GeoTransform``), ``grid_mapping`` on every variable, and CF attributes on ``x``/``y``.
The accessors carry it over to their outputs (:mod:`xr_physcube.cube.conventions`)."""

from __future__ import annotations

from collections.abc import Sequence

import xarray as xr

from xr_physcube.exceptions import MetadataError


def write_crs(ds: xr.Dataset, crs: str | int | None) -> xr.Dataset:
    """``ds`` with ``crs`` (e.g. "EPSG:32631") written by rioxarray, and the plain
    ``crs`` attribute kept for readers without rioxarray; ``ds`` unchanged if None."""
    if crs is None:
        return ds
    import rioxarray  # noqa: F401  (registers .rio)

    out = ds.rio.write_crs(crs).rio.write_coordinate_system()
    out = out.rio.write_transform(out.rio.transform(recalc=True))
    out.attrs["crs"] = str(out.rio.crs)
    return out


def grid_from(like: xr.Dataset) -> tuple[int, float, tuple[float, float, float, float]]:
    """(EPSG code, pixel size, bounds) of any georeferenced Dataset (rioxarray's CRS and
    transform, or a ``crs`` attribute and regular x/y coordinates), to load on its grid."""
    import rioxarray  # noqa: F401

    crs = like.rio.crs
    if crs is None and like.attrs.get("crs"):
        crs = like.rio.write_crs(like.attrs["crs"]).rio.crs
    if crs is None or crs.to_epsg() is None:
        raise MetadataError(
            "like= needs a georeferenced Dataset: a CRS with an EPSG code (rioxarray's "
            "spatial_ref, e.g. from load_s2 or ds.rio.write_crs) and x/y coordinates"
        )
    res_x, res_y = like.rio.resolution()
    if abs(abs(res_x) - abs(res_y)) > 1e-6 * abs(res_x):
        raise MetadataError(f"like= needs square pixels; got {res_x:g} x {res_y:g}")
    bounds: Sequence[float] = like.rio.bounds()
    return int(crs.to_epsg()), float(abs(res_x)), tuple(float(b) for b in bounds)
