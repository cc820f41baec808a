"""Reads of the directory: who a user is (practitioner, patient account), the roles they
play in a patient's care team, organisations and teams, and what live connections may receive.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from core.errors import NotFound
from core.sql import (
    column,
    from_row,
    kept_cursor,
    key_in_range,
    select_list,
    statement,
    table,
)
from core.users import User
from directory.models import CareTeamMember, Organization, Practitioner, ServiceTeam
from live.selectors import NO_LIVE_ACCESS, LiveAccess
from patients.models import Patient
from patients.selectors import (
    visible_patient_ids_by_user,
)


def practitioner_of(user: User) -> Practitioner | None:
    """The active practitioner the user is, if any. Asked on nearly every request: read by a
    statement written once (core.sql)."""
    if not user.is_authenticated:
        return None
    with kept_cursor() as cursor:
        cursor.execute(_practitioner_sql(), [user.pk, True])
        row = cursor.fetchone()
    return None if row is None else from_row(Practitioner, row)[0]


@statement
def _practitioner_sql() -> str:
    return (
        f"SELECT {select_list(Practitioner, 'p')} FROM {table(Practitioner)} p "  # noqa: S608
        f"WHERE p.{column(Practitioner, 'user')} = %s AND p.{column(Practitioner, 'active')} = %s"
    )


PATIENT_ROLE = "patient"
# The role of a platform's service account in the care teams it serves (api.services.platforms).
PLATFORM_ROLE = "platform"


def care_roles(*, user: User, patient_id: int) -> frozenset[str]:
    """The pathway roles `user` plays in the patient's care team (active memberships, in
    person or through a service team), plus `patient` for the patient's own account. Read
    from the memberships themselves: it holds even when the patient objected to sharing."""
    if not user.is_authenticated or not user.is_active or not key_in_range(Patient, patient_id):
        return frozenset()  # (an id beyond the keys' range is no patient's)
    members = CareTeamMember.objects.filter(care_team__patient_id=patient_id, active=True)
    direct = members.filter(practitioner__user__id=user.pk).values_list("role", flat=True)
    via_team = members.filter(service_team__group__user__id=user.pk).values_list("role", flat=True)
    roles = set(direct) | set(via_team)
    if Patient.objects.filter(pk=patient_id, user_id=user.pk).exists():
        roles.add(PATIENT_ROLE)
    return frozenset(roles)


def care_team_members(*, patient: Patient) -> QuerySet[CareTeamMember]:
    """Active members of the patient's care team; the caller has checked access to it."""
    return CareTeamMember.objects.filter(care_team__patient=patient, active=True).select_related(
        "practitioner__user", "service_team"
    )


def organization_list() -> QuerySet[Organization]:
    return Organization.objects.all()


def organization_get(*, organization_id: int) -> Organization:
    organization = organization_list().filter(pk=organization_id).first()
    if organization is None:
        raise NotFound("organization", organization_id)
    return organization


def practitioner_list() -> QuerySet[Practitioner]:
    return Practitioner.objects.filter(active=True).select_related("user")


def practitioner_get(*, practitioner_id: int, active_only: bool = True) -> Practitioner:
    rows = practitioner_list() if active_only else Practitioner.objects.select_related("user")
    practitioner = rows.filter(pk=practitioner_id).first()
    if practitioner is None:
        raise NotFound("practitioner", practitioner_id)
    return practitioner


def service_team_list() -> QuerySet[ServiceTeam]:
    return ServiceTeam.objects.prefetch_related("memberships")


def service_team_get(*, team_id: int) -> ServiceTeam:
    team = ServiceTeam.objects.filter(pk=team_id).first()
    if team is None:
        raise NotFound("service team", team_id)
    return team


def live_access(*, user_id: int) -> LiveAccess:
    """The same visibility rule as the API (`visible_patients`), for a user id; an inactive
    or deleted user may see nothing."""
    return live_access_many(user_ids={user_id})[user_id]


def live_access_many(
    *, user_ids: Collection[int], now: dt.datetime | None = None
) -> dict[int, LiveAccess]:
    """`live_access` of each of `user_ids`, in a handful of queries whatever their number:
    a practitioner receives the events of the patients it may see (`visible_patients`), a
    patient account those of its own record, and any other user nothing."""
    wanted = set(user_ids)
    active: set[int] = set()
    practitioners: set[int] = set()
    own: dict[int, int] = {}
    teams: dict[int, set[int]] = {}
    ids = list(wanted)
    for start in range(0, len(ids), _LIVE_CHUNK):
        chunk = ids[start : start + _LIVE_CHUNK]
        active |= set(
            get_user_model()
            .objects.filter(pk__in=chunk, is_active=True)
            .values_list("pk", flat=True)
        )
        practitioners |= set(
            Practitioner.objects.filter(user_id__in=chunk, active=True).values_list(
                "user_id", flat=True
            )
        )
        own.update(Patient.objects.filter(user_id__in=chunk).values_list("user_id", "pk"))
        for user_id, team_id in ServiceTeam.objects.filter(group__user__id__in=chunk).values_list(
            "group__user__id", "pk"
        ):
            teams.setdefault(user_id, set()).add(team_id)
    practitioners &= active
    visible = visible_patient_ids_by_user(user_ids=practitioners, now=now)
    found: dict[int, LiveAccess] = {}
    for user_id in wanted:
        if user_id not in active:
            found[user_id] = NO_LIVE_ACCESS
            continue
        team_ids = frozenset(teams.get(user_id, ()))
        if user_id in practitioners:
            seen = visible[user_id]
            expiries = {p: ends for p, ends in seen.items() if ends is not None}
            found[user_id] = LiveAccess(True, frozenset(seen), None, team_ids, expiries)
        else:
            own_id = own.get(user_id)
            patients = frozenset() if own_id is None else frozenset({own_id})
            found[user_id] = LiveAccess(True, patients, own_id, team_ids)
    return found


_LIVE_CHUNK = 500


def portal_patient(user: User) -> Patient | None:
    """The patient record of a patient's own portal account; None for anyone else
    (practitioners included, even if they also have a record)."""
    if not user.is_authenticated or not user.is_active or practitioner_of(user) is not None:
        return None
    return Patient.objects.filter(user_id=user.pk).first()
