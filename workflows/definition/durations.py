"""ISO-8601 durations (`P3D`, `PT4H`, `P1M`), parsed with isodate."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import isodate


class BadDuration(ValueError):
    pass


@lru_cache(maxsize=2048)
def parse_duration(text: object) -> dt.timedelta | isodate.Duration:
    """A positive duration. Months and years stay calendar-aware: `P1M` from 31 January
    is the end of February."""
    if not isinstance(text, str):
        raise BadDuration(f"expected an ISO-8601 duration such as 'P3D', got {text!r}")
    try:
        value = isodate.parse_duration(text)
    except (isodate.ISO8601Error, ValueError) as exc:
        raise BadDuration(f"{text!r} is not an ISO-8601 duration (e.g. P3D, PT48H, P1M)") from exc
    if isinstance(value, isodate.Duration):
        if value.years < 0 or value.months < 0 or value.tdelta < dt.timedelta(0):
            raise BadDuration(f"{text!r} is negative; durations must be positive")
        if not value.years and not value.months and not value.tdelta:
            raise BadDuration(f"{text!r} is zero; durations must be positive")
        return value
    if value <= dt.timedelta(0):
        raise BadDuration(f"{text!r} is not positive; durations must be positive")
    return value


def add_duration(moment: dt.datetime, text: str) -> dt.datetime:
    result = moment + parse_duration(text)
    assert isinstance(result, dt.datetime)
    return result
