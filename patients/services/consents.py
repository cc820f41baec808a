"""Recording and withdrawing consents.

Both lock the patient row first, which serialises the consent changes of one patient: two
concurrent recordings of the same scope give one consent and one Conflict, never an integrity
error. The patient's `version` is not changed (it guards the patient row's own fields).
Withdrawal takes effect at once: once it commits, `consent_active` says no.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from patients.errors import Conflict, InvalidConsent, NoActiveConsent, Problem
from patients.models import AuditEvent, Consent, Patient
from patients.selectors import lock_patient
from patients.services.audit import audit_record

MAX_NOTE = 2000


def consent_record(
    *,
    patient: Patient,
    scope: str,
    actor: AbstractBaseUser | None,
    entry_point: str,
    note: str = "",
    purpose: str = AuditEvent.Purpose.CARE_COORDINATION,
    client_address: str | None = None,
    now: dt.datetime | None = None,
) -> Consent:
    """Record the patient's consent to `scope`. Raises InvalidConsent, PatientNotFound, or
    Conflict when a consent to that scope is already active (withdraw it first)."""
    _check(scope, note)
    now = now or timezone.now()
    with transaction.atomic():
        lock_patient(patient_id=patient.pk)
        active = Consent.objects.filter(
            patient_id=patient.pk, scope=scope, status=Consent.Status.ACTIVE
        ).first()
        if active is not None:
            raise Conflict(
                _(
                    "patient %(patient)s already has an active %(scope)s consent "
                    "(consent %(consent)s, recorded %(recorded)s)"
                )
                % {
                    "patient": patient.pk,
                    "scope": scope,
                    "consent": active.pk,
                    "recorded": active.recorded_at.isoformat(),
                }
            )
        consent = Consent.objects.create(
            patient_id=patient.pk,
            scope=scope,
            status=Consent.Status.ACTIVE,
            recorded_by_id=actor.pk if actor is not None else None,
            recorded_at=now,
            note=note.strip(),
        )
        audit_record(
            actor=actor,
            action=AuditEvent.Action.CREATE,
            resource_type="Consent",
            resource_id=consent.pk,
            patient_id=patient.pk,
            purpose=purpose,
            entry_point=entry_point,
            client_address=client_address,
            detail={"scope": scope},
        )
    return consent


def consent_withdraw(
    *,
    patient: Patient,
    scope: str,
    actor: AbstractBaseUser | None,
    entry_point: str,
    note: str = "",
    purpose: str = AuditEvent.Purpose.CARE_COORDINATION,
    client_address: str | None = None,
    now: dt.datetime | None = None,
) -> Consent:
    """Withdraw the patient's active consent to `scope`, effective now. Raises
    InvalidConsent, PatientNotFound, or NotFound when no consent to that scope is active."""
    _check(scope, note)
    now = now or timezone.now()
    with transaction.atomic():
        lock_patient(patient_id=patient.pk)
        consent = (
            Consent.objects.select_for_update()
            .filter(patient_id=patient.pk, scope=scope, status=Consent.Status.ACTIVE)
            .first()
        )
        if consent is None:
            raise NoActiveConsent(
                _("patient %(patient)s has no active %(scope)s consent")
                % {"patient": patient.pk, "scope": scope}
            )
        consent.status = Consent.Status.WITHDRAWN
        consent.withdrawn_at = now
        consent.withdrawn_by_id = actor.pk if actor is not None else None
        consent.withdrawal_note = note.strip()
        consent.save(update_fields=["status", "withdrawn_at", "withdrawn_by", "withdrawal_note"])
        audit_record(
            actor=actor,
            action=AuditEvent.Action.UPDATE,
            resource_type="Consent",
            resource_id=consent.pk,
            patient_id=patient.pk,
            purpose=purpose,
            entry_point=entry_point,
            client_address=client_address,
            detail={"scope": scope, "status": Consent.Status.WITHDRAWN.value},
        )
    return consent


def _check(scope: str, note: str) -> None:
    problems: list[Problem] = []
    if scope not in Consent.Scope.values:
        allowed = ", ".join(Consent.Scope.values)
        problems.append(
            Problem(
                "scope",
                _("%(value)s is not one of %(allowed)s")
                % {"value": repr(scope), "allowed": allowed},
            )
        )
    if len(note) > MAX_NOTE:
        problems.append(Problem("note", _("longer than %(n)d characters") % {"n": MAX_NOTE}))
    if problems:
        raise InvalidConsent(problems)
