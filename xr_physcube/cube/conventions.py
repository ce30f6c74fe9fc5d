"""What every output of the accessors carries: the input's georeferencing (rioxarray's
``spatial_ref`` coordinate and ``grid_mapping``, the x/y coordinate attributes) and CF
attributes (``standard_name`` where CF has one, UDUNITS units, provenance).

:func:`conventional_outputs` decorates an accessor class: each public method's Dataset,
DataArray or tuple of them passes through :func:`finish_output` with the accessor's
Dataset as the source. Only coordinates and attributes change; no data is computed.

References:
    CF Conventions 1.11, sections 3.3 (standard names) and 5.6 (grid mappings);
    CF standard name table v84; rioxarray, "Getting started: spatial_ref".
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import xarray as xr

from xr_physcube._version import __version__

GRID_MAPPING = "spatial_ref"
"""Name of the coordinate holding the CRS (rioxarray's default)."""

CF_CONVENTIONS = "CF-1.11"

STANDARD_NAMES: dict[str, str] = {
    "lai": "leaf_area_index",
    "glai": "leaf_area_index",
    "fcover": "vegetation_area_fraction",
    "fapar": "fraction_of_surface_downwelling_photosynthetic_radiative_flux_absorbed_by_vegetation",
    "mv": "volume_fraction_of_condensed_water_in_soil",
    "VV": "surface_backwards_scattering_coefficient_of_radar_wave",
    "VH": "surface_backwards_scattering_coefficient_of_radar_wave",
    "tts": "solar_zenith_angle",
    "tto": "sensor_zenith_angle",
    **{f"B{b}": "surface_bidirectional_reflectance" for b in ("2", "3", "4", "5", "6", "7", "8")},
    **{b: "surface_bidirectional_reflectance" for b in ("B8A", "B11", "B12")},
}
"""CF standard names of the variables the accessors return (CF table v84); a ``_std``
variable gets the same name with ``standard_error`` (CF's modifier) as its
``ancillary`` description."""

UNIT_ALIASES = {"deg": "degree", "m2/m2": "1", "m3/m3": "m3 m-3", "ug/cm2": "ug cm-2"}
"""Spellings normalised to UDUNITS on every output."""

SPATIAL_DIMS = ("y", "x")

T = TypeVar("T")


def grid_mapping_name(src: xr.Dataset | xr.DataArray) -> str | None:
    """The CRS coordinate of ``src``: a variable's ``grid_mapping``, else
    ``spatial_ref`` if present, else None."""
    variables = src.data_vars.values() if isinstance(src, xr.Dataset) else [src]
    for var in variables:
        name = var.encoding.get("grid_mapping", var.attrs.get("grid_mapping"))
        if name and name in src.coords:
            return str(name)
    return GRID_MAPPING if GRID_MAPPING in src.coords else None


def _is_spatial(var: xr.DataArray) -> bool:
    return set(SPATIAL_DIMS) <= set(var.dims)


def _cf_attrs(name: str, attrs: dict[str, Any]) -> dict[str, Any]:
    out = dict(attrs)
    units = out.get("units")
    if isinstance(units, str):
        out["units"] = UNIT_ALIASES.get(units, units)
    base = name[: -len("_std")] if name.endswith("_std") else name
    standard = STANDARD_NAMES.get(base)
    if standard and "standard_name" not in out:
        out["standard_name"] = f"{standard} standard_error" if base != name else standard
    return out


def _georeferenced(obj: T, src: xr.Dataset, crs: str | None) -> T:
    """``obj`` with ``src``'s x/y coordinate attributes (where it has none) and, if it
    holds a (y, x) variable, ``src``'s CRS coordinate."""
    for dim in SPATIAL_DIMS:
        if dim in obj.coords and dim in src.coords and not obj[dim].attrs:
            obj = obj.assign_coords({dim: obj[dim].assign_attrs(src[dim].attrs)})
    arrays = obj.data_vars.values() if isinstance(obj, xr.Dataset) else [obj]
    if crs and crs not in obj.coords and any(_is_spatial(v) for v in arrays):
        obj = obj.assign_coords({crs: src[crs]})
    return obj


def _cf_variable(var: xr.DataArray, name: str, crs: str | None) -> xr.DataArray:
    """``var`` with CF attributes and, on a (y, x) variable, its ``grid_mapping``."""
    attrs = _cf_attrs(name, var.attrs)
    if crs and _is_spatial(var):
        attrs["grid_mapping"] = crs
    return var.assign_attrs(attrs)


def finish_output(out: T, src: xr.Dataset) -> T:
    """``out`` with ``src``'s CRS coordinate and x/y attributes, CF attributes on every
    variable and provenance (package version, CF version) on a Dataset. Tuples are
    finished element by element; anything else is returned unchanged."""
    if isinstance(out, tuple):
        return tuple(finish_output(o, src) for o in out)  # type: ignore[return-value]
    if not isinstance(out, xr.Dataset | xr.DataArray):
        return out
    crs = grid_mapping_name(src)
    if isinstance(out, xr.DataArray):
        return _georeferenced(_cf_variable(out, str(out.name), crs), src, crs)
    finished = out.copy()
    for name in list(finished.data_vars):
        finished[name] = _cf_variable(finished[name], str(name), crs)
    for name in finished.coords:
        finished[name].attrs = _cf_attrs(str(name), finished[name].attrs)
    finished = _georeferenced(finished, src, crs)
    for key in ("crs", "collection", "items", "s1_collection", "s1_items"):  # provenance
        if key in src.attrs:
            finished.attrs.setdefault(key if key == "crs" else f"input_{key}", src.attrs[key])
    finished.attrs.setdefault("Conventions", CF_CONVENTIONS)
    finished.attrs.setdefault("xr_physcube_version", __version__)
    return finished  # type: ignore[return-value]


def conventional_outputs(cls: type) -> type:
    """Class decorator: every public method of the accessor ``cls`` (which keeps its
    Dataset as ``self._ds``) returns :func:`finish_output` of its result."""

    def wrap(method: Callable) -> Callable:
        @functools.wraps(method)
        def finished(self, *args, **kwargs):
            return finish_output(method(self, *args, **kwargs), self._ds)

        return finished

    for name, member in list(vars(cls).items()):
        if inspect.isfunction(member) and not name.startswith("_"):  # plain methods only
            setattr(cls, name, wrap(member))
    return cls
