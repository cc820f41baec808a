"""Care pathways a user may see, and whether their remote monitoring runs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from django.db.models import OuterRef, Q, QuerySet, Subquery

from coordination.errors import NotFound
from coordination.models import (
    CarePathway,
)
from core.sql import (
    column,
    kept_cursor,
    key_in_range,
    statement,
    table,
)
from core.users import User
from patients.models import Consent
from patients.selectors import (
    consent_withdrawn_since,
    visible_patient_ids,
)
from workflows.models import PathwayInstance
from workflows.selectors import compiled_definition_by_id


def pathway_patient_id(*, pathway_id: int) -> int | None:
    """The patient of the care pathway, or None if there is no such pathway."""
    with kept_cursor() as cursor:
        cursor.execute(_pathway_patient_sql(), [pathway_id])
        row = cursor.fetchone()
    return None if row is None else int(row[0])


@statement
def _pathway_patient_sql() -> str:
    return (
        f"SELECT c.{column(CarePathway, 'patient')} FROM {table(CarePathway)} c "  # noqa: S608
        f"WHERE c.{column(CarePathway, 'pk')} = %s"
    )


def visible_care_pathways(user: User) -> QuerySet[CarePathway]:
    """Pathways of the patients the user may see; a patient sees their own."""
    if not user.is_authenticated or not user.is_active:
        return CarePathway.objects.none()
    return (
        CarePathway.objects.filter(
            Q(patient_id__in=visible_patient_ids(user)) | Q(patient__user_id=user.pk)
        )
        .select_related("instance__definition", "patient")
        .defer("instance__definition__source", "instance__definition__document")
        .annotate(monitoring_withdrawn_at=_monitoring_withdrawn_at())
    )


def _monitoring_withdrawn_at() -> Subquery:
    """The `withdrawn_at` of the patient's latest remote_monitoring consent: set exactly when
    that latest word is a withdrawal (patients.selectors.consent_withdrawn_since, in SQL, so
    that a page of pathways costs no query more)."""
    latest = Consent.objects.filter(
        patient_id=OuterRef("patient_id"), scope=Consent.Scope.REMOTE_MONITORING
    ).order_by("-recorded_at", "-pk")
    return Subquery(latest.values("withdrawn_at")[:1])


@dataclass(frozen=True)
class PathwayMonitoring:
    """Whether the pathway's remote monitoring runs. `suspended` (reason `consent_withdrawn`,
    `since` the withdrawal) while the patient withdraws `remote_monitoring`: their remote
    readings are refused and no measurement is expected of them."""

    status: Literal["active", "suspended"]
    reason: Literal["consent_withdrawn"] | None = None
    since: dt.datetime | None = None


_UNSET = object()


def pathway_monitoring(pathway: CarePathway) -> PathwayMonitoring | None:
    """The monitoring of a pathway that watches measurements (alerts or expected ones) and
    has not ended; None for any other. Reads the annotation of `visible_care_pathways` when
    the row has it, else one query."""
    instance = pathway.instance
    if instance is None or instance.status not in (
        PathwayInstance.Status.ACTIVE,
        PathwayInstance.Status.SUSPENDED,
    ):
        return None
    definition = compiled_definition_by_id(instance.definition_id, instance.definition.checksum)
    if not definition.raises_alerts:
        return None
    since = getattr(pathway, "monitoring_withdrawn_at", _UNSET)
    if since is _UNSET:
        since = consent_withdrawn_since(
            patient_id=pathway.patient_id, scope=Consent.Scope.REMOTE_MONITORING
        )
    if since is None:
        return PathwayMonitoring("active")
    assert isinstance(since, dt.datetime)
    return PathwayMonitoring("suspended", "consent_withdrawn", since)


def access_care_pathway(*, user: User, pathway_id: int) -> CarePathway:
    """The care pathway, if `user` may see it (the rule of `visible_care_pathways`);
    NotFound alike when it does not exist and when it is not theirs (the error names its
    patient for the audit trail only)."""
    pathway = visible_care_pathways(user).filter(pk=pathway_id).first()
    if pathway is None:
        patient_id = (
            pathway_patient_id(pathway_id=pathway_id)
            if key_in_range(CarePathway, pathway_id)
            else None
        )
        if patient_id is None:
            raise NotFound("care pathway", pathway_id)
        raise NotFound("care pathway", pathway_id, patient_id=patient_id, outcome="denied")
    return pathway


def running_care_pathways(*, patient_id: int, key: str) -> list[CarePathway]:
    """The patient's care pathways of definition `key` (any version) that have not ended
    (their instance active or suspended), oldest first, with their instance and definition.
    Not permission-filtered: for services checking a rule."""
    return list(
        CarePathway.objects.filter(
            patient_id=patient_id,
            instance__definition__key=key,
            instance__status__in=(PathwayInstance.Status.ACTIVE, PathwayInstance.Status.SUSPENDED),
        )
        .select_related("instance__definition")
        .defer("instance__definition__source")
        .order_by("pk")
    )


# The engine instance of a care pathway names it as its subject.
SUBJECT_PREFIX = "care-pathway:"


def subject_of(pathway: CarePathway) -> str:
    return f"{SUBJECT_PREFIX}{pathway.pk}"


def pathway_id_from_subject(subject: str) -> int | None:
    if not subject.startswith(SUBJECT_PREFIX):
        return None
    return int(subject.removeprefix(SUBJECT_PREFIX))
