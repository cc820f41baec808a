"""The patient's portal account: the optional login with which a patient sees their own
record, pathway and the tasks meant for them (and nothing of anyone else).

`patient_portal_account_create` is the one writer: it creates the user and links it to the
patient in one transaction, audited. A patient has at most one portal account and an account
belongs to at most one patient.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from patients.errors import Conflict, InvalidInput, Problem
from patients.models import AuditEvent, Patient
from patients.selectors import lock_patient
from patients.services.audit import audit_record

MAX_USERNAME = 150


def patient_portal_account_create(
    *,
    patient: Patient,
    email: str,
    actor: AbstractBaseUser | None,
    username: str | None = None,
    password: str | None = None,
    entry_point: str = AuditEvent.EntryPoint.SYSTEM,
    client_address: str | None = None,
) -> AbstractBaseUser:
    """Create the patient's portal account and link it to the patient (version + 1), with an
    `update` audit event naming the account. `username` defaults to the e-mail address;
    without a password the account cannot sign in until one is set (a reset link).

    Locks the patient row. Raises InvalidInput (e-mail, username) and Conflict (the patient
    already has an account, or the username is taken), writing nothing then.
    """
    email = email.strip()
    name = (username if username is not None else email.lower()).strip()
    problems = []
    try:
        validate_email(email)
    except ValidationError:
        problems.append(Problem("email", _("not an e-mail address")))
    if not name or len(name) > MAX_USERNAME:
        problems.append(
            Problem("username", _("between 1 and %(n)d characters") % {"n": MAX_USERNAME})
        )
    if problems:
        raise InvalidInput(problems)
    users = get_user_model()
    with transaction.atomic():
        locked = lock_patient(patient_id=patient.pk)
        if locked.user_id is not None:
            raise Conflict(_("this patient already has a portal account"))
        if users.objects.filter(username=name).exists():
            raise Conflict(_("the username %(name)s is already taken") % {"name": repr(name)})
        user = users.objects.create_user(
            username=name,
            email=email,
            first_name=locked.given_names[:150],
            last_name=locked.family_name[:150],
            password=password,
        )
        locked.user = user
        locked.version += 1
        locked.updated_at = timezone.now()
        locked.save(update_fields=["user", "version", "updated_at"])
        audit_record(
            actor=actor,
            action=AuditEvent.Action.UPDATE,
            resource_type="Patient",
            resource_id=locked.pk,
            patient_id=locked.pk,
            purpose=AuditEvent.Purpose.ADMINISTRATION,
            entry_point=entry_point,
            client_address=client_address,
            detail={"portal_account": user.pk},
        )
    patient.user, patient.version, patient.updated_at = user, locked.version, locked.updated_at
    return user
