"""Dates read the same way in both languages: day first, on a 24-hour clock. A French care
team that switches the pages to English must read 08/12/2026 as 8 December (Django's own
`en` formats are American: 12/08/2026 2:05 p.m.)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.template import Context, Template
from django.utils import timezone, translation

MOMENT = dt.datetime(2026, 12, 8, 14, 5, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("language", "short", "long"),
    [
        ("fr", "08/12/2026 15:05", "8 décembre 2026 15:05"),
        ("en", "08/12/2026 15:05", "8 Dec 2026, 15:05"),
    ],
)
def test_pages_write_dates_day_first_on_a_24_hour_clock(language: str, short: str, long: str):
    template = Template('{{ at|date:"SHORT_DATETIME_FORMAT" }}|{{ at|date:"DATETIME_FORMAT" }}')

    with translation.override(language), timezone.override("Europe/Paris"):
        rendered = template.render(Context({"at": MOMENT}))

    assert rendered == f"{short}|{long}"
