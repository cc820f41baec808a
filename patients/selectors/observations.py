"""Reads of observations, including the helpers alert conditions are evaluated with.

Each helper is one or two queries that walk the (patient, code, -effective_at) index and
read at most one row each, however long the series.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet

from patients.durations import parse_window
from patients.measurements import MEASUREMENTS, to_canonical
from patients.models import Observation
from patients.selectors.ranges import check_range, require_aware

MAX_LIST_RANGE = dt.timedelta(days=366)


@dataclass(frozen=True)
class MeasuredValue:
    """A measurement expressed in its code's canonical unit (kg, mg/dL, ...)."""

    observation_id: int
    value: Decimal
    unit: str
    effective_at: dt.datetime


def _series(patient_id: int, code: str) -> QuerySet[Observation]:
    return Observation.objects.filter(patient_id=patient_id, code=code).only(
        "id", "code", "value", "unit", "effective_at"
    )


def _measured(observation: Observation) -> MeasuredValue:
    return MeasuredValue(
        observation_id=observation.pk,
        value=to_canonical(observation.code, observation.value, observation.unit),
        unit=MEASUREMENTS[observation.code].canonical_unit,
        effective_at=observation.effective_at,
    )


def last_value(
    patient_id: int, code: str, before: dt.datetime, *, inclusive: bool = True
) -> MeasuredValue | None:
    """The latest measurement of `code` taken at or before `before` (strictly before when
    `inclusive` is false), in the code's canonical unit; None if there is none."""
    require_aware(before, "before")
    bound = {"effective_at__lte" if inclusive else "effective_at__lt": before}
    latest = _series(patient_id, code).filter(**bound).order_by("-effective_at", "-pk").first()
    return _measured(latest) if latest is not None else None


def delta(
    patient_id: int, code: str, window: str | dt.timedelta, at: dt.datetime
) -> Decimal | None:
    """How much `code` changed over `window` (an ISO-8601 duration such as "P3D") ending at
    `at`: the latest value minus the earliest value taken within [at - window, at], in the
    code's canonical unit. None when fewer than two measurements fall in the window."""
    require_aware(at, "at")
    start = parse_window(window).before(at)
    in_window = _series(patient_id, code).filter(effective_at__gte=start, effective_at__lte=at)
    latest = in_window.order_by("-effective_at", "-pk").first()
    if latest is None:
        return None
    earliest = in_window.order_by("effective_at", "pk").first()
    if earliest is None or earliest.pk == latest.pk:
        return None
    return _measured(latest).value - _measured(earliest).value


def observation_list(
    *, patient_id: int, since: dt.datetime, until: dt.datetime, code: str | None = None
) -> QuerySet[Observation]:
    """The patient's observations taken in [since, until), at most 366 days, oldest first.
    The caller has checked the reader may see the patient (`access_patient`)."""
    check_range(since, until, MAX_LIST_RANGE)
    qs = Observation.objects.filter(
        patient_id=patient_id, effective_at__gte=since, effective_at__lt=until
    )
    if code is not None:
        qs = qs.filter(code=code)
    return qs.order_by("effective_at", "pk")
