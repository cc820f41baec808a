"""The triage board: a practitioner's patients on an active pathway, the most pressing first
(the patient's band, then score), each with the latest readings of what their pathways
watch and their pending alerts.

A fixed number of queries whatever the number of rows: the patients, their pathways, their
readings and their alerts are each read once for the page.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from django.db.models import (
    Case,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
    Window,
)
from django.db.models.functions import RowNumber
from django.utils import timezone

from coordination import task_states
from coordination.models import AlertRecord, CarePathway
from coordination.selectors.alerts import (
    PENDING,
    patient_risk_rank_subquery,
    risk_rank_expression,
)
from coordination.selectors.pathways import care_pathways_of
from core.users import User
from directory.selectors import practitioner_of
from patients.models import Observation, Patient
from patients.selectors import visible_patient_ids
from workflows.definition.compiled import CompiledDefinition
from workflows.models import PathwayInstance
from workflows.selectors import compiled_definition_by_id

TRIAGE_LIMIT = 50  # patients on one page: the most pressing first
TREND_DAYS = 30  # how far back a trend line reaches
TREND_POINTS = 14  # readings drawn per trend line at most
TREND_CODES = 4  # trend lines per patient at most

_ACTIVE = (PathwayInstance.Status.ACTIVE, PathwayInstance.Status.SUSPENDED)


def monitored_codes(definition: CompiledDefinition) -> tuple[str, ...]:
    """The measurements a pathway watches, most telling first: those it declares under
    `monitoring.measurements`, then those its alerts read, then those it expects."""
    codes: list[str] = list(definition.monitoring.measurements)
    for alert in definition.every_alert:
        codes.extend(sorted(alert.only_codes if alert.only_codes is not None else alert.codes))
    codes.extend(e.code for e in definition.every_expectation)
    return tuple(dict.fromkeys(codes))


def alert_roles(definition: CompiledDefinition) -> frozenset[str]:
    """The care-team roles a pathway's monitoring calls on: those its alerts and expected
    measurements open tasks for, and those an overdue alert task goes to."""
    alerts, expects = definition.every_alert, definition.every_expectation
    roles = {a.role for a in alerts} | {a.escalate_to for a in alerts} | {e.role for e in expects}
    return frozenset(r for r in roles if r)


def monitors_patients(user: User) -> bool:
    """Whether the practitioner plays, in the care team of a patient on an active pathway
    (in person or through a service team), a role that the pathway's monitoring calls on:
    the triage board is then their first screen (a home nurse who gets the alerts), the
    worklist otherwise (a GP who only reviews)."""
    if practitioner_of(user) is None:
        return False
    roles = (
        CarePathway.objects.filter(
            patient_id__in=visible_patient_ids(user), instance__status__in=_ACTIVE
        )
        .filter(
            Q(care_team__members__practitioner__user__id=user.pk)
            | Q(care_team__members__service_team__group__user__id=user.pk),
            care_team__members__active=True,
        )
        .values_list(
            "instance__definition_id", "instance__definition__checksum", "care_team__members__role"
        )
        .distinct()
    )
    return any(
        role in alert_roles(compiled_definition_by_id(pk, checksum)) for pk, checksum, role in roles
    )


@dataclass
class TriageRow:
    """One patient of the board."""

    patient: Patient
    rank: int  # coordination.models.risk_rank: smaller is more pressing
    pathways: list[CarePathway] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)  # what their pathways watch, in order
    # code -> the latest readings (newest first) of the code's latest unit
    readings: dict[str, list[Reading]] = field(default_factory=dict)
    alerts: list[AlertRecord] = field(default_factory=list)  # pending, most pressing first


@dataclass
class TriageBoard:
    rows: list[TriageRow]
    more: bool  # more patients than the page shows


def _patients(user: User, limit: int) -> list[Patient]:
    running = CarePathway.objects.filter(patient_id=OuterRef("pk"), instance__status__in=_ACTIVE)
    ranked: QuerySet[Patient] = (
        Patient.objects.filter(pk__in=visible_patient_ids(user))
        .filter(Exists(running))
        .annotate(triage_rank=patient_risk_rank_subquery("pk"))
        .order_by("triage_rank", "family_name", "given_names", "pk")
    )
    return list(ranked[: limit + 1])


class Reading(NamedTuple):
    """One reading of a trend line (a row, not a model: a board reads a thousand of them)."""

    pk: int
    value: Decimal
    unit: str
    effective_at: dt.datetime


def _readings(
    patient_ids: Collection[int], codes: Collection[str], since: dt.datetime
) -> dict[tuple[int, str], list[Reading]]:
    """The latest TREND_POINTS readings since `since` of each (patient, code), newest first."""
    if not patient_ids or not codes:
        return {}
    numbered = (
        Observation.objects.filter(
            patient_id__in=patient_ids, code__in=codes, effective_at__gte=since
        )
        .annotate(
            position=Window(
                RowNumber(),
                partition_by=[F("patient_id"), F("code")],
                order_by=[F("effective_at").desc(), F("id").desc()],
            )
        )
        .filter(position__lte=TREND_POINTS)
        .order_by("patient_id", "code", "-effective_at", "-id")
        .values_list("patient_id", "code", "id", "value", "unit", "effective_at")
    )
    found: dict[tuple[int, str], list[Reading]] = defaultdict(list)
    for patient_id, code, pk, value, unit, effective_at in numbered:
        found[(patient_id, code)].append(Reading(pk, value, unit, effective_at))
    return found


def _same_unit(readings: Iterable[Reading]) -> list[Reading]:
    """The readings in the unit of the newest one (a line mixing mg/dL and mmol/L would
    mean nothing)."""
    readings = list(readings)
    if not readings:
        return []
    unit = readings[0].unit
    return [r for r in readings if r.unit == unit]


def triage_board(
    user: User, *, limit: int = TRIAGE_LIMIT, now: dt.datetime | None = None
) -> TriageBoard:
    """The board of a practitioner (nothing for anyone else): the patients they may see who
    follow an active (or suspended) pathway, the most pressing first, at most `limit`."""
    if practitioner_of(user) is None:
        return TriageBoard(rows=[], more=False)
    now = now or timezone.now()
    patients = _patients(user, limit)
    more = len(patients) > limit
    rows = {
        p.pk: TriageRow(patient=p, rank=p.triage_rank)  # type: ignore[attr-defined]
        for p in patients[:limit]
    }
    if not rows:
        return TriageBoard(rows=[], more=False)
    pathways = list(
        care_pathways_of(list(rows))  # the patients just read as visible to the user
        .filter(instance__status__in=_ACTIVE)
        .annotate(pathway_rank=risk_rank_expression())
        .order_by("patient_id", "pathway_rank", "created_at", "pk")
    )
    wanted: set[str] = set()
    for pathway in pathways:
        row = rows[pathway.patient_id]
        row.pathways.append(pathway)
        instance = pathway.instance
        assert instance is not None
        definition = compiled_definition_by_id(instance.definition_id, instance.definition.checksum)
        for code in monitored_codes(definition):
            if code not in row.codes and len(row.codes) < TREND_CODES:
                row.codes.append(code)
                wanted.add(code)
    readings = _readings(rows.keys(), wanted, now - dt.timedelta(days=TREND_DAYS))
    for row in rows.values():
        for code in row.codes:
            row.readings[code] = _same_unit(readings.get((row.patient.pk, code), ()))
    alerts = (
        AlertRecord.objects.filter(PENDING, patient_id__in=list(rows))
        .select_related("task", "care_pathway__instance__definition")
        .defer(
            "care_pathway__instance__definition__source",
            "care_pathway__instance__definition__document",
        )
        .annotate(
            alert_priority_rank=Case(
                *(When(priority=p, then=Value(r)) for p, r in task_states.PRIORITY_RANK.items()),
                default=Value(task_states.PRIORITY_RANK["routine"]),
                output_field=IntegerField(),
            )
        )
        .order_by("patient_id", "-score", "alert_priority_rank", "-last_seen_at", "-id")
    )
    for alert in alerts:
        rows[alert.patient_id].alerts.append(alert)
    return TriageBoard(rows=list(rows.values()), more=more)
