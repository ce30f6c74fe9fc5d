"""What the command-line front doors share: the Zarr format of their stores and the
argparse value checks (argparse turns their errors into usage messages)."""

from __future__ import annotations

import argparse

from xr_physcube._zarr import ZARR_FORMAT  # the one format of every store written

__all__ = ["ZARR_FORMAT", "non_negative_int", "positive_float", "positive_int", "stac_time"]


def stac_time(text: str) -> str:
    """``--time``: a STAC datetime interval START/END of ISO 8601 dates or times (YYYY,
    YYYY-MM, YYYY-MM-DD, YYYY-MM-DDThh:mm:ssZ …; '..' or nothing for an open end) or one;
    argparse turns the error into a usage message."""
    import datetime as dt
    import re

    parts = text.split("/")
    if len(parts) > 2 or all(p in ("..", "") for p in parts):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected START/END, e.g. 2024-04-01/2024-07-31"
        )
    spans = []  # (first instant, instant after the last) of each part, naive UTC
    for part in parts:
        if part in ("..", ""):  # an open end
            spans.append(None)
            continue
        # dashes of a reduced-precision date (0 year, 1 month, 2 day), None for a time
        period = part.count("-") if re.fullmatch(r"\d{4}(-\d{2}){0,2}", part) else None
        full = part if period is None else part + ("-01-01", "-01", "")[period]
        try:
            first = dt.datetime.fromisoformat(full)
        except ValueError as err:
            raise argparse.ArgumentTypeError(
                f"{part!r} in {text!r} is not an ISO 8601 date or time: {err}"
            ) from err
        first = first.replace(tzinfo=None) - (first.utcoffset() or dt.timedelta())
        if period is None:  # a date and time: an instant
            after = first + dt.timedelta(microseconds=1)
        elif period == 2:  # a day
            after = first + dt.timedelta(days=1)
        else:  # a month or a year
            month = first.month + (1 if period == 1 else 12)
            after = first.replace(year=first.year + (month - 1) // 12, month=(month - 1) % 12 + 1)
        spans.append((first, after))
    if len(spans) == 2 and None not in spans and spans[0][0] >= spans[1][1]:
        raise argparse.ArgumentTypeError(f"{text!r}: START is after END")
    return text


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more; got {value}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more; got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0.0:
        raise argparse.ArgumentTypeError(f"must be more than 0; got {text}")
    return value
