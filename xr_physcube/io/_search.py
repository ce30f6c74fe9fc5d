"""STAC search: open a client (timeouts, retries, URL signing) and list items.

The first stage of the loaders in :mod:`xr_physcube.io.stac` (stackstac's stages:
search, then stack, then read)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from xr_physcube._extras import require
from xr_physcube.exceptions import (
    InvalidArgumentError,
    StacSearchError,
)
from xr_physcube.validation import check_bbox, positive_float, positive_int

STAC_TIMEOUT_S = 30.0
"""Default limit (s) on connecting to a STAC API and on each wait for its answer, so a
wrong host or a server that accepts but never answers fails instead of hanging. A read
that times out is not retried; a failed connection is retried up to 3 times. The same
limit applies to the data reads (GDAL, when chunks are computed: no connection, or no
byte received, for that long) and to tile metadata XML downloads."""
# ----------------------------------------------------------------------------------------
# Search
# ----------------------------------------------------------------------------------------

pystac = require("pystac", "loading cubes from a STAC API")


def open_client(
    catalog_or_url,
    sign: str | None,
    modifier: Callable | None,
    timeout: float | None = STAC_TIMEOUT_S,
):
    from pystac_client import Client
    from pystac_client.stac_api_io import StacApiIO
    from urllib3.util.retry import Retry

    if sign is not None:
        if sign != "planetary_computer":
            raise InvalidArgumentError(f"sign must be None or 'planetary_computer'; got {sign!r}")
        try:
            import planetary_computer
        except ImportError as err:
            raise ImportError(
                "sign='planetary_computer' needs the optional 'planetary-computer' package "
                "(pip install 'xr_physcube[planetary-computer]')"
            ) from err
        modifier = planetary_computer.sign_inplace
    if isinstance(catalog_or_url, Client):
        if modifier is not None:
            catalog_or_url.modifier = modifier
        return catalog_or_url
    if isinstance(catalog_or_url, str):
        # pystac-client's default (5 retries of anything) waits 6 x timeout on a mute server
        retry = Retry(total=3, read=0, backoff_factor=0.5)
        stac_io = StacApiIO(timeout=timeout, max_retries=retry)
        return Client.open(catalog_or_url, modifier=modifier, stac_io=stac_io, timeout=timeout)
    raise TypeError(
        "catalog_or_url must be a STAC API URL, a pystac_client.Client, or a list of "
        f"pystac.Item; got {type(catalog_or_url).__name__}"
    )


def search_items(
    catalog_or_url,
    collection: str,
    bbox: Sequence[float] | None,
    time: str | Sequence[Any],
    *,
    query: Mapping[str, Any] | None = None,
    max_items: int | None = None,
    sign: str | None = None,
    modifier: Callable | None = None,
    timeout: float | None = STAC_TIMEOUT_S,
) -> list[pystac.Item]:
    """Search one collection; items sorted by datetime. Raises :class:`StacSearchError` if empty.

    ``catalog_or_url`` may also be an iterable of ``pystac.Item`` (no search; those whose
    bbox misses ``bbox`` are dropped, the others returned sorted). ``bbox`` is checked
    (:func:`~xr_physcube.validation.check_bbox`). ``time`` is a STAC datetime
    ("2024-05-01/2024-05-31") or a (start, end) pair. ``timeout`` (s) limits the
    connection to a STAC API given by URL and each wait for its answer (None: wait
    forever); a ``Client`` keeps its own.
    """
    if bbox is not None:
        bbox = check_bbox(bbox)
    if not isinstance(catalog_or_url, str) and isinstance(catalog_or_url, Iterable):
        items = list(catalog_or_url)
        if not all(isinstance(i, pystac.Item) for i in items):
            raise TypeError("an iterable catalog_or_url must hold pystac.Item objects")
        if bbox is not None:
            items = [it for it in items if it.bbox is None or _overlap(it.bbox, bbox)]
    else:
        client = open_client(catalog_or_url, sign, modifier, timeout)
        datetime = time if isinstance(time, str) else "/".join(iso_time(t) for t in time)
        search = client.search(
            collections=[collection],
            bbox=list(bbox) if bbox is not None else None,
            datetime=datetime,
            query=dict(query) if query else None,
            max_items=max_items,
        )
        items = list(search.items())
    if not items:
        raise StacSearchError(
            f"no STAC item in collection {collection!r} for "
            f"bbox={list(bbox) if bbox is not None else None} and time={time!r}"
        )
    return sorted(items, key=lambda it: it.datetime or pd.Timestamp(0, tz="UTC"))


def check_grid_options(
    resolution: float, chunks: int | Sequence[int] | None, timeout: float | None
) -> None:
    """:class:`InvalidArgumentError` unless ``resolution`` > 0 (metres), ``chunks`` is None
    or counts ≥ 1 and ``timeout`` is None or > 0 (seconds)."""
    positive_float(resolution, "resolution (m)")
    if chunks is not None:
        for c in (chunks,) if isinstance(chunks, (int, np.integer)) else chunks:
            positive_int(c, "chunks (pixels)")
    if timeout is not None:
        positive_float(timeout, "timeout (s)")


def _overlap(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether two (W, S, E, N) boxes intersect (2-D part of a STAC item bbox)."""
    a = list(a)
    if len(a) == 6:  # 3-D bbox: W, S, min z, E, N, max z
        a = [a[0], a[1], a[3], a[4]]
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def iso_time(t) -> str:
    ts = pd.Timestamp(t)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")
