"""Checks shared by the selectors that read a time range."""

from __future__ import annotations

import datetime as dt

from django.utils.translation import gettext as _

from patients.errors import InvalidRange


def require_aware(moment: dt.datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidRange(_("%(name)s must be timezone-aware") % {"name": name})


def check_range(since: dt.datetime, until: dt.datetime, longest: dt.timedelta) -> None:
    """[since, until) must be bounded, non-empty and at most `longest` long."""
    require_aware(since, "since")
    require_aware(until, "until")
    if until <= since:
        raise InvalidRange(
            _("until (%(until)s) must be after since (%(since)s)")
            % {"until": until.isoformat(), "since": since.isoformat()}
        )
    if until - since > longest:
        raise InvalidRange(
            _(
                "the range from %(since)s to %(until)s is longer than %(days)d days; "
                "ask for a shorter one"
            )
            % {"since": since.isoformat(), "until": until.isoformat(), "days": longest.days}
        )
