"""Dates and numbers on the English pages: British day-month order and a 24-hour clock.

The care teams are French; one who switches the pages to English must read 08/12/2026 as
8 December, as the French pages write it, not 12 August (Django's `en` formats are the
American ones). Everything else is Django's `en_GB`."""

from django.conf.locale.en_GB.formats import *  # type: ignore[import-untyped]  # noqa: F403

TIME_FORMAT = "H:i"
DATETIME_FORMAT = "j M Y, H:i"
SHORT_DATETIME_FORMAT = "d/m/Y H:i"
