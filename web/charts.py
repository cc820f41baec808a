"""The patient's measurements as the patient page (charts and tables) and the portal (tables)
show them: one series per measurement and unit, each reading flagged when it is abnormal for
the patient, and the alert lines of each chart named in the reader's language. What is
abnormal and which lines a chart has is coordination.readings' rule; this module only says
it. web/static/web/charts.js draws `chart_data`."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.utils import formats
from django.utils.translation import gettext

from coordination.readings import Line, PatientThresholds
from patients.measurements import measurement_label, unit_label
from patients.models import Patient
from patients.selectors import observation_list
from workflows.definition import localized

CHART_DAYS = 90
EARLIER_ABNORMAL = 10  # abnormal readings listed under a measurement's latest ones


def chart_lines(lines: list[Line], language: str) -> list[dict[str, Any]]:
    """The threshold lines of one chart as its legend says them: the alert's title in the
    reader's language and the level with its unit ("SpO2 sous le seuil : 90 %"); `level`
    alone is written on the line."""
    shown = []
    for line in lines:
        unit = unit_label(line.unit)
        level = f"{plain_number(line.value)} {unit}" if unit else plain_number(line.value)
        shown.append(
            {
                "value": line.value,
                "op": line.op,
                "alert": line.alert,
                "level": level,
                "label": gettext("%(alert)s: %(level)s")
                % {"alert": localized(line.title, language) or line.alert, "level": level},
            }
        )
    return shown


def plain_number(value: float | Decimal) -> str:
    """`value` as the reader writes numbers (0,54 in French), without trailing zeros."""
    number = Decimal(str(value))
    if number == number.to_integral_value():
        number = number.quantize(Decimal(1))
    else:
        number = number.normalize()
    return formats.number_format(number, use_l10n=True)


def measurement_series(
    patient: Patient, now: dt.datetime, thresholds: PatientThresholds, *, latest: int
) -> list[dict[str, Any]]:
    """The patient's readings of the last CHART_DAYS days, one series per code and unit
    (glucose in g/L and in mg/dL are two series), each reading flagged when it is abnormal
    for the patient (`PatientThresholds.abnormal`); for the tables, the `latest` readings
    and the abnormal ones before them (the most recent first, at most EARLIER_ABNORMAL).
    The caller has checked access."""
    series: dict[tuple[str, str], dict[str, Any]] = {}
    since = now - dt.timedelta(days=CHART_DAYS)
    for obs in observation_list(patient_id=patient.pk, since=since, until=now):
        entry = series.get((obs.code, obs.unit))
        if entry is None:
            label, unit = measurement_label(obs.code), unit_label(obs.unit)
            entry = series[(obs.code, obs.unit)] = {
                "key": f"chart-{len(series) + 1}",
                "code": obs.code,
                "unit": obs.unit,
                "unit_label": unit,
                "label": label,
                "title": f"{label} ({unit})" if unit else label,
                "points": [],
            }
        abnormal = thresholds.abnormal(
            observation_id=obs.pk, code=obs.code, value=obs.value, unit=obs.unit
        )
        entry["points"].append({"at": obs.effective_at, "value": obs.value, "abnormal": abnormal})
    for entry in series.values():
        points = entry["points"]
        entry["latest"] = points[-latest:]
        entry["abnormal_count"] = sum(p["abnormal"] for p in points)
        earlier = [p for p in points[: max(len(points) - latest, 0)] if p["abnormal"]]
        entry["earlier_abnormal"] = earlier[::-1][:EARLIER_ABNORMAL]
    return sorted(series.values(), key=lambda s: (s["label"], s["unit"]))


def chart_data(
    series: list[dict[str, Any]], thresholds: PatientThresholds, language: str
) -> list[dict[str, Any]]:
    """What web/static/web/charts.js draws: each series with the lines of its chart."""
    return [
        {
            "key": s["key"],
            "code": s["code"],
            "unit": s["unit"],
            "unit_label": s["unit_label"],
            "label": s["label"],
            "title": s["title"],
            "x": [p["at"].timestamp() for p in s["points"]],
            "y": [float(p["value"]) for p in s["points"]],
            "abnormal": [p["abnormal"] for p in s["points"]],
            "thresholds": chart_lines(thresholds.chart_lines(s["code"], s["unit"]), language),
        }
        for s in series
    ]


def chart_texts() -> dict[str, str]:
    """The words charts.js writes, in the reader's language."""
    return {
        "date": gettext("Date"),
        "abnormal": gettext("Abnormal value"),
        "no_data": gettext("No measurement in the last 90 days."),
    }
