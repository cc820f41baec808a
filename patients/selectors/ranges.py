"""Checks shared by the selectors that read a time range."""

from __future__ import annotations

import datetime as dt

from patients.errors import InvalidRange


def require_aware(moment: dt.datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidRange(f"{name} must be timezone-aware")


def check_range(since: dt.datetime, until: dt.datetime, longest: dt.timedelta) -> None:
    """[since, until) must be bounded, non-empty and at most `longest` long."""
    require_aware(since, "since")
    require_aware(until, "until")
    if until <= since:
        raise InvalidRange(f"until ({until.isoformat()}) must be after since ({since.isoformat()})")
    if until - since > longest:
        raise InvalidRange(
            f"the range from {since.isoformat()} to {until.isoformat()} is longer than "
            f"{longest.days} days; ask for a shorter one"
        )
