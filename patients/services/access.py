"""Granting and revoking object permissions on patients, and breaking the glass.

Grants live in django-guardian's direct foreign-key tables (PatientUserObjectPermission,
PatientGroupObjectPermission). Granting what is already held and revoking what is not are
no-ops that record nothing; every actual change records one audit event (grant / revoke) in
the same transaction. Only `view_patient` and `change_patient` are granted per patient;
`break_glass_patient` is a global permission (a role), checked by `patient_break_glass`,
which gives a time-limited, read-only BreakGlassGrant instead of a guardian row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AbstractUser, Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from patients.errors import (
    Conflict,
    InvalidInput,
    InvalidPermission,
    NotAllowed,
    PatientNotFound,
    Problem,
)
from patients.models import (
    AuditEvent,
    BreakGlassGrant,
    Patient,
    PatientGroupObjectPermission,
    PatientUserObjectPermission,
)
from patients.selectors import break_glass_grant_active, may_break_glass, patient_visible
from patients.services.audit import audit_record

GRANTABLE = frozenset({"view_patient", "change_patient"})
MAX_REASON = 500

Holder = tuple[
    type[PatientUserObjectPermission] | type[PatientGroupObjectPermission], dict[str, Any]
]


def patient_access_grant(
    *,
    patient: Patient,
    perms: Iterable[str],
    actor: AbstractBaseUser | None,
    user: AbstractBaseUser | None = None,
    group: Group | None = None,
    entry_point: str = AuditEvent.EntryPoint.SYSTEM,
    purpose: str = AuditEvent.Purpose.CARE_COORDINATION,
    client_address: str | None = None,
) -> list[str]:
    """Grant `perms` on the patient to `user` or to `group` (exactly one). Returns the
    codenames newly granted, sorted (empty when all were held already)."""
    model, holder = _holder(user, group)
    permissions = _permissions(perms)
    with transaction.atomic():
        held = set(
            model.objects.filter(
                **holder, content_object_id=patient.pk, permission__in=permissions
            ).values_list("permission_id", flat=True)
        )
        new = [p for p in permissions if p.pk not in held]
        if not new:
            return []
        model.objects.bulk_create(
            [model(**holder, content_object_id=patient.pk, permission=p) for p in new],
            ignore_conflicts=True,  # a concurrent identical grant is the same grant
        )
        granted = sorted(p.codename for p in new)
        audit_record(
            actor=actor,
            action=AuditEvent.Action.GRANT,
            resource_type="Patient",
            resource_id=patient.pk,
            patient_id=patient.pk,
            purpose=purpose,
            entry_point=entry_point,
            client_address=client_address,
            detail={**holder, "perms": granted},
        )
    return granted


def patient_access_revoke(
    *,
    patient: Patient,
    perms: Iterable[str],
    actor: AbstractBaseUser | None,
    user: AbstractBaseUser | None = None,
    group: Group | None = None,
    entry_point: str = AuditEvent.EntryPoint.SYSTEM,
    purpose: str = AuditEvent.Purpose.CARE_COORDINATION,
    client_address: str | None = None,
) -> list[str]:
    """Revoke `perms` on the patient from `user` or `group` (exactly one); effective at once.
    Returns the codenames actually revoked, sorted."""
    model, holder = _holder(user, group)
    permissions = _permissions(perms)
    with transaction.atomic():
        rows = model.objects.filter(
            **holder, content_object_id=patient.pk, permission__in=permissions
        )
        revoked = sorted(rows.values_list("permission__codename", flat=True))
        if not revoked:
            return []
        rows.delete()
        audit_record(
            actor=actor,
            action=AuditEvent.Action.REVOKE,
            resource_type="Patient",
            resource_id=patient.pk,
            patient_id=patient.pk,
            purpose=purpose,
            entry_point=entry_point,
            client_address=client_address,
            detail={**holder, "perms": revoked},
        )
    return revoked


def patient_break_glass(
    *,
    user: AbstractUser,
    patient_id: int,
    reason: str,
    entry_point: str,
    client_address: str | None = None,
    now: dt.datetime | None = None,
) -> BreakGlassGrant:
    """Open a patient record outside the care team, in an emergency: a BreakGlassGrant gives
    the user `view_patient` (read-only) for `settings.BREAK_GLASS_DURATION` (4 hours by
    default), recorded with a `break_glass` audit event (purpose emergency, the reason) in
    the same transaction. Locks the patient row, so two simultaneous attempts give one grant.

    Checks, in this order: PatientNotFound (no such patient); Conflict (the user already sees
    the patient, through the care team or an unexpired grant: nothing to break); NotAllowed
    (no global permission `patients.break_glass_patient`, or an inactive user); InvalidInput
    (no reason, or too long). Writes nothing when it raises.
    """
    now = now or timezone.now()
    with transaction.atomic():
        try:
            patient = Patient.objects.select_for_update().get(pk=patient_id)
        except Patient.DoesNotExist:
            raise PatientNotFound(patient_id) from None
        if patient_visible(user, patient.pk):
            open_grant = break_glass_grant_active(user=user, patient_id=patient.pk, now=now)
            if open_grant is not None:
                raise Conflict(
                    _("the record is already open until %(until)s")
                    % {"until": open_grant.expires_at}
                )
            raise Conflict(_("you already have access to this record: no need to break the glass"))
        if not may_break_glass(user):
            raise NotAllowed(
                _(
                    "breaking the glass needs the emergency access permission, "
                    "which this account does not have"
                )
            )
        reason = " ".join(reason.split())
        if not reason:
            raise InvalidInput([Problem("reason", _("required to break the glass"))])
        if len(reason) > MAX_REASON:
            raise InvalidInput(
                [Problem("reason", _("longer than %(n)d characters") % {"n": MAX_REASON})]
            )
        duration: dt.timedelta = settings.BREAK_GLASS_DURATION
        grant = BreakGlassGrant.objects.create(
            patient=patient,
            user_id=user.pk,
            reason=reason,
            started_at=now,
            expires_at=now + duration,
        )
        audit_record(
            actor=user,
            action=AuditEvent.Action.BREAK_GLASS,
            resource_type="Patient",
            resource_id=patient.pk,
            patient_id=patient.pk,
            purpose=AuditEvent.Purpose.EMERGENCY,
            entry_point=entry_point,
            client_address=client_address,
            detail={
                "reason": reason,
                "grant": grant.pk,
                "expires_at": grant.expires_at.astimezone(dt.UTC).isoformat(),
            },
        )
    return grant


def _holder(user: AbstractBaseUser | None, group: Group | None) -> Holder:
    if (user is None) == (group is None):
        raise InvalidPermission([Problem("user", _("give exactly one of user and group"))])
    if user is not None:
        return PatientUserObjectPermission, {"user_id": user.pk}
    assert group is not None
    return PatientGroupObjectPermission, {"group_id": group.pk}


def _permissions(perms: Iterable[str]) -> list[Permission]:
    codenames = sorted({p.removeprefix("patients.") for p in perms})
    problems = [
        Problem(
            "perms",
            _("%(perm)s cannot be granted on a patient; grantable: %(grantable)s")
            % {"perm": repr(c), "grantable": ", ".join(sorted(GRANTABLE))},
        )
        for c in codenames
        if c not in GRANTABLE
    ]
    if not codenames:
        problems.append(Problem("perms", _("no permission given")))
    if problems:
        raise InvalidPermission(problems)
    content_type = ContentType.objects.get_for_model(Patient)
    found = list(Permission.objects.filter(content_type=content_type, codename__in=codenames))
    assert len(found) == len(codenames), "Django creates view/change permissions on migrate"
    return sorted(found, key=lambda p: p.codename)
