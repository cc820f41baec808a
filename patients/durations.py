"""ISO-8601 durations for observation windows (`P3D`, `PT48H`, `P1M`), standard library only.

The same forms the pathway language accepts: years and months are calendar-aware (one month
back from 31 March is 28 or 29 February), weeks, days, hours, minutes and seconds are fixed.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

from django.utils.translation import gettext as _

from patients.errors import InvalidRange

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


@dataclass(frozen=True)
class Window:
    """A positive duration: calendar months (years count 12) plus a fixed part."""

    months: int
    fixed: dt.timedelta

    def before(self, moment: dt.datetime) -> dt.datetime:
        """`moment` minus this duration."""
        return _minus_months(moment, self.months) - self.fixed


def parse_window(window: str | dt.timedelta) -> Window:
    """A Window from an ISO-8601 duration string or a timedelta; InvalidRange otherwise."""
    if isinstance(window, dt.timedelta):
        if window <= dt.timedelta(0):
            raise InvalidRange(_("window %(window)s is not positive") % {"window": window})
        return Window(0, window)
    match = _DURATION.match(window) if isinstance(window, str) else None
    if match is None:
        raise InvalidRange(
            _("%(window)s is not an ISO-8601 duration (e.g. P3D, PT48H, P1M)")
            % {"window": repr(window)}
        )
    parts = {name: value for name, value in match.groupdict().items() if value is not None}
    months = int(parts.get("years", 0)) * 12 + int(parts.get("months", 0))
    fixed = dt.timedelta(
        weeks=int(parts.get("weeks", 0)),
        days=int(parts.get("days", 0)),
        hours=int(parts.get("hours", 0)),
        minutes=int(parts.get("minutes", 0)),
        seconds=float(parts.get("seconds", 0)),
    )
    if months == 0 and fixed <= dt.timedelta(0):
        raise InvalidRange(
            _("%(window)s is zero; a window must be positive") % {"window": repr(window)}
        )
    return Window(months, fixed)


def _minus_months(moment: dt.datetime, months: int) -> dt.datetime:
    if months == 0:
        return moment
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)
