"""Alerts a user may see, in triage order, and the patients' risk ranks."""

from __future__ import annotations

from collections.abc import Collection

from django.db.models import Case, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce

from coordination import task_states
from coordination.errors import NotFound
from coordination.models import (
    BAND_RANK,
    RISK_RANK_NONE,
    RISK_SCORES,
    AlertRecord,
    CarePathway,
    RiskBand,
    risk_rank,
)
from core.sql import key_in_range
from core.users import User
from directory.models import CareTeamMember
from directory.selectors import PATIENT_ROLE, PLATFORM_ROLE, practitioner_of
from patients.models import Observation
from patients.selectors import (
    patient_visible,
    visible_patient_ids,
)
from workflows.models import PathwayInstance

# The inbox's order, on the annotations of `visible_alerts`: the patient's band then score,
# the alert's priority, its task's due time (NULLs last), then id.
ALERT_ORDER = ("patient_risk_rank", "alert_priority_rank", "task_due_at", "id")
# What the inbox holds (AlertRecord.pending in SQL): alerts nobody acknowledged, and those a
# worse repeat escalated since they were.
PENDING = Q(acknowledged_at__isnull=True) | Q(escalated_at__gt=F("acknowledged_at"))


def risk_rank_expression(prefix: str = "") -> Case:
    """coordination.models.risk_rank in SQL, on the pathway reached through `prefix`."""
    band = Case(
        *(When(**{f"{prefix}risk_band": b, "then": Value(r)}) for b, r in BAND_RANK.items()),
        default=Value(BAND_RANK[RiskBand.LOW]),
        output_field=IntegerField(),
    )
    top = RISK_SCORES - 1
    return Case(
        When(
            **{f"{prefix}risk_score__gte": top},
            then=band * Value(RISK_SCORES),
        ),
        default=band * Value(RISK_SCORES) + Value(top) - F(f"{prefix}risk_score"),
        output_field=IntegerField(),
    )


def patient_risk_rank_subquery(patient_ref: str = "patient_id") -> Coalesce:
    """The patient's current rank (the smallest over their active pathways) for the row's
    `patient_ref`, RISK_RANK_NONE when none is active."""
    ranks = (
        CarePathway.objects.filter(
            patient_id=OuterRef(patient_ref), instance__status=PathwayInstance.Status.ACTIVE
        )
        .annotate(rank=risk_rank_expression())
        .order_by("rank")
        .values("rank")[:1]
    )
    return Coalesce(Subquery(ranks), Value(RISK_RANK_NONE), output_field=IntegerField())


def patient_risk_rank(*, patient_id: int) -> int:
    """The patient's current triage rank: the highest band, then score, over their active
    pathways (coordination.models.risk_of_rank gives the band and score back)."""
    ranks = [
        risk_rank(band, score)
        for band, score in CarePathway.objects.filter(
            patient_id=patient_id, instance__status=PathwayInstance.Status.ACTIVE
        ).values_list("risk_band", "risk_score")
    ]
    return min(ranks, default=RISK_RANK_NONE)


def patient_alerts(user: User, *, patient_id: int) -> QuerySet[AlertRecord]:
    """One patient's alerts a practitioner may see, the latest first (the patient page's
    history; the inbox, across patients, is in triage order: `visible_alerts`)."""
    if practitioner_of(user) is None:
        return AlertRecord.objects.none()
    return AlertRecord.objects.filter(
        patient_id=patient_id, patient_id__in=visible_patient_ids(user)
    ).order_by("-last_seen_at", "-id")


def visible_alerts(user: User, *, include_acknowledged: bool = False) -> QuerySet[AlertRecord]:
    """Alerts raised on the pathways of the patients a practitioner may see, in triage
    order (ALERT_ORDER: the patient's band and score first); nothing for anyone else (a
    patient's portal does not list alerts). Only the pending ones (the inbox: PENDING)
    unless `include_acknowledged`. Each row carries `patient_risk_rank`,
    `alert_priority_rank` and `task_due_at`."""
    if practitioner_of(user) is None:
        return AlertRecord.objects.none()
    rows = AlertRecord.objects.filter(patient_id__in=visible_patient_ids(user))
    if not include_acknowledged:
        rows = rows.filter(PENDING)
    return (
        rows.select_related("patient", "task", "care_pathway__instance__definition")
        .defer(
            "care_pathway__instance__definition__source",
            "care_pathway__instance__definition__document",
        )
        .annotate(
            patient_risk_rank=patient_risk_rank_subquery(),
            alert_priority_rank=Case(
                *(When(priority=p, then=Value(r)) for p, r in task_states.PRIORITY_RANK.items()),
                default=Value(task_states.PRIORITY_RANK["routine"]),
                output_field=IntegerField(),
            ),
            task_due_at=F("task__due_at"),
        )
        .order_by(
            "patient_risk_rank",
            "alert_priority_rank",
            F("task_due_at").asc(nulls_last=True),
            "id",
        )
    )


def alert_observations(alerts: Collection[AlertRecord]) -> dict[int, Observation]:
    """The observations that raised `alerts` (rows of `visible_alerts`, so of patients the
    reader may see), by id, in one query."""
    wanted = {(a.observation_id, a.patient_id) for a in alerts if a.observation_id is not None}
    if not wanted:
        return {}
    rows = Observation.objects.filter(
        pk__in=sorted({o for o, _ in wanted}), patient_id__in=sorted({p for _, p in wanted})
    ).only("id", "patient_id", "code", "value", "unit", "effective_at")
    return {o.pk: o for o in rows if (o.pk, o.patient_id) in wanted}


def access_alert(*, user: User, alert_id: int) -> AlertRecord:
    """The alert, if `user` is a practitioner who may see its patient (the rule of
    `visible_alerts`); NotFound alike when it does not exist and when it is not theirs (the
    error names its patient for the audit trail only)."""
    alert = (
        AlertRecord.objects.select_related("patient").filter(pk=alert_id).first()
        if key_in_range(AlertRecord, alert_id)
        else None
    )
    if alert is None:
        raise NotFound("alert", alert_id)
    if practitioner_of(user) is None or not patient_visible(user, alert.patient_id):
        raise NotFound("alert", alert_id, patient_id=alert.patient_id, outcome="denied")
    return alert


def alert_patient_id(*, alert_id: int) -> int | None:
    """The patient of the alert, None if there is no such alert. Not permission-filtered: for
    recording a refused access under the patient it targeted."""
    if not key_in_range(AlertRecord, alert_id):
        return None
    return AlertRecord.objects.filter(pk=alert_id).values_list("patient_id", flat=True).first()


def care_team_patient_ids(user: User, patient_ids: Collection[int]) -> set[int]:
    """Those of `patient_ids` whose care team `user` is an active member of, in person or
    through a service team (directory.selectors.care_roles for many patients at once, one
    query): who may act on their alerts, beyond seeing them."""
    if not user.is_authenticated or not user.is_active or not patient_ids:
        return set()
    members = (
        CareTeamMember.objects.filter(care_team__patient_id__in=sorted(patient_ids), active=True)
        .filter(Q(practitioner__user__id=user.pk) | Q(service_team__group__user__id=user.pk))
        .exclude(role__in=(PATIENT_ROLE, PLATFORM_ROLE))
    )
    return set(members.values_list("care_team__patient_id", flat=True))
