"""Reads of observations, including the helpers alert conditions are evaluated with.

Each helper is one or two queries that walk the (patient, code, -effective_at) index and
read at most one row each (or one row per unit, for the extremes of `rise` and `fall`), however
long the series. The arithmetic is in pure functions (`trend_delta`, `trend_rise`,
`trend_fall`, `patients.news2.news2_from_values`) that a caller holding a series in memory
applies to it directly, with the same answers.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import reduce
from typing import Literal, TypeVar

from django.db.models import Count, Max, Min, Q, QuerySet, Subquery

from patients.durations import parse_window
from patients.measurements import MEASUREMENTS, to_canonical
from patients.models import Observation
from patients.news2 import NEWS2_CODES, News2Result, news2_from_values
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


def rise(patient_id: int, code: str, window: str | dt.timedelta, at: dt.datetime) -> Decimal | None:
    """How far `code` rose to its latest value within `window` ending at `at`: the latest
    value minus the lowest taken within [at - window, at] (the latest included), in the code's
    canonical unit; 0 when the latest is the lowest. None when fewer than two measurements
    fall in the window. Unlike `delta`, a gain that follows a dip counts in full."""
    extremes = _extremes(patient_id, code, window, at)
    return None if extremes is None else extremes.latest - extremes.lowest


def fall(patient_id: int, code: str, window: str | dt.timedelta, at: dt.datetime) -> Decimal | None:
    """How far `code` fell to its latest value within `window` ending at `at`: the highest
    value taken within [at - window, at] minus the latest, in the code's canonical unit.
    None when fewer than two measurements fall in the window."""
    extremes = _extremes(patient_id, code, window, at)
    return None if extremes is None else extremes.highest - extremes.latest


@dataclass(frozen=True)
class _Extremes:
    latest: Decimal
    lowest: Decimal
    highest: Decimal


def _extremes(
    patient_id: int, code: str, window: str | dt.timedelta, at: dt.datetime
) -> _Extremes | None:
    require_aware(at, "at")
    start = parse_window(window).before(at)
    in_window = _series(patient_id, code).filter(effective_at__gte=start, effective_at__lte=at)
    latest = in_window.order_by("-effective_at", "-pk").first()
    if latest is None:
        return None
    # One row per unit: the extremes are converted to the canonical unit here, exactly, as
    # `to_canonical` does for each value (a positive factor keeps the order).
    per_unit = (
        in_window.order_by()
        .values("unit")
        .annotate(readings=Count("pk"), lowest=Min("value"), highest=Max("value"))
    )
    rows = [
        (
            row["readings"],
            to_canonical(code, row["lowest"], row["unit"]),
            to_canonical(code, row["highest"], row["unit"]),
        )
        for row in per_unit
    ]
    if sum(readings for readings, _, _ in rows) < 2:
        return None
    return _Extremes(
        latest=_measured(latest).value,
        lowest=min(low for _, low, _ in rows),
        highest=max(high for _, _, high in rows),
    )


Value = TypeVar("Value", Decimal, float)


def trend_delta(values: Sequence[Value]) -> Value | None:
    """`delta` over a window's values, oldest first: the last minus the first."""
    return values[-1] - values[0] if len(values) >= 2 else None


def trend_rise(values: Sequence[Value]) -> Value | None:
    """`rise` over a window's values, oldest first: the last minus the lowest."""
    return values[-1] - min(values) if len(values) >= 2 else None


def trend_fall(values: Sequence[Value]) -> Value | None:
    """`fall` over a window's values, oldest first: the highest minus the last."""
    return max(values) - values[-1] if len(values) >= 2 else None


def news2_inputs(
    patient_id: int, at: dt.datetime, window: str | dt.timedelta
) -> dict[str, MeasuredValue]:
    """The latest measurement of each NEWS2 code (`patients.news2.NEWS2_CODES`) taken within
    [at - window, at], by code, in canonical units; codes without one are absent. One query:
    the rows whose id is one of seven scalar subqueries, each an index walk reading one row
    (a UNION ALL of sliced queries would do the same, but SQLite refuses LIMIT inside one)."""
    require_aware(at, "at")
    start = parse_window(window).before(at)
    base = Observation.objects.filter(
        patient_id=patient_id, effective_at__gte=start, effective_at__lte=at
    )
    latest_of_each = [
        Q(pk=Subquery(base.filter(code=code).order_by("-effective_at", "-pk").values("pk")[:1]))
        for code in NEWS2_CODES.values()
    ]
    rows = Observation.objects.filter(reduce(operator.or_, latest_of_each)).values_list(
        "pk", "code", "value", "unit", "effective_at"
    )
    return {
        code: MeasuredValue(
            observation_id=pk,
            value=to_canonical(code, value, unit),
            unit=MEASUREMENTS[code].canonical_unit,
            effective_at=effective_at,
        )
        for pk, code, value, unit, effective_at in rows
    }


def news2_at(
    patient_id: int,
    at: dt.datetime,
    window: str | dt.timedelta,
    *,
    spo2_scale: Literal[1, 2] = 1,
) -> News2Result:
    """NEWS2 on the latest value of each parameter within the window (`news2_inputs`): its
    `score` when every parameter is present, else None and `total` over those present."""
    inputs = news2_inputs(patient_id, at, window)
    return news2_from_values(
        {code: measured.value for code, measured in inputs.items()}, spo2_scale=spo2_scale
    )


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
