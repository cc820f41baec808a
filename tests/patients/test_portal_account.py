"""The patient's portal account, created and linked by one audited service."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from patients.errors import Conflict, InvalidInput
from patients.models import AuditEvent, Patient
from patients.selectors import access_patient, visible_patients
from patients.services import patient_portal_account_create
from tests.patients.factories import PatientFactory, UserFactory


def test_creating_the_portal_account_links_it_and_audits_it(db):
    patient = PatientFactory.create()
    coordinator = UserFactory.create(username="synthetic-coordinator")
    version = patient.version

    user = patient_portal_account_create(
        patient=patient, email="Patient.Synthetic@example.invalid", actor=coordinator,
        entry_point="rest",
    )  # fmt: skip

    stored = Patient.objects.get(pk=patient.pk)
    assert (stored.user_id, stored.version) == (user.pk, version + 1)
    assert (user.get_username(), get_user_model().objects.get(pk=user.pk).email) == (
        "patient.synthetic@example.invalid",
        "Patient.Synthetic@example.invalid",
    )
    assert not user.has_usable_password()
    event = AuditEvent.objects.get()
    assert (event.actor_id, event.action, event.patient_id, event.purpose, event.detail) == (
        coordinator.pk,
        "update",
        patient.pk,
        "administration",
        {"portal_account": user.pk},
    )


def test_the_portal_account_sees_its_own_record_only(db):
    patient, other = PatientFactory.create(), PatientFactory.create()

    user = patient_portal_account_create(patient=patient, email="p@example.invalid", actor=None)

    assert list(visible_patients(user)) == [patient]
    assert access_patient(user=user, patient_id=patient.pk) == patient
    assert other not in visible_patients(user)


def test_a_patient_has_one_portal_account(db):
    patient = PatientFactory.create()
    patient_portal_account_create(patient=patient, email="a@example.invalid", actor=None)
    users_before = get_user_model().objects.count()

    with pytest.raises(Conflict):
        patient_portal_account_create(patient=patient, email="b@example.invalid", actor=None)

    assert get_user_model().objects.count() == users_before
    assert AuditEvent.objects.count() == 1


def test_a_taken_username_is_a_conflict(db):
    UserFactory.create(username="taken@example.invalid")
    patient = PatientFactory.create()

    with pytest.raises(Conflict):
        patient_portal_account_create(patient=patient, email="taken@example.invalid", actor=None)

    assert Patient.objects.get(pk=patient.pk).user_id is None
    assert AuditEvent.objects.count() == 0


def test_an_invalid_email_is_refused(db):
    patient = PatientFactory.create()

    with pytest.raises(InvalidInput, match=r"^email: not an e-mail address$"):
        patient_portal_account_create(patient=patient, email="not-an-address", actor=None)

    assert Patient.objects.get(pk=patient.pk).user_id is None
    assert get_user_model().objects.count() == 0


def test_a_password_can_be_set_at_creation(db):
    patient = PatientFactory.create()

    user = patient_portal_account_create(
        patient=patient, email="p@example.invalid", username="synthetic-portal",
        password="a-synthetic-passphrase", actor=None,
    )  # fmt: skip

    assert user.get_username() == "synthetic-portal"
    assert user.check_password("a-synthetic-passphrase")
