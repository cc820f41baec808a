"""Break the glass: a time-limited, read-only grant, recorded with its audit event."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.test import override_settings
from django.utils import timezone

from patients.errors import Conflict, InvalidInput, NotAllowed, PatientNotFound
from patients.models import AuditEvent, BreakGlassGrant
from patients.selectors import (
    access_patient,
    break_glass_grant_active,
    break_glass_grant_list,
    visible_patients,
)
from patients.services import patient_access_grant, patient_break_glass
from tests.patients.factories import PatientFactory, UserFactory

REST = AuditEvent.EntryPoint.REST
T0 = dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.UTC)


@pytest.fixture
def doctor(db):
    user = UserFactory.create(username="synthetic-emergency-doctor")
    user.user_permissions.add(Permission.objects.get(codename="break_glass_patient"))
    return type(user).objects.get(pk=user.pk)  # a fresh permission cache


def test_breaking_the_glass_opens_the_record_for_four_hours_read_only(doctor):
    patient, other = PatientFactory.create(), PatientFactory.create()

    with time_machine.travel(T0, tick=False):
        grant = patient_break_glass(
            user=doctor, patient_id=patient.pk, reason="unconscious", entry_point=REST
        )
        visible = list(visible_patients(doctor))
        changeable = list(visible_patients(doctor, "change_patient"))

    assert (grant.started_at, grant.expires_at) == (T0, T0 + dt.timedelta(hours=4))
    assert visible == [patient]
    assert other not in visible
    assert changeable == []


def test_an_expired_grant_gives_nothing(doctor):
    patient = PatientFactory.create()
    with time_machine.travel(T0, tick=False):
        patient_break_glass(user=doctor, patient_id=patient.pk, reason="coma", entry_point=REST)

    with time_machine.travel(T0 + dt.timedelta(hours=4), tick=False):
        visible = list(visible_patients(doctor))
        active = break_glass_grant_active(user=doctor, patient_id=patient.pk)
        with pytest.raises(PatientNotFound):
            access_patient(user=doctor, patient_id=patient.pk)

    assert visible == []
    assert active is None
    assert [g.reason for g in break_glass_grant_list(patient_id=patient.pk)] == ["coma"]


@override_settings(BREAK_GLASS_DURATION=dt.timedelta(minutes=30))
def test_the_duration_is_a_setting(doctor):
    patient = PatientFactory.create()

    with time_machine.travel(T0, tick=False):
        grant = patient_break_glass(
            user=doctor, patient_id=patient.pk, reason="coma", entry_point=REST
        )

    assert grant.expires_at == T0 + dt.timedelta(minutes=30)


def test_the_grant_and_its_audit_event_are_written_together(doctor):
    patient = PatientFactory.create()

    grant = patient_break_glass(
        user=doctor, patient_id=patient.pk, reason="coma", entry_point=REST,
        client_address="192.0.2.1",
    )  # fmt: skip

    event = AuditEvent.objects.get()
    assert (event.action, event.purpose, event.patient_id, event.client_address) == (
        "break_glass",
        "emergency",
        patient.pk,
        "192.0.2.1",
    )
    assert event.detail["grant"] == grant.pk


def test_someone_who_already_sees_the_patient_cannot_break_the_glass(doctor):
    patient = PatientFactory.create()
    patient_access_grant(patient=patient, perms=["view_patient"], user=doctor, actor=None)
    before = AuditEvent.objects.count()

    with pytest.raises(Conflict):
        patient_break_glass(user=doctor, patient_id=patient.pk, reason="coma", entry_point=REST)

    assert BreakGlassGrant.objects.count() == 0
    assert AuditEvent.objects.count() == before


def test_a_second_break_while_the_first_is_open_is_a_conflict(doctor):
    patient = PatientFactory.create()
    patient_break_glass(user=doctor, patient_id=patient.pk, reason="coma", entry_point=REST)

    with pytest.raises(Conflict, match="already open until"):
        patient_break_glass(user=doctor, patient_id=patient.pk, reason="again", entry_point=REST)

    assert BreakGlassGrant.objects.count() == 1


def test_without_the_permission_nothing_is_granted(db):
    patient = PatientFactory.create()
    nurse = UserFactory.create(username="synthetic-nurse")

    with pytest.raises(NotAllowed):
        patient_break_glass(user=nurse, patient_id=patient.pk, reason="coma", entry_point=REST)

    assert BreakGlassGrant.objects.count() == 0
    assert AuditEvent.objects.count() == 0


def test_an_inactive_user_cannot_break_the_glass(doctor):
    patient = PatientFactory.create()
    doctor.is_active = False

    with pytest.raises(NotAllowed):
        patient_break_glass(user=doctor, patient_id=patient.pk, reason="coma", entry_point=REST)

    assert BreakGlassGrant.objects.count() == 0


def test_a_missing_patient_is_not_found(doctor):
    with pytest.raises(PatientNotFound):
        patient_break_glass(user=doctor, patient_id=999_999, reason="coma", entry_point=REST)

    assert BreakGlassGrant.objects.count() == 0


def test_a_reason_is_required(doctor):
    patient = PatientFactory.create()

    with pytest.raises(InvalidInput, match=r"^reason: required"):
        patient_break_glass(user=doctor, patient_id=patient.pk, reason="  ", entry_point=REST)

    assert BreakGlassGrant.objects.count() == 0
    assert AuditEvent.objects.count() == 0


def test_visible_patients_stays_one_query_with_grants(doctor, django_assert_num_queries):
    patients = [PatientFactory.create() for _ in range(3)]
    for p in patients:
        patient_break_glass(user=doctor, patient_id=p.pk, reason="mass casualty", entry_point=REST)
    list(visible_patients(doctor))

    with django_assert_num_queries(1):
        visible = list(visible_patients(doctor))

    assert {p.pk for p in visible} == {p.pk for p in patients}
    assert all(timezone.now() < g.expires_at for g in BreakGlassGrant.objects.all())
