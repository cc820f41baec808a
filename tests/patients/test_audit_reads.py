"""Reads of several patients' rows at once (a list page): one record per patient, one
INSERT, queryable in each patient's trail."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission

from patients.errors import InvalidAuditRecord
from patients.models import AuditEvent
from patients.selectors import audit_events_for_patient
from patients.services import audit_chain_extend, patient_access_grant, patient_break_glass
from patients.services.audit_reads import MAX_IDS, audit_reads_record
from tests.patients.conftest import T0
from tests.patients.factories import PatientFactory, UserFactory

REST = AuditEvent.EntryPoint.REST


def records(**filters: object) -> list[tuple[object, ...]]:
    rows = AuditEvent.objects.filter(action="search", **filters).order_by("id")
    return [(e.patient_id, e.outcome, e.purpose, e.resource_id, e.detail.get("ids")) for e in rows]


@pytest.mark.django_db
def test_a_page_of_rows_is_recorded_once_per_patient_with_the_ids_of_its_rows(nurse):
    first, second = PatientFactory.create(), PatientFactory.create()

    audit_reads_record(
        actor=nurse,
        entry_point=REST,
        resource_type="Task",
        rows=[(first.pk, 11), (second.pk, 12), (first.pk, 13), (None, 14)],
        detail={"view": "mine"},
        now=T0,
    )

    assert records() == [
        (first.pk, "success", "care_coordination", "", [11, 13]),
        (second.pk, "success", "care_coordination", "12", [12]),
    ]
    assert {e.detail["view"] for e in AuditEvent.objects.all()} == {"mine"}
    assert set(AuditEvent.objects.values_list("actor_id", "entry_point", "resource_type")) == {
        (nurse.pk, "rest", "Task")
    }


@pytest.mark.django_db
def test_the_records_of_a_page_take_one_insert_whatever_its_length(
    nurse, django_assert_num_queries
):
    patients = PatientFactory.create_batch(30)
    rows = [(p.pk, n) for n, p in enumerate(patients * 3)]

    with django_assert_num_queries(2):  # the reader's break-the-glass grants, one INSERT
        audit_reads_record(actor=nurse, entry_point=REST, resource_type="Task", rows=rows)

    assert AuditEvent.objects.count() == 30


@pytest.mark.django_db
def test_each_record_lands_in_its_patients_trail(nurse):
    first, second = PatientFactory.create(), PatientFactory.create()

    audit_reads_record(
        actor=nurse,
        entry_point=REST,
        resource_type="Patient",
        rows=[(first.pk, first.pk), (second.pk, second.pk)],
        now=T0,
    )
    audit_chain_extend()

    trail = audit_events_for_patient(second.pk, T0 - dt.timedelta(hours=1), T0 + dt.timedelta(1))
    assert [(e.action, e.resource_type, e.resource_id) for e in trail] == [
        ("search", "Patient", str(second.pk))
    ]


@pytest.mark.django_db
def test_a_patient_opened_by_breaking_the_glass_is_recorded_as_an_emergency(nurse):
    doctor = UserFactory.create(username="synthetic-doctor")
    doctor.user_permissions.add(Permission.objects.get(codename="break_glass_patient"))
    opened, granted = PatientFactory.create(), PatientFactory.create()
    patient_access_grant(patient=granted, perms=["view_patient"], user=doctor, actor=None)
    grant = patient_break_glass(user=doctor, patient_id=opened.pk, reason="coma", entry_point=REST)

    audit_reads_record(
        actor=doctor,
        entry_point=REST,
        resource_type="Patient",
        rows=[(granted.pk, granted.pk), (opened.pk, opened.pk)],
    )

    assert [(p, purpose) for p, _, purpose, _, _ in records()] == [
        (granted.pk, "care_coordination"),
        (opened.pk, "emergency"),
    ]
    assert AuditEvent.objects.get(action="search", patient=opened).detail["break_glass_grant"] == (
        grant.pk
    )


@pytest.mark.django_db
def test_a_search_restricted_to_a_patient_the_reader_may_not_see_is_recorded_as_denied(nurse):
    stranger = PatientFactory.create()

    audit_reads_record(
        actor=nurse,
        entry_point=REST,
        resource_type="Task",
        rows=[],
        searched_patient_id=stranger.pk,
    )

    assert records() == [(stranger.pk, "denied", "care_coordination", "", [])]


@pytest.mark.django_db
def test_an_empty_search_restricted_to_a_visible_patient_is_a_success_under_it(nurse, patient):
    patient_access_grant(patient=patient, perms=["view_patient"], user=nurse, actor=None)

    audit_reads_record(
        actor=nurse, entry_point=REST, resource_type="Task", rows=[], searched_patient_id=patient.pk
    )

    assert records() == [(patient.pk, "success", "care_coordination", "", [])]


@pytest.mark.django_db
def test_a_search_restricted_to_a_missing_patient_keeps_the_id_in_the_detail(nurse):
    audit_reads_record(
        actor=nurse, entry_point=REST, resource_type="Task", rows=[], searched_patient_id=987654
    )

    event = AuditEvent.objects.get()
    assert (event.patient_id, event.outcome, event.detail["requested_patient_id"]) == (
        None,
        "not_found",
        "987654",
    )


@pytest.mark.django_db
def test_a_searched_patient_whose_rows_were_read_gets_no_second_record(nurse, patient):
    audit_reads_record(
        actor=nurse,
        entry_point=REST,
        resource_type="Task",
        rows=[(patient.pk, 1), (patient.pk, 2)],
        searched_patient_id=patient.pk,
    )

    assert records() == [(patient.pk, "success", "care_coordination", "", [1, 2])]


@pytest.mark.django_db
def test_a_search_that_read_nothing_still_says_who_searched_what(nurse):
    audit_reads_record(
        actor=nurse, entry_point=REST, resource_type="Task", rows=[], detail={"view": "overdue"}
    )

    event = AuditEvent.objects.get()
    assert (event.patient_id, event.action, event.detail) == (None, "search", {"view": "overdue"})


@pytest.mark.django_db
def test_a_given_purpose_is_kept_for_every_record(nurse, patient):
    audit_reads_record(
        actor=nurse,
        entry_point=AuditEvent.EntryPoint.ADMIN,
        resource_type="AuditEvent",
        rows=[(patient.pk, 5)],
        purpose=AuditEvent.Purpose.AUDIT,
    )

    assert records() == [(patient.pk, "success", "audit", "5", [5])]


@pytest.mark.django_db
def test_more_ids_than_a_page_holds_are_cut_and_counted(nurse, patient):
    audit_reads_record(
        actor=nurse,
        entry_point=REST,
        resource_type="Observation",
        rows=[(patient.pk, n) for n in range(MAX_IDS + 5)],
    )

    detail = AuditEvent.objects.get().detail
    assert (len(detail["ids"]), detail["ids_total"]) == (MAX_IDS, MAX_IDS + 5)


@pytest.mark.django_db
def test_invalid_arguments_are_refused_before_anything_is_written(nurse, patient):
    with pytest.raises(InvalidAuditRecord) as refused:
        audit_reads_record(
            actor=nurse,
            entry_point="carrier-pigeon",
            resource_type="Task",
            rows=[(patient.pk, 1)],
            client_address="not an address",
        )

    # Every problem, each once however many records the page would have made.
    assert [p.location for p in refused.value.problems] == ["client_address", "entry_point"]
    with pytest.raises(InvalidAuditRecord) as refused:
        audit_reads_record(
            actor=nurse,
            entry_point="carrier-pigeon",
            resource_type="Task",
            rows=[(patient.pk, 1), (PatientFactory.create().pk, 2)],
        )

    assert [p.location for p in refused.value.problems] == ["entry_point"]
    assert not AuditEvent.objects.filter(action="search").exists()


@pytest.mark.django_db
def test_a_detail_too_long_for_a_record_is_refused_before_anything_is_written(nurse, patient):
    with pytest.raises(InvalidAuditRecord) as refused:
        audit_reads_record(
            actor=nurse,
            entry_point=REST,
            resource_type="Task",
            rows=[(patient.pk, "é" * 1500), (patient.pk, "x" * 1500)],  # 4,500 bytes
        )

    assert [p.location for p in refused.value.problems] == ["detail"]
    assert not AuditEvent.objects.filter(action="search").exists()
