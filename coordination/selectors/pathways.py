"""Care pathways a user may see."""

from __future__ import annotations

from django.db.models import Q, QuerySet

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
from patients.selectors import (
    visible_patient_ids,
)
from workflows.models import PathwayInstance


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
    )


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


def running_care_pathway(*, patient_id: int, key: str) -> CarePathway | None:
    """The patient's oldest care pathway of definition `key` (any version) that has not ended
    (its instance active or suspended), with its instance and definition; None if there is
    none. Not permission-filtered: for services checking a rule."""
    return (
        CarePathway.objects.filter(
            patient_id=patient_id,
            instance__definition__key=key,
            instance__status__in=(PathwayInstance.Status.ACTIVE, PathwayInstance.Status.SUSPENDED),
        )
        .select_related("instance__definition")
        .defer("instance__definition__source", "instance__definition__document")
        .order_by("pk")
        .first()
    )


# The engine instance of a care pathway names it as its subject.
SUBJECT_PREFIX = "care-pathway:"


def subject_of(pathway: CarePathway) -> str:
    return f"{SUBJECT_PREFIX}{pathway.pk}"


def pathway_id_from_subject(subject: str) -> int | None:
    if not subject.startswith(SUBJECT_PREFIX):
        return None
    return int(subject.removeprefix(SUBJECT_PREFIX))
