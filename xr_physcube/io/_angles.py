"""Per-pixel Sentinel-2 sun/view angles from the L1C/L2A tile metadata (``MTD_TL.xml``).

The tile metadata (Earth Search asset ``granule_metadata``, Planetary Computer
``granule-metadata``) gives, in ``Geometric_Info/Tile_Angles``, the sun zenith/azimuth on a
23 x 23 grid of nodes every 5000 m (``COL_STEP``/``ROW_STEP``) whose first node is the tile's
upper-left corner (``Geoposition`` ``ULX``, ``ULY``), and the viewing incidence
zenith/azimuth on the same grid per band (``bandId`` 0 = B1 … 12 = B12) and per detector,
NaN outside each detector's footprint (ESA, *Sentinel-2 Products Specification Document*,
S2-PDGS-TAS-DI-PSD, tile metadata). Detectors are combined by averaging where their
footprints overlap (zeniths arithmetically, azimuths as unit vectors); nodes no detector
covers take the value of the nearest covered node. Angles are interpolated bilinearly to
pixel centres (azimuths as unit vectors, so 359° and 1° average to 0°).
"""

from __future__ import annotations

import re
import urllib.request
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xr_physcube.exceptions import MetadataError

# MSI band order of the tile metadata's bandId attribute (0-based).
BAND_IDS: dict[str, int] = {
    b: i
    for i, b in enumerate(
        ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")
    )
}


@dataclass(frozen=True)
class TileAngles:
    """Angle grids (deg) of one tile: shape (n_rows, n_cols) of 5 km nodes."""

    epsg: int
    ulx: float
    uly: float
    col_step: float
    row_step: float
    sun_zenith: np.ndarray
    sun_azimuth: np.ndarray
    view_zenith: np.ndarray
    view_azimuth: np.ndarray


def read_text(href: str, timeout: float | None = 60.0) -> str:
    """Text of a local path, ``file://`` or ``http(s)://`` URL (e.g. a signed asset href);
    ``timeout`` (s) on connecting and on each wait for data (None: forever)."""
    if href.startswith(("http://", "https://")):
        with urllib.request.urlopen(href, timeout=timeout) as r:
            return r.read().decode("utf-8")
    if href.startswith("file://"):
        href = href[len("file://") :]
    if "://" in href:
        raise MetadataError(
            f"cannot read tile metadata from {href!r}: only local paths and http(s) URLs are "
            "supported (use the provider's https asset href, or sign it)"
        )
    return Path(href).read_text(encoding="utf-8")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(node: ET.Element, name: str) -> ET.Element | None:
    return next((e for e in node.iter() if _local(e.tag) == name), None)


def _grid(node: ET.Element) -> tuple[np.ndarray, float, float]:
    rows = [e.text or "" for e in node.iter() if _local(e.tag) == "VALUES"]
    values = np.array([[float(v) for v in r.split()] for r in rows], dtype=float)
    col, row = _find(node, "COL_STEP"), _find(node, "ROW_STEP")
    col_step = float(col.text) if col is not None else 5000.0
    row_step = float(row.text) if row is not None else 5000.0
    return values, col_step, row_step


def _nanmean(grids: list[np.ndarray]) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN nodes stay NaN
        return np.nanmean(np.stack(grids), axis=0)


def _circular_nanmean(az: list[np.ndarray]) -> np.ndarray:
    rad = np.radians(np.stack(az))
    s, c = _nanmean(list(np.sin(rad))), _nanmean(list(np.cos(rad)))
    return np.degrees(np.arctan2(s, c)) % 360.0


def _fill_nearest(grid: np.ndarray) -> np.ndarray:
    from scipy.ndimage import distance_transform_edt

    bad = ~np.isfinite(grid)
    if not bad.any():
        return grid
    if bad.all():
        raise MetadataError("angle grid has no finite value")
    idx = distance_transform_edt(bad, return_distances=False, return_indices=True)
    return grid[tuple(idx)]


def parse_tile_angles(xml_text: str, view_band: str = "B8") -> TileAngles:
    """Sun and viewing-angle grids of ``MTD_TL.xml`` (view angles of ``view_band``)."""
    root = ET.fromstring(xml_text)
    code = _find(root, "HORIZONTAL_CS_CODE")
    if code is None or not re.fullmatch(r"EPSG:\d+", (code.text or "").strip()):
        raise MetadataError("tile metadata has no HORIZONTAL_CS_CODE 'EPSG:nnnn'")
    geo = _find(root, "Geoposition")
    if geo is None:
        raise MetadataError("tile metadata has no Geoposition")
    ulx, uly = float(_find(geo, "ULX").text), float(_find(geo, "ULY").text)
    sun = _find(root, "Sun_Angles_Grid")
    if sun is None:
        raise MetadataError("tile metadata has no Sun_Angles_Grid")
    sz, col_step, row_step = _grid(_find(sun, "Zenith"))
    sa, _, _ = _grid(_find(sun, "Azimuth"))
    band_id = str(BAND_IDS[view_band])
    zen, azi = [], []
    for g in root.iter():
        if _local(g.tag) == "Viewing_Incidence_Angles_Grids" and g.get("bandId") == band_id:
            zen.append(_grid(_find(g, "Zenith"))[0])
            azi.append(_grid(_find(g, "Azimuth"))[0])
    if not zen:
        raise MetadataError(f"tile metadata has no Viewing_Incidence_Angles_Grids for {view_band}")
    vz = _nanmean(zen)
    va = _circular_nanmean(azi)
    va[~np.isfinite(vz)] = np.nan
    return TileAngles(
        epsg=int(code.text.strip().split(":")[1]),
        ulx=ulx,
        uly=uly,
        col_step=col_step,
        row_step=row_step,
        sun_zenith=_fill_nearest(sz),
        sun_azimuth=_fill_nearest(sa),
        view_zenith=_fill_nearest(vz),
        view_azimuth=_fill_nearest(va),
    )


def _bilinear(grid: np.ndarray, fi: np.ndarray, fj: np.ndarray) -> np.ndarray:
    """Bilinear interpolation at fractional node indices (row fi, col fj); clamped."""
    n, m = grid.shape
    fi = np.clip(fi, 0, n - 1)
    fj = np.clip(fj, 0, m - 1)
    i0 = np.clip(np.floor(fi).astype(int), 0, max(n - 2, 0))
    j0 = np.clip(np.floor(fj).astype(int), 0, max(m - 2, 0))
    i1, j1 = np.minimum(i0 + 1, n - 1), np.minimum(j0 + 1, m - 1)
    wi, wj = fi - i0, fj - j0
    top = grid[i0[:, None], j0[None, :]] * (1 - wj) + grid[i0[:, None], j1[None, :]] * wj
    bot = grid[i1[:, None], j0[None, :]] * (1 - wj) + grid[i1[:, None], j1[None, :]] * wj
    return top * (1 - wi)[:, None] + bot * wi[:, None]


def pixel_angles(tile: TileAngles, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """``tts``, ``tto``, ``psi`` (deg, float32, shape (len(y), len(x))) at pixel centres
    ``x``, ``y`` given in the tile's CRS. ``psi`` = |sun azimuth - view azimuth| folded to
    0–180° (0 = sun behind the sensor, hot spot)."""
    fj = (np.asarray(x, float) - tile.ulx) / tile.col_step
    fi = (tile.uly - np.asarray(y, float)) / tile.row_step

    def azimuth(grid: np.ndarray) -> np.ndarray:
        rad = np.radians(grid)
        s, c = _bilinear(np.sin(rad), fi, fj), _bilinear(np.cos(rad), fi, fj)
        return np.degrees(np.arctan2(s, c))

    d = np.abs(azimuth(tile.sun_azimuth) - azimuth(tile.view_azimuth)) % 360.0
    psi = np.where(d > 180.0, 360.0 - d, d)
    return {
        "tts": _bilinear(tile.sun_zenith, fi, fj).astype(np.float32),
        "tto": _bilinear(tile.view_zenith, fi, fj).astype(np.float32),
        "psi": psi.astype(np.float32),
    }
