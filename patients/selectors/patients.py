"""Reads of patients, filtered by the reader's object permissions, and of their consents and
devices.

Who sees a patient: a user holding the object permission on it (directly, or through one of
their groups: django-guardian's direct foreign-key tables), the patient's own portal
account, and, read-only, a practitioner holding an unexpired break-the-glass grant on it.
Global (model-level) permissions do not count and superusers get no free pass: seeing a
record always rests on a grant, or on the audited break-the-glass service. Inactive and
anonymous users see nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any, Literal, cast

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, AnonymousUser, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import Model, QuerySet, Subquery
from django.utils import timezone

from core.sql import column, kept_cursor, key_in_range, statement, table
from core.users import User
from patients.errors import PatientNotFound
from patients.models import (
    BreakGlassGrant,
    Consent,
    Device,
    Patient,
    PatientGroupObjectPermission,
    PatientUserObjectPermission,
)

PatientPermission = Literal["view_patient", "change_patient"]


def visible_patients(
    user: User, perm: PatientPermission = "view_patient", *, now: dt.datetime | None = None
) -> QuerySet[Patient]:
    """The patients `user` holds `perm` on, ordered by name; one query when evaluated.

    A patient account always sees its own record (`view_patient`), and nothing else unless
    granted. An unexpired break-the-glass grant (at `now`, default the present) counts for
    `view_patient` only: it never lets anyone change anything.
    """
    if not user.is_authenticated or not user.is_active:
        return Patient.objects.none()
    return Patient.objects.filter(pk__in=visible_patient_ids(user, perm, now=now)).order_by(
        "family_name", "given_names", "pk"
    )


def visible_patient_ids(
    user: User,
    perm: PatientPermission = "view_patient",
    *,
    now: dt.datetime | None = None,
    patient_id: int | None = None,
) -> QuerySet[Any, Any]:
    """The ids of the patients `user` holds `perm` on (the rule of `visible_patients`), as a
    subquery for `patient_id__in=`; with `patient_id`, only that one if visible.

    Straight on guardian's direct foreign-key tables (guardian's get_objects_for_user costs
    several queries and a lot of Python per call, and this runs on every request), written
    as a UNION ALL of the grant sources, each read through its own index: the user's
    grants, their groups' grants, their own record, their unexpired break-the-glass grants.
    Inactive and anonymous users see nothing."""
    if not user.is_authenticated or not user.is_active:
        return Patient.objects.none().values_list("pk", flat=True)
    user_id = cast("int", user.pk)
    groups = get_user_model().groups.through.objects.filter(user_id=user_id).values("group_id")
    # (rows, the column holding the patient id)
    sources: list[tuple[QuerySet[Any, Any], str]] = [
        (_granted(PatientUserObjectPermission, perm).filter(user_id=user_id), "content_object_id"),
        (
            _granted(PatientGroupObjectPermission, perm).filter(group_id__in=groups),
            "content_object_id",
        ),
    ]
    if perm == "view_patient":
        sources.append((Patient.objects.filter(user_id=user_id), "pk"))
        sources.append((_active_grants(now).filter(user_id=user_id), "patient_id"))
    ids = [
        (rows if patient_id is None else rows.filter(**{column: patient_id})).values_list(
            column, flat=True
        )
        for rows, column in sources
    ]
    first, *rest = ids
    return first.union(*rest, all=True)


def _granted(
    table: type[PatientUserObjectPermission] | type[PatientGroupObjectPermission],
    perm: PatientPermission,
) -> QuerySet[Any, Any]:
    """The grants of `perm` in `table`; the permission is found by a scalar subquery that
    the database evaluates once per statement, so the grants' (who, permission, patient)
    index is used with all its columns."""
    permission = Subquery(
        Permission.objects.filter(
            codename=perm, content_type__app_label=Patient._meta.app_label
        ).values("pk")[:1]
    )
    return table.objects.filter(permission_id=permission)


def patient_visible(user: User, patient_id: int, perm: PatientPermission = "view_patient") -> bool:
    """Whether `user` holds `perm` on the patient (the rule of `visible_patient_ids`): one
    statement of EXISTS probes, each through a unique index.

    Written in SQL rather than as the union of `visible_patient_ids`: every task action
    and every patient read asks this once, and building that union with the ORM costs
    several times the query itself. tests/patients/test_access.py holds both to the
    same answers."""
    if not user.is_authenticated or not user.is_active:
        return False
    condition, params = patient_visible_condition(user, "%s", perm, patient_id=patient_id)
    with kept_cursor() as cursor:
        cursor.execute(f"SELECT CASE WHEN {condition} THEN 1 ELSE 0 END", params)
        row = cursor.fetchone()
    return bool(row and row[0])


def patient_visible_condition(
    user: User, patient: str, perm: PatientPermission = "view_patient", *, patient_id: Any = None
) -> tuple[str, list[Any]]:
    """The rule of `patient_visible` as an SQL condition and its parameters, for a statement
    that reads something else about the patient at the same time. `patient` is the SQL of
    the patient's id: a column of the enclosing statement (then `patient_id` is None), or
    "%s" with the id as `patient_id`. The user must be authenticated and active (the caller
    answers the others itself: they see nothing)."""
    if not user.is_authenticated or not user.is_active:
        raise ValueError("an anonymous or inactive user sees nothing: answer before asking")
    own_and_emergency = perm == "view_patient"
    ids = [] if patient_id is None else [patient_id]
    app = Patient._meta.app_label
    params: list[Any] = [user.pk, perm, app, *ids, user.pk, perm, app, *ids]
    if own_and_emergency:
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        params += [*ids, user.pk, user.pk, *ids, now, now]
    return _visible_condition(patient, with_own_and_emergency=own_and_emergency), params


@statement
def _visible_condition(patient: str, *, with_own_and_emergency: bool) -> str:
    """The condition of `patient_visible_condition`. Only table names, from the models'
    metadata, and the caller's SQL of the patient id are put into the text; every value is
    a parameter."""
    grant, group_grant = PatientUserObjectPermission, PatientGroupObjectPermission
    membership = get_user_model().groups.through

    def col(model: type[Model], name: str) -> str:
        return column(model, name)

    permission = (
        f"(SELECT p.{col(Permission, 'pk')} FROM {table(Permission)} p JOIN "  # noqa: S608
        f"{table(ContentType)} c "
        f"ON c.{col(ContentType, 'pk')} = p.{col(Permission, 'content_type')} "
        f"WHERE p.{col(Permission, 'codename')} = %s AND c.{col(ContentType, 'app_label')} = %s)"
    )
    probes = [
        f"EXISTS (SELECT 1 FROM {table(grant)} WHERE {col(grant, 'user')} = %s "  # noqa: S608
        f"AND {col(grant, 'permission')} = {permission} "
        f"AND {col(grant, 'content_object')} = {patient})",
        f"EXISTS (SELECT 1 FROM {table(group_grant)} g "  # noqa: S608
        f"JOIN {table(membership)} m "
        f"ON m.{col(membership, 'group')} = g.{col(group_grant, 'group')} "
        f"WHERE m.{col(membership, 'user')} = %s "
        f"AND g.{col(group_grant, 'permission')} = {permission} "
        f"AND g.{col(group_grant, 'content_object')} = {patient})",
    ]
    if with_own_and_emergency:
        probes += [
            f"EXISTS (SELECT 1 FROM {table(Patient)} "  # noqa: S608
            f"WHERE {col(Patient, 'pk')} = {patient} AND {col(Patient, 'user')} = %s)",
            f"EXISTS (SELECT 1 FROM {table(BreakGlassGrant)} "  # noqa: S608
            f"WHERE {col(BreakGlassGrant, 'user')} = %s "
            f"AND {col(BreakGlassGrant, 'patient')} = {patient} "
            f"AND {col(BreakGlassGrant, 'started_at')} <= %s "
            f"AND {col(BreakGlassGrant, 'expires_at')} > %s)",
        ]
    return f"({' OR '.join(probes)})"


def access_patient(
    *, user: User, patient_id: int, perm: PatientPermission = "view_patient"
) -> Patient:
    """The patient, if `user` holds `perm` on it.

    Raises PatientNotFound, the same for a patient that does not exist and one the user may
    not see; its `outcome` ("not_found" or "denied") is for the audit trail only.
    """
    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is None:
        raise PatientNotFound(patient_id, outcome="not_found")
    if not patient_visible(user, patient_id, perm):
        raise PatientNotFound(patient_id, outcome="denied")
    return patient


def patient_get(*, patient_id: int) -> Patient:
    """The patient, unfiltered: for services and jobs acting for the system, never for
    answering a user."""
    try:
        return Patient.objects.get(pk=patient_id)
    except Patient.DoesNotExist:
        raise PatientNotFound(patient_id) from None


def patient_key(value: object) -> int | None:
    """`value` (an id from a client: a path, a query, a body) as the key of a patient row,
    if a row may have it: a positive integer within the key column's range. Anything else
    names no patient (and SQLite refuses integers beyond 64 bits in a query)."""
    if isinstance(value, str) and value.isdigit() and len(value) < 20:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value if key_in_range(Patient, value) else None


def patient_exists(*, patient_id: int) -> bool:
    """Whether there is such a patient, whoever may see it: for the audit trail of a refused
    access (not_found or denied), never for answering a user."""
    key = patient_key(patient_id)
    return key is not None and Patient.objects.filter(pk=key).exists()


def lock_patient(*, patient_id: int) -> Patient:
    """The patient row, locked FOR UPDATE until the end of the caller's transaction."""
    try:
        return Patient.objects.select_for_update().get(pk=patient_id)
    except Patient.DoesNotExist:
        raise PatientNotFound(patient_id) from None


def consent_active(*, patient_id: int, scope: str) -> bool:
    return Consent.objects.filter(
        patient_id=patient_id, scope=scope, status=Consent.Status.ACTIVE
    ).exists()


def consent_withdrawn_since(*, patient_id: int, scope: str) -> dt.datetime | None:
    """When the patient's latest word on `scope` is a withdrawal: the moment of it. None while
    a consent to `scope` is active, and for a patient never asked (no consent recorded): a
    scope restricts only once the patient has said no, as for the sharing scopes. One query
    (the patient's consents of that scope, latest first)."""
    latest = (
        Consent.objects.filter(patient_id=patient_id, scope=scope)
        .order_by("-recorded_at", "-pk")
        .values_list("status", "withdrawn_at")
        .first()
    )
    if latest is None or latest[0] != Consent.Status.WITHDRAWN:
        return None
    return latest[1]


def consent_resumed_at(*, patient_id: int, scope: str) -> dt.datetime | None:
    """When the patient gave `scope` again after withdrawing it: the moment the active consent
    was recorded, if an earlier consent of that scope was withdrawn; else None (never
    withdrawn, or withdrawn now)."""
    active = (
        Consent.objects.filter(patient_id=patient_id, scope=scope, status=Consent.Status.ACTIVE)
        .values_list("recorded_at", flat=True)
        .first()
    )
    if active is None:
        return None
    withdrawn_before = Consent.objects.filter(
        patient_id=patient_id,
        scope=scope,
        status=Consent.Status.WITHDRAWN,
        recorded_at__lte=active,
    ).exists()
    return active if withdrawn_before else None


def consent_list(*, patient_id: int) -> QuerySet[Consent]:
    """Every consent of the patient, active and withdrawn, newest first."""
    return Consent.objects.filter(patient_id=patient_id).order_by("-recorded_at", "-pk")


def device_list(*, patient_id: int, active: bool | None = None) -> QuerySet[Device]:
    qs = Device.objects.filter(patient_id=patient_id)
    if active is not None:
        qs = qs.filter(active=active)
    return qs.order_by("-created_at", "-pk")


def _active_grants(now: dt.datetime | None) -> QuerySet[BreakGlassGrant]:
    now = now or timezone.now()
    return BreakGlassGrant.objects.filter(started_at__lte=now, expires_at__gt=now)


BREAK_GLASS_PERMISSION = "patients.break_glass_patient"


def may_break_glass(user: AbstractUser | AnonymousUser) -> bool:
    """Whether `user` may open a record outside the care team in an emergency: an active
    account holding the global permission `patients.break_glass_patient`."""
    return bool(user.is_active) and user.has_perm(BREAK_GLASS_PERMISSION)


def break_glass_grant_active(
    *, user: User, patient_id: int, now: dt.datetime | None = None
) -> BreakGlassGrant | None:
    """The user's unexpired break-the-glass grant on the patient, the latest if several."""
    if not user.is_authenticated:
        return None
    return (
        _active_grants(now)
        .filter(user_id=user.pk, patient_id=patient_id)
        .order_by("-expires_at", "-pk")
        .first()
    )


def break_glass_grant_list(
    *, patient_id: int, active_only: bool = False, now: dt.datetime | None = None
) -> QuerySet[BreakGlassGrant]:
    """Every break-the-glass grant on the patient, newest first, with who broke the glass;
    the caller has checked access to the patient."""
    rows = _active_grants(now) if active_only else BreakGlassGrant.objects.all()
    return rows.filter(patient_id=patient_id).select_related("user").order_by("-started_at", "-pk")


# Ids per statement in the bulk reads below: SQLite caps the parameters of one statement.
_BULK_CHUNK = 500


def visible_patient_ids_by_user(
    *, user_ids: Collection[int], now: dt.datetime | None = None
) -> dict[int, dict[int, dt.datetime | None]]:
    """For each of `user_ids`: the patients it holds `view_patient` on, by the same rule as
    `visible_patients`, each with the moment that access ends (the latest expiry of the
    break-the-glass grants it rests on) or None when it rests on a lasting grant. A handful
    of queries for any number of users (the live connections of a process re-read their
    access together). Does not look at whether the users are active: the caller does."""
    now = now or timezone.now()
    found: dict[int, dict[int, dt.datetime | None]] = {user_id: {} for user_id in user_ids}
    ids = list(found)
    for start in range(0, len(ids), _BULK_CHUNK):
        chunk = ids[start : start + _BULK_CHUNK]
        lasting: list[tuple[int, int]] = []
        lasting += (
            _granted(PatientUserObjectPermission, "view_patient")
            .filter(user_id__in=chunk)
            .values_list("user_id", "content_object_id")
        )
        lasting += (
            _granted(PatientGroupObjectPermission, "view_patient")
            .filter(group__user__id__in=chunk)
            .values_list("group__user__id", "content_object_id")
        )
        lasting += Patient.objects.filter(user_id__in=chunk).values_list("user_id", "pk")
        for user_id, patient_id in lasting:
            found[user_id][int(patient_id)] = None
        grants = _active_grants(now).filter(user_id__in=chunk)
        for user_id, patient_id, expires_at in grants.values_list(
            "user_id", "patient_id", "expires_at"
        ):
            seen = found[user_id]
            if patient_id in seen:
                current = seen[patient_id]  # None: a lasting grant, whatever the other grants
                seen[patient_id] = None if current is None else max(current, expires_at)
            else:
                seen[patient_id] = expires_at
    return found
