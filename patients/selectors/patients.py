"""Reads of patients, filtered by the reader's object permissions, and of their consents and
devices.

Who sees a patient: a user holding the object permission on it (directly, or through one of
their groups: django-guardian's direct foreign-key tables), and the patient's own portal
account. Global (model-level) permissions do not count and superusers get no free pass:
seeing a record always rests on a grant, or on the audited break-the-glass service. Inactive
and anonymous users see nothing.
"""

from __future__ import annotations

from typing import Literal

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet
from guardian.shortcuts import get_objects_for_user

from patients.errors import PatientNotFound
from patients.models import Consent, Device, Patient

PatientPermission = Literal["view_patient", "change_patient"]
User = AbstractBaseUser | AnonymousUser


def visible_patients(user: User, perm: PatientPermission = "view_patient") -> QuerySet[Patient]:
    """The patients `user` holds `perm` on, ordered by name; one query when evaluated.

    A patient account always sees its own record (`view_patient`), and nothing else unless
    granted.
    """
    if not user.is_authenticated or not user.is_active:
        return Patient.objects.none()
    granted: QuerySet[Patient] = get_objects_for_user(
        user,
        f"patients.{perm}",
        klass=Patient,
        use_groups=True,
        with_superuser=False,
        accept_global_perms=False,
    )
    if perm == "view_patient":
        granted = granted | Patient.objects.filter(user_id=user.pk)
    return granted.order_by("family_name", "given_names", "pk")


def access_patient(
    *, user: User, patient_id: int, perm: PatientPermission = "view_patient"
) -> Patient:
    """The patient, if `user` holds `perm` on it.

    Raises PatientNotFound, the same for a patient that does not exist and one the user may
    not see; its `outcome` ("not_found" or "denied") is for the audit trail only.
    """
    patient = visible_patients(user, perm).filter(pk=patient_id).first()
    if patient is None:
        exists = Patient.objects.filter(pk=patient_id).exists()
        raise PatientNotFound(patient_id, outcome="denied" if exists else "not_found")
    return patient


def patient_get(*, patient_id: int) -> Patient:
    """The patient, unfiltered: for services and jobs acting for the system, never for
    answering a user."""
    try:
        return Patient.objects.get(pk=patient_id)
    except Patient.DoesNotExist:
        raise PatientNotFound(patient_id) from None


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


def consent_list(*, patient_id: int) -> QuerySet[Consent]:
    """Every consent of the patient, active and withdrawn, newest first."""
    return Consent.objects.filter(patient_id=patient_id).order_by("-recorded_at", "-pk")


def device_list(*, patient_id: int, active: bool | None = None) -> QuerySet[Device]:
    qs = Device.objects.filter(patient_id=patient_id)
    if active is not None:
        qs = qs.filter(active=active)
    return qs.order_by("-created_at", "-pk")
