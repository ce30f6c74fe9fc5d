"""Reading assets in long batch jobs (``load_s2/load_s1(read_errors="nan")``, on by
default in the CLI): GDAL retries a failed HTTP request (HTTP 429, 5xx) with back-off
(:data:`HTTP_RETRIES`, :data:`RETRY_DELAY_S`), and a read that still fails gives a NaN
block with a :class:`~xr_physcube.exceptions.ReadFailureWarning` instead of killing the
job. Only I/O errors (rasterio's, or an OS error) become NaN: anything else raises."""

from __future__ import annotations

import warnings

import numpy as np
from rasterio.errors import RasterioError
from stackstac.rio_reader import AutoParallelRioReader

from xr_physcube.exceptions import ReadFailureWarning

HTTP_RETRIES = 3
"""GDAL retries of a failed HTTP request (``GDAL_HTTP_MAX_RETRY``)."""
RETRY_DELAY_S = 0.5
"""Wait before the first retry, doubled at each one (``GDAL_HTTP_RETRY_DELAY``)."""


def retry_options() -> dict[str, str]:
    """GDAL configuration options for retried HTTP reads."""
    return {"GDAL_HTTP_MAX_RETRY": str(HTTP_RETRIES), "GDAL_HTTP_RETRY_DELAY": str(RETRY_DELAY_S)}


def _is_io_error(err: BaseException) -> bool:
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, RasterioError | OSError):
            return True
        cause = cause.__cause__
    return False


class NanOnFailureReader(AutoParallelRioReader):
    """:class:`stackstac.rio_reader.AutoParallelRioReader` whose failed reads (after
    GDAL's retries) give NaN and a :class:`ReadFailureWarning`."""

    def read(self, window, **kwargs) -> np.ndarray:
        try:
            return super().read(window, **kwargs)
        except RuntimeError as err:  # stackstac wraps open and read errors
            if not _is_io_error(err):
                raise
            warnings.warn(
                f"{err} (after {HTTP_RETRIES} retries): this block is NaN",
                ReadFailureWarning,
                stacklevel=2,
            )
            return np.full((window.height, window.width), self.fill_value, self.dtype)
