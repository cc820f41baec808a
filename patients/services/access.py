"""Granting and revoking object permissions on patients, and breaking the glass.

Grants live in django-guardian's direct foreign-key tables (PatientUserObjectPermission,
PatientGroupObjectPermission). Granting what is already held and revoking what is not are
no-ops that record nothing; every actual change records one audit event (grant / revoke) in
the same transaction. Only `view_patient` and `change_patient` are granted per patient;
`break_glass_patient` is a global permission (a role), checked by `patient_break_glass`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AbstractUser, Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from patients.errors import InvalidInput, InvalidPermission, NotAllowed, PatientNotFound, Problem
from patients.models import (
    AuditEvent,
    Patient,
    PatientGroupObjectPermission,
    PatientUserObjectPermission,
)
from patients.services.audit import audit_record

GRANTABLE = frozenset({"view_patient", "change_patient"})
BREAK_GLASS_PERMISSION = "patients.break_glass_patient"
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
) -> Patient:
    """Open a patient record without a grant, in an emergency. Needs the global permission
    `patients.break_glass_patient` (NotAllowed otherwise) and a reason; records a
    `break_glass` audit event (purpose emergency) with the reason. Grants nothing lasting:
    each such access goes through here again.

    Raises InvalidInput (no reason), NotAllowed, PatientNotFound; writes nothing then.
    """
    reason = " ".join(reason.split())
    if not reason:
        raise InvalidInput([Problem("reason", "required to break the glass")])
    if len(reason) > MAX_REASON:
        raise InvalidInput([Problem("reason", f"longer than {MAX_REASON} characters")])
    if not user.is_active or not user.has_perm(BREAK_GLASS_PERMISSION):
        raise NotAllowed("breaking the glass needs the break_glass_patient permission")
    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is None:
        raise PatientNotFound(patient_id)
    audit_record(
        actor=user,
        action=AuditEvent.Action.BREAK_GLASS,
        resource_type="Patient",
        resource_id=patient.pk,
        patient_id=patient.pk,
        purpose=AuditEvent.Purpose.EMERGENCY,
        entry_point=entry_point,
        client_address=client_address,
        detail={"reason": reason},
    )
    return patient


def _holder(user: AbstractBaseUser | None, group: Group | None) -> Holder:
    if (user is None) == (group is None):
        raise InvalidPermission([Problem("user", "give exactly one of user and group")])
    if user is not None:
        return PatientUserObjectPermission, {"user_id": user.pk}
    assert group is not None
    return PatientGroupObjectPermission, {"group_id": group.pk}


def _permissions(perms: Iterable[str]) -> list[Permission]:
    codenames = sorted({p.removeprefix("patients.") for p in perms})
    problems = [
        Problem(
            "perms",
            f"{c!r} cannot be granted on a patient; grantable: {', '.join(sorted(GRANTABLE))}",
        )
        for c in codenames
        if c not in GRANTABLE
    ]
    if not codenames:
        problems.append(Problem("perms", "no permission given"))
    if problems:
        raise InvalidPermission(problems)
    content_type = ContentType.objects.get_for_model(Patient)
    found = list(Permission.objects.filter(content_type=content_type, codename__in=codenames))
    assert len(found) == len(codenames), "Django creates view/change permissions on migrate"
    return sorted(found, key=lambda p: p.codename)
