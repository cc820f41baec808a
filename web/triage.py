"""The triage board: a nurse's first screen when she monitors patients. Her patients, the
most pressing first (band, then score), each with the trend of what their pathways watch,
their pending alert and one click to its task; the board re-fetches itself on every live
event about one of its patients.

Reads go through coordination.selectors.triage (permission-filtered) and are audited: one
record per patient shown."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timezone import localtime
from django.utils.translation import get_language, gettext
from django.views.decorators.http import require_GET

from coordination.models import AlertRecord
from coordination.readings import PatientThresholds, thresholds_by_patient
from coordination.selectors.triage import TREND_DAYS, Reading, TriageRow, triage_board
from patients.measurements import measurement_label, unit_label
from web.access import practitioner_required
from web.alerts import alert_title, definition_of
from web.audit import audit_rows_read
from web.care import risk_display
from workflows.definition import localized
from workflows.selectors import compiled_definition_by_id

# The trend line's box, in SVG user units (the CSS sizes it).
SPARK_WIDTH = 120
SPARK_HEIGHT = 32
SPARK_PAD = 3


def sparkline(readings: list[Reading]) -> dict[str, Any] | None:
    """A trend line of `readings` (newest first) as SVG coordinates, oldest on the left:
    `points` for a polyline and `last` for the dot on the newest value. None for fewer than
    two readings (one value is shown as a number only)."""
    if len(readings) < 2:
        return None
    ordered = list(reversed(readings))
    values = [float(r.value) for r in ordered]
    low, high = min(values), max(values)
    span = high - low or 1.0
    step = (SPARK_WIDTH - 2 * SPARK_PAD) / (len(values) - 1)
    height = SPARK_HEIGHT - 2 * SPARK_PAD
    flat = high == low
    points = []
    for i, value in enumerate(values):
        x = SPARK_PAD + i * step
        y = SPARK_PAD + (height / 2 if flat else height * (high - value) / span)
        points.append((round(x, 1), round(y, 1)))
    return {
        "points": " ".join(f"{x},{y}" for x, y in points),
        "last": points[-1],
        "width": SPARK_WIDTH,
        "height": SPARK_HEIGHT,
    }


def _value(value: Decimal) -> str:
    return number_format(value.normalize(), use_l10n=True)


def _trend(code: str, readings: list[Reading], thresholds: PatientThresholds) -> SafeString:
    """One measurement of a row, as the list item the board shows: its name, its trend line
    (with a text alternative), the newest value and its time, flagged when abnormal. Built
    here with format_html rather than by the template: a board holds some 150 of them, and
    this is several times cheaper than the same markup through template tags."""
    label = measurement_label(code)
    if not readings:
        return format_html(
            '<li class="trend" data-code="{}"><span class="trend-label">{}</span> '
            '<span class="muted">{}</span></li>',
            code,
            label,
            gettext("no reading in 30 days"),
        )
    newest, oldest = readings[0], readings[-1]
    abnormal = thresholds.abnormal(
        observation_id=newest.pk, code=code, value=newest.value, unit=newest.unit
    )
    line = sparkline(readings)
    picture = ""
    if line is not None:
        # What the picture says, for those who do not see it.
        description = gettext(
            "%(label)s: %(count)s readings from %(low)s to %(high)s %(unit)s since %(since)s"
        ) % {
            "label": label,
            "count": len(readings),
            "low": _value(min(r.value for r in readings)),
            "high": _value(max(r.value for r in readings)),
            "unit": unit_label(newest.unit),
            "since": date_format(localtime(oldest.effective_at), "SHORT_DATE_FORMAT"),
        }
        picture = format_html(
            '<svg class="sparkline" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
            'aria-label="{d}"><polyline points="{p}" fill="none" stroke="currentColor" '
            'stroke-width="1.5"/><circle cx="{x}" cy="{y}" r="2.5" fill="currentColor"/></svg>',
            w=line["width"],
            h=line["height"],
            d=description,
            p=line["points"],
            x=line["last"][0],
            y=line["last"][1],
        )
    flag = (
        format_html(
            ' <span class="flag" aria-hidden="true">⚠</span><span class="visually-hidden">{}'
            "</span>",
            gettext("abnormal value"),
        )
        if abnormal
        else ""
    )
    at = localtime(newest.effective_at)
    return format_html(
        '<li class="trend{}" data-code="{}"><span class="trend-label">{}</span> {} '
        '<span class="trend-value"><strong>{}&nbsp;{}</strong>{} · <time datetime="{}">{}'
        "</time></span></li>",
        " abnormal" if abnormal else "",
        code,
        label,
        picture,
        _value(newest.value),
        unit_label(newest.unit),
        flag,
        at.isoformat(),
        date_format(at, "SHORT_DATETIME_FORMAT"),
    )


def _alert(alert: AlertRecord, language: str) -> dict[str, Any]:
    return {"alert": alert, "title": alert_title(alert, definition_of(alert), language)}


def _pathway(row: TriageRow, language: str) -> list[dict[str, Any]]:
    shown = []
    for pathway in row.pathways:
        instance = pathway.instance
        assert instance is not None
        definition = compiled_definition_by_id(instance.definition_id, instance.definition.checksum)
        state = definition.states.get(instance.state)
        shown.append(
            {
                "pathway": pathway,
                "title": localized(definition.title, language) or definition.key,
                "state": (localized(state.title, language) if state else "") or instance.state,
                "suspended": instance.status == instance.Status.SUSPENDED
                or getattr(pathway, "monitoring_withdrawn_at", None) is not None,
            }
        )
    return shown


def board_rows(rows: list[TriageRow], language: str, now: dt.datetime) -> list[dict[str, Any]]:
    # What flags a reading abnormal, by the rule of the patient page and the portal: the
    # thresholds of all the board's pathways, read at once.
    thresholds = thresholds_by_patient(
        (p for row in rows for p in row.pathways), since=now - dt.timedelta(days=TREND_DAYS)
    )
    shown = []
    for row in rows:
        patient_thresholds = thresholds.get(row.patient.pk, PatientThresholds())
        alerts = [_alert(a, language) for a in row.alerts]
        shown.append(
            {
                "patient": row.patient,
                "risk": risk_display(row.rank),
                "pathways": _pathway(row, language),
                "trends": [
                    _trend(c, row.readings.get(c, []), patient_thresholds) for c in row.codes
                ],
                "alert": alerts[0] if alerts else None,
                "other_alerts": len(alerts) - 1 if alerts else 0,
            }
        )
    return shown


@practitioner_required
@require_GET
def triage(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    board = triage_board(request.user, now=now)
    audit_rows_read(
        request,
        resource_type="Patient",
        rows=[(r.patient.pk, r.patient.pk) for r in board.rows],
        detail={"view": "triage"},
    )
    context = {"rows": board_rows(board.rows, get_language() or "fr", now), "more": board.more}
    return render(request, "web/triage.html", context)
