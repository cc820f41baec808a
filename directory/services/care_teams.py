"""A patient's care team, and the object permissions that follow from it.

Who may see a patient's record is derived, never edited by hand: the active members of the
care team (practitioners directly, service teams through their group), unless the patient
has objected to sharing within the care team (French law presumes consent within the care
team and lets the patient object: a withdrawn `care_team_sharing` consent with no newer
active one). `patient_access_sync` recomputes that set and brings django-guardian's rows in
line; every service that changes an input of the rule calls it in the same transaction.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from core.errors import Conflict, InvalidInput, NotFound, Problem
from directory.models import CareTeam, CareTeamMember, Practitioner, ServiceTeam
from directory.selectors import PLATFORM_ROLE
from directory.signals import consent_changed, patient_access_changed
from live import events
from live.services.outbox import event_record
from patients.models import (
    Consent,
    Patient,
    PatientGroupObjectPermission,
    PatientUserObjectPermission,
)
from patients.services import (
    consent_record,
    consent_withdraw,
    patient_access_grant,
    patient_access_revoke,
)

MEMBER_PERMS = ("view_patient", "change_patient")


def care_team_for_patient(*, patient: Patient) -> CareTeam:
    """The patient's care team, created empty on first use."""
    team, _ = CareTeam.objects.get_or_create(
        patient=patient, defaults={"created_at": timezone.now()}
    )
    return team


def care_team_member_add(
    *,
    patient: Patient,
    role: str,
    actor: AbstractBaseUser | None,
    practitioner: Practitioner | None = None,
    service_team: ServiceTeam | None = None,
) -> CareTeamMember:
    """Add a practitioner or a service team to the patient's care team in `role`, and grant
    access accordingly. Refuses a duplicate (same party, same role) with Conflict."""
    if (practitioner is None) == (service_team is None):
        raise InvalidInput(
            [Problem("member", gettext("give exactly one of practitioner, service_team"))]
        )
    if not role or not role.replace("_", "").replace("-", "").isalnum() or role != role.lower():
        raise InvalidInput(
            [Problem("role", gettext("a role is lower-case letters, digits, '-' or '_'"))]
        )
    if practitioner is not None and not practitioner.active:
        raise InvalidInput([Problem("practitioner", gettext("this practitioner is inactive"))])
    with transaction.atomic():
        team = _lock_team(patient)
        duplicate = CareTeamMember.objects.filter(
            care_team=team,
            role=role,
            active=True,
            practitioner=practitioner,
            service_team=service_team,
        ).exists()
        if duplicate:
            raise Conflict(gettext("already in the care team as %(role)s") % {"role": role})
        member = CareTeamMember.objects.create(
            care_team=team,
            practitioner=practitioner,
            service_team=service_team,
            role=role,
            since=timezone.now(),
        )
        team.version += 1
        team.save(update_fields=["version"])
        # The event goes first: a live connection seeing it re-reads its access before the
        # events that follow from the change (tasks released by who lost access).
        _member_event_record(member, "added", patient, team)
        patient_access_sync(patient=patient, actor=actor)
    return member


def care_team_member_remove(*, member_id: int, actor: AbstractBaseUser | None) -> CareTeamMember:
    """End a membership (kept for the record, inactive) and revoke what it granted."""
    with transaction.atomic():
        member = (
            CareTeamMember.objects.select_related("care_team__patient").filter(pk=member_id).first()
        )
        if member is None:
            raise NotFound("care team member", member_id)
        patient = member.care_team.patient
        team = _lock_team(patient)
        member = CareTeamMember.objects.select_for_update().get(pk=member_id)
        if not member.active:
            raise Conflict(gettext("this membership has already ended"))
        member.active, member.until = False, timezone.now()
        member.save(update_fields=["active", "until"])
        _member_event_record(member, "removed", patient, team)
        patient_access_sync(patient=patient, actor=actor)
    return member


def _member_event_record(
    member: CareTeamMember, change: str, patient: Patient, team: CareTeam
) -> None:
    """The outbox event of a membership change. It names the member's user account so that
    the relay can tell that user's live connections to pick up, or drop, the patient."""
    user_id = None
    if member.practitioner_id is not None:
        user_id = (
            Practitioner.objects.filter(pk=member.practitioner_id)
            .values_list("user_id", flat=True)
            .first()
        )
    event_record(
        type=events.CARE_TEAM_CHANGED,
        patient=patient,
        payload=events.care_team_payload(
            member_id=member.pk,
            change=change,
            role=member.role,
            practitioner_id=member.practitioner_id,
            user_id=user_id,
            service_team_id=member.service_team_id,
            version=team.version,
        ),
    )


def sharing_allowed(patient: Patient, scope: str = Consent.Scope.CARE_TEAM_SHARING) -> bool:
    """False when the patient's latest word on `scope` is a withdrawal: an objection to
    sharing within the care team (care_team_sharing), or with external platforms
    (external_sharing)."""
    latest = (
        Consent.objects.filter(patient=patient, scope=scope)
        .order_by("-recorded_at", "-pk")
        .values_list("status", flat=True)
        .first()
    )
    return latest != Consent.Status.WITHDRAWN


def patient_access_sync(*, patient: Patient, actor: AbstractBaseUser | None) -> None:
    """Grant view/change on the patient to exactly the care team's active members (or to
    nobody if the patient objected), revoking every other such grant, and put back on offer
    the open tasks of owners who lost access. A withdrawn `external_sharing` consent leaves
    out the members in the role `platform` (a platform's service account is a member so):
    the platform then sees nothing of the patient, through the API as through webhooks,
    which are sent only about patients their owner sees. Idempotent. The caller holds the
    care team lock (`_lock_team`)."""
    members = list(
        CareTeamMember.objects.filter(care_team__patient=patient, active=True).select_related(
            "practitioner__user", "service_team__group"
        )
    )
    allowed = sharing_allowed(patient)
    if not sharing_allowed(patient, Consent.Scope.EXTERNAL_SHARING):
        members = [m for m in members if m.role != PLATFORM_ROLE]
    users = {m.practitioner.user.pk: m.practitioner.user for m in members if m.practitioner}
    groups = {m.service_team.group.pk: m.service_team.group for m in members if m.service_team}
    if not allowed:
        users, groups = {}, {}
    held_users = set(
        PatientUserObjectPermission.objects.filter(content_object=patient).values_list(
            "user_id", flat=True
        )
    )
    held_groups = set(
        PatientGroupObjectPermission.objects.filter(content_object=patient).values_list(
            "group_id", flat=True
        )
    )
    for user in users.values():
        patient_access_grant(patient=patient, perms=MEMBER_PERMS, actor=actor, user=user)
    for group in groups.values():
        patient_access_grant(patient=patient, perms=MEMBER_PERMS, actor=actor, group=group)
    for user in get_user_model().objects.filter(pk__in=held_users - set(users)):
        patient_access_revoke(patient=patient, perms=MEMBER_PERMS, actor=actor, user=user)
    for group in Group.objects.filter(pk__in=held_groups - set(groups)):
        patient_access_revoke(patient=patient, perms=MEMBER_PERMS, actor=actor, group=group)
    label = f"user:{actor.pk}" if actor is not None else "system"
    patient_access_changed.send(
        sender=Patient, patient=patient, actor_label=label, now=timezone.now()
    )


def _lock_team(patient: Patient) -> CareTeam:
    team = care_team_for_patient(patient=patient)
    return CareTeam.objects.select_for_update().get(pk=team.pk)


def consent_set(
    *,
    patient: Patient,
    scope: str,
    given: bool,
    actor: AbstractBaseUser | None,
    entry_point: str,
    note: str = "",
) -> None:
    """Record or withdraw a consent, and apply what it changes to access at once (a
    withdrawn care-team sharing consent revokes every member's access in this transaction)."""
    with transaction.atomic():
        # The team lock first: every change of who may see the patient holds it, so a
        # consent change and a membership change cannot interleave (lost objection) nor
        # take the grant rows in opposite orders (deadlock).
        _lock_team(patient)
        if given:
            consent_record(
                patient=patient, scope=scope, actor=actor, entry_point=entry_point, note=note
            )
        else:
            consent_withdraw(
                patient=patient, scope=scope, actor=actor, entry_point=entry_point, note=note
            )
        event_record(
            type=events.CONSENT_CHANGED,
            patient=patient,
            payload=events.consent_payload(scope=scope, given=given),
        )
        patient_access_sync(patient=patient, actor=actor)
        consent_changed.send(
            sender=Patient,
            patient=patient,
            scope=scope,
            given=given,
            actor_label=f"user:{actor.pk}" if actor is not None else "system",
            now=timezone.now(),
        )
