"""Cloud-Optimized GeoTIFFs of a job's products, one file per variable, for a GIS:
dates as bands (described by their ISO date), the CRS and transform from the Dataset
(rioxarray), CF attributes as GDAL tags, and a manifest that marks the folder as the
package's output (so ``--overwrite`` replaces only it).

Memory: the COG driver writes a file in one go, so each variable is computed whole
(4 bytes x dates x pixels); use the Zarr store for tiles that do not fit.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import xarray as xr

from xr_physcube.exceptions import DimensionError

MANIFEST = "xr_physcube_cogs.json"


def is_cog_folder(path: Path) -> bool:
    """Whether ``path`` is a folder :func:`write_cogs` wrote."""
    return (path / MANIFEST).is_file()


def write_cogs(result: xr.Dataset, folder: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Write every (``time``,) ``y``, ``x`` variable of ``result`` as ``<folder>/<name>.tif``
    (COG, deflate); returns the paths. The folder must not exist, unless ``overwrite``
    and it is an earlier :func:`write_cogs` folder."""
    import rioxarray  # noqa: F401  (registers .rio)

    folder = Path(folder)
    if folder.exists():
        if not (overwrite and is_cog_folder(folder)):
            raise FileExistsError(
                f"{folder} exists; only a folder of COGs written by xr_physcube is replaced, "
                "and only with overwrite"
            )
        shutil.rmtree(folder)
    names = [n for n, v in result.data_vars.items() if {"y", "x"} <= set(v.dims)]
    if not names:
        raise DimensionError("write_cogs: no variable with 'y' and 'x' dims to write")
    if result.rio.crs is None:
        raise DimensionError("write_cogs: the Dataset has no CRS (rioxarray spatial_ref)")
    folder.mkdir(parents=True)
    paths = []
    for name in names:
        da = result[name]
        extra = [d for d in da.dims if d not in ("y", "x")]
        if len(extra) > 1:
            raise DimensionError(f"{name}: one dimension besides y, x expected; got {extra}")
        da = da.transpose(*extra, "y", "x").astype(np.float32).compute()
        tags = {k: str(v) for k, v in da.attrs.items() if k != "grid_mapping"}
        da.attrs = {"long_name": tuple(str(v)[:10] for v in da[extra[0]].values)} if extra else {}
        path = folder / f"{name}.tif"  # band descriptions: the dates
        da.rio.write_nodata(np.nan, encoded=False, inplace=True)
        da.rio.to_raster(path, driver="COG", compress="DEFLATE", tags=tags)
        paths.append(path)
    manifest = {"variables": names, "crs": str(result.rio.crs)}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return paths
