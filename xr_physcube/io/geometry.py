"""Sun and view geometry of Sentinel-2/1 items: angles from item properties (one key
table each), the sun position where they are missing (NOAA equations, Spencer 1971), and
per-pixel angles from the tile metadata grids (:mod:`xr_physcube.io._angles`)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any
from xml.etree.ElementTree import ParseError as ET_ParseError

import numpy as np
import pandas as pd
import xarray as xr

from xr_physcube._extras import require
from xr_physcube.exceptions import (
    MetadataError,
)
from xr_physcube.sensors.sentinel1 import (
    IW_INCIDENCE_RANGE_DEG,
)

SUN_ZENITH_KEYS = ("s2:mean_solar_zenith", "sun_zenith")
"""Item properties giving the sun zenith (deg) directly; ``view:sun_elevation`` (STAC
view extension, tts = 90 - elevation) is tried first."""
SUN_AZIMUTH_KEYS = ("view:sun_azimuth", "s2:mean_solar_azimuth", "sun_azimuth")
VIEW_ZENITH_KEYS = (
    "view:incidence_angle",
    "s2:mean_incidence_zenith_angle_b8",
    "s2:mean_view_zenith",
    "view:off_nadir",
)
"""Item properties giving the view zenith (deg), in this order (``view:off_nadir`` is the
angle at the sensor, a close approximation for S2's narrow field of view)."""
VIEW_AZIMUTH_KEYS = ("view:azimuth", "s2:mean_incidence_azimuth_angle_b8", "s2:mean_view_azimuth")
GRANULE_METADATA_KEYS = ("granule_metadata", "granule-metadata", "MTD_TL", "metadata")
"""Asset keys of the tile metadata XML (``MTD_TL.xml``) tried in order for
``load_s2(..., angles="granule")``: Earth Search v1, Planetary Computer, others."""
S1_INCIDENCE_KEYS = ("view:incidence_angle", "s1:incidence_angle", "sar:incidence_angle")

S1_DEFAULT_INCIDENCE_DEG = 0.5 * (IW_INCIDENCE_RANGE_DEG[0] + IW_INCIDENCE_RANGE_DEG[1])
"""Fallback S1 incidence angle: IW mid-swath (29.1 + 46.0) / 2 = 37.55 deg."""

# ----------------------------------------------------------------------------------------
# Angles
# ----------------------------------------------------------------------------------------

pystac = require("pystac", "loading cubes from a STAC API")


def solar_position(time, lon: float, lat: float) -> tuple[np.ndarray, np.ndarray]:
    """Sun zenith and azimuth (deg, azimuth clockwise from north) at UTC ``time``.

    NOAA Global Monitoring Laboratory "General Solar Position Calculations": Fourier
    series for the declination and the equation of time of Spencer, J. W. (1971),
    *Fourier series representation of the position of the sun*, Search 2(5), 172.
    Accuracy ~0.1–0.2°, ample for the sun-angle fallback; no refraction.
    """
    t = pd.DatetimeIndex(np.atleast_1d(pd.to_datetime(time)))
    t = t.tz_convert("UTC").tz_localize(None) if t.tz is not None else t
    hours = t.hour + t.minute / 60.0 + t.second / 3600.0
    gamma = 2.0 * np.pi / 365.0 * (t.dayofyear - 1 + (hours - 12.0) / 24.0)
    gamma = np.asarray(gamma, dtype=float)
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * np.cos(gamma)
        - 0.032077 * np.sin(gamma)
        - 0.014615 * np.cos(2 * gamma)
        - 0.040849 * np.sin(2 * gamma)
    )
    decl = (
        0.006918
        - 0.399912 * np.cos(gamma)
        + 0.070257 * np.sin(gamma)
        - 0.006758 * np.cos(2 * gamma)
        + 0.000907 * np.sin(2 * gamma)
        - 0.002697 * np.cos(3 * gamma)
        + 0.00148 * np.sin(3 * gamma)
    )
    true_solar_min = np.asarray(hours, dtype=float) * 60.0 + eqtime + 4.0 * lon
    ha = np.radians(true_solar_min / 4.0 - 180.0)
    phi = np.radians(lat)
    cos_z = np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(ha)
    zenith = np.degrees(np.arccos(np.clip(cos_z, -1.0, 1.0)))
    azimuth = np.degrees(
        np.arctan2(np.sin(ha), np.cos(ha) * np.sin(phi) - np.tan(decl) * np.cos(phi))
    )
    return zenith, (azimuth + 180.0) % 360.0


def first_property(props: Mapping[str, Any], keys: Sequence[str]) -> float | None:
    for k in keys:
        v = props.get(k)
        if v is not None:
            return float(v)
    return None


def relative_azimuth(sun_az: float, view_az: float) -> float:
    d = abs(sun_az - view_az) % 360.0
    return 360.0 - d if d > 180.0 else d


def item_angles(items: Sequence[pystac.Item], centre: tuple[float, float]) -> dict[str, np.ndarray]:
    tts, tto, psi, fallback = [], [], [], {}
    for it in items:
        p = it.properties
        used = []
        elev = p.get("view:sun_elevation")
        sz = 90.0 - float(elev) if elev is not None else first_property(p, SUN_ZENITH_KEYS)
        sa = first_property(p, SUN_AZIMUTH_KEYS)
        if sz is None or sa is None:
            z, a = solar_position(it.datetime, *centre)
            sz = float(z[0]) if sz is None else sz
            sa = float(a[0]) if sa is None else sa
            used.append("sun position computed from datetime and bbox centre")
        vz = first_property(p, VIEW_ZENITH_KEYS)
        if vz is None:
            vz = 0.0
            used.append("view zenith 0 (nadir) assumed")
        va = first_property(p, VIEW_AZIMUTH_KEYS)
        if va is None:
            used.append("relative azimuth 0 assumed")
        tts.append(sz)
        tto.append(vz)
        psi.append(0.0 if va is None else relative_azimuth(sa, va))
        if used:
            fallback[it.id] = used
    if fallback:
        warnings.warn(
            f"sun/view angle metadata missing from STAC item(s), fallback used: {fallback}",
            UserWarning,
            stacklevel=3,
        )
    return {"tts": np.array(tts), "tto": np.array(tto), "psi": np.array(psi)}


def bbox_centre(items: Sequence[pystac.Item], bbox) -> tuple[float, float]:
    if bbox is not None:
        return (0.5 * (bbox[0] + bbox[2]), 0.5 * (bbox[1] + bbox[3]))
    b = items[0].bbox
    return (0.5 * (b[0] + b[2]), 0.5 * (b[1] + b[3]))


def granule_angles(
    ds: xr.Dataset,
    items: Sequence[pystac.Item],
    key: str,
    template: xr.DataArray,
    timeout: float | None,
) -> xr.Dataset:
    """Per-pixel ``tts``/``tto``/``psi`` variables (lazy) from each item's tile metadata."""
    import dask.array as dsa

    from xr_physcube.io._angles import parse_tile_angles, pixel_angles, read_text

    tiles = []
    for it in items:
        href = it.assets[key].href
        try:
            tile = parse_tile_angles(read_text(href, timeout), view_band="B8")
        except (OSError, ValueError, ET_ParseError) as err:
            raise MetadataError(
                f"cannot read angle grids of item {it.id!r} from {href}: {err}"
            ) from err
        crs = f"EPSG:{tile.epsg}"
        if ds.attrs.get("crs") and crs != ds.attrs["crs"]:
            raise MetadataError(
                f"item {it.id!r}: tile angle grids are in {crs} but the cube is in "
                f"{ds.attrs['crs']}; load with epsg={tile.epsg} or angles='metadata'"
            )
        tiles.append(tile)
    x, y = ds.x.values, ds.y.values

    def block(name: str, block_info=None) -> np.ndarray:
        (t0, t1), (y0, y1), (x0, x1) = block_info[None]["array-location"]
        out = [pixel_angles(tiles[t], x[x0:x1], y[y0:y1])[name] for t in range(t0, t1)]
        return np.stack(out)

    data = template.data
    long = {"tts": "sun zenith", "tto": "view zenith (B8)", "psi": "relative azimuth"}
    out = {}
    for name in ("tts", "tto", "psi"):
        arr = dsa.map_blocks(
            block, name, chunks=data.chunks, dtype=np.float32, meta=np.array((), np.float32)
        )
        attrs = {"long_name": long[name], "units": "degree", "source": "tile metadata grids"}
        # NaN outside the item's footprint, so same-day mosaics take the right tile's angles
        out[name] = xr.DataArray(
            arr, dims=template.dims, coords=template.coords, attrs=attrs
        ).where(template.notnull())
    return ds.assign(out)
