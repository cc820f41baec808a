from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.contrib import admin
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.db.models import ProtectedError
from django.test import RequestFactory

from patients.errors import InvalidAuditRecord, InvalidRange
from patients.models import HASHED_FIELDS, AuditChainHead, AuditEvent, Patient
from patients.selectors import audit_chain_verify, audit_events_for_patient
from patients.services import audit_chain_extend, audit_record, patient_create
from tests.patients.conftest import T0
from tests.patients.factories import PatientFactory, UserFactory

Action, Purpose, EntryPoint = AuditEvent.Action, AuditEvent.Purpose, AuditEvent.EntryPoint
TABLE = AuditEvent._meta.db_table


def read(actor, patient, at=T0, **extra):
    return audit_record(
        actor=actor,
        action=Action.READ,
        resource_type="Patient",
        resource_id=patient.pk,
        patient_id=patient.pk,
        purpose=Purpose.TREATMENT,
        entry_point=EntryPoint.REST,
        now=at,
        **extra,
    )


def verify(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("verify_audit", *args, stdout=out)
    except SystemExit as exc:
        return int(str(exc.code)), out.getvalue()
    return 0, out.getvalue()


@pytest.fixture
def intact(audit_checkpoint_dir):
    """What verify_audit prints for an intact chain of `records` records verified for the
    first time: no checkpoint yet, and one written (when there is a record to anchor)."""

    def output(records: int) -> str:
        lines = [
            f"audit chain intact: {records} records",
            f"no checkpoint in {audit_checkpoint_dir} yet: nothing outside the database "
            "vouches for the chain",
        ]
        if records:
            written = audit_checkpoint_dir / "audit-checkpoints.jsonl"
            lines.append(f"checkpoint written: seq {records} in {written}")
        return "\n".join(lines) + "\n"

    return output


@contextmanager
def append_only_lifted() -> Iterator[None]:
    """Lets a test tamper with the trail as a database owner could. On PostgreSQL the trigger
    is disabled inside the test's transaction, which is rolled back afterwards."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        # Deferred foreign-key checks of the rows just inserted must run before ALTER TABLE.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER patients_audit_append_only")
    yield
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER patients_audit_append_only")


def chained(records: list[AuditEvent]) -> list[AuditEvent]:
    """The records as stored once the chainer has run."""
    audit_chain_extend()
    return [AuditEvent.objects.get(pk=r.pk) for r in records]


@pytest.fixture
def three_records(patient, nurse):
    return chained([read(nurse, patient, T0 + dt.timedelta(minutes=i)) for i in range(3)])


@pytest.mark.django_db
def test_a_record_is_written_unchained_and_takes_no_lock(patient, nurse, django_assert_num_queries):
    with django_assert_num_queries(2):  # the patient looked up, the INSERT
        record = read(nurse, patient)

    stored = AuditEvent.objects.get(pk=record.pk)
    assert (stored.seq, stored.prev_hash, stored.hash) == (None, "", "")
    assert AuditChainHead.objects.count() == 0


@pytest.mark.django_db
def test_a_caller_that_checked_the_patient_spares_the_lookup(
    patient, nurse, django_assert_num_queries
):
    with django_assert_num_queries(1):
        record = read(nurse, patient, patient_checked=True)

    assert AuditEvent.objects.get(pk=record.pk).patient_id == patient.pk


@pytest.mark.django_db
def test_records_are_chained_by_seq_and_prev_hash(three_records):
    first, second, third = three_records

    assert [r.seq for r in three_records] == [1, 2, 3]
    assert first.prev_hash == "0" * 64
    assert (second.prev_hash, third.prev_hash) == (first.hash, second.hash)
    head = AuditChainHead.objects.get()
    assert (head.last_seq, head.last_hash) == (3, third.hash)


@pytest.mark.django_db
def test_an_auditor_with_the_key_can_recompute_the_hash_from_the_documented_recipe(patient, nurse):
    record = audit_record(
        actor=nurse,
        action=Action.READ,
        resource_type="Patient",
        resource_id=patient.pk,
        patient_id=patient.pk,
        purpose=Purpose.CARE_COORDINATION,
        entry_point=EntryPoint.WEB,
        client_address="2001:DB8:0:0:0:0:0:1",
        detail={"reason": "visite à domicile", "fields": ["city", "phone"], "n": 2},
        now=dt.datetime(2026, 3, 2, 9, 30, 15, 123, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    )
    (stored,) = chained([record])

    members = {
        "seq": 1,
        "occurred_at": "2026-03-02T08:30:15.000123Z",
        "actor_id": nurse.pk,
        "actor_label": "synthetic-nurse",
        "action": "read",
        "resource_type": "Patient",
        "resource_id": str(patient.pk),
        "patient_id": patient.pk,
        "purpose": "care_coordination",
        "outcome": "success",
        "entry_point": "web",
        "client_address": "2001:db8::1",
        "detail": {"fields": ["city", "phone"], "n": 2, "reason": "visite à domicile"},
    }
    text = json.dumps(members, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    key = settings.AUDIT_CHAIN_KEY.encode("utf-8")
    key_id = hmac.new(key, b"parcours audit chain key id", hashlib.sha256).hexdigest()[:16]
    assert stored.key_id == key_id
    assert stored.hash == hmac.new(key, ("0" * 64 + text).encode("utf-8"), "sha256").hexdigest()
    assert tuple(stored.canonical_record()) == HASHED_FIELDS
    assert stored.client_address == "2001:db8::1"


@pytest.mark.django_db
def test_verify_audit_reports_an_intact_chain(three_records, intact):
    assert verify() == (0, intact(3))


@pytest.mark.django_db
def test_verify_audit_on_an_empty_trail_is_intact(db, intact):
    assert verify() == (0, intact(0))


@pytest.mark.django_db
def test_verify_audit_chains_the_records_waiting_for_it_first(patient, nurse, intact):
    read(nurse, patient)
    read(nurse, patient)

    assert verify() == (0, intact(2))
    assert list(AuditEvent.objects.values_list("seq", flat=True)) == [1, 2]


@pytest.mark.django_db
def test_records_not_chained_yet_are_counted_apart(three_records, patient, nurse):
    read(nurse, patient)

    report = audit_chain_verify()

    assert (report.intact, report.records, report.pending) == (True, 3, 1)
    assert str(report) == "audit chain intact: 3 records; 1 more not chained yet"


@pytest.mark.django_db
def test_chaining_continues_from_the_head(three_records, patient, nurse):
    (fourth,) = chained([read(nurse, patient)])

    assert (fourth.seq, fourth.prev_hash) == (4, three_records[2].hash)
    assert audit_chain_extend() == 0
    assert str(audit_chain_verify()) == "audit chain intact: 4 records"


@pytest.mark.django_db
def test_chaining_takes_at_most_its_limit_in_recording_order(patient, nurse):
    records = [read(nurse, patient, T0 + dt.timedelta(seconds=i)) for i in range(5)]

    assert audit_chain_extend(limit=3) == 3
    assert audit_chain_extend(limit=3) == 2

    assert [AuditEvent.objects.get(pk=r.pk).seq for r in records] == [1, 2, 3, 4, 5]


@pytest.mark.django_db
def test_verify_audit_reads_in_chunks(patient, nurse, django_assert_num_queries):
    chained([read(nurse, patient, T0 + dt.timedelta(seconds=i)) for i in range(5)])

    # The head, then records 1-2, 3-4 and 5, then the count of records not chained yet.
    with django_assert_num_queries(5):
        report = audit_chain_verify(chunk_size=2)

    assert str(report) == "audit chain intact: 5 records"


@pytest.mark.django_db
def test_an_altered_record_breaks_the_chain_at_its_seq(three_records):
    with append_only_lifted(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET resource_id = %s WHERE seq = %s", ["999", 2])

    code, output = verify()

    assert code == 1
    assert output.startswith("audit chain broken at seq 2: hash mismatch: stored ")
    assert f"stored {three_records[1].hash}" in output


@pytest.mark.django_db
def test_a_rehashed_forgery_breaks_the_next_link(three_records):
    forged = AuditEvent.objects.get(seq=2)
    forged.resource_id = "999"
    with append_only_lifted(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET resource_id = %s, hash = %s WHERE seq = %s",
            ["999", forged.compute_hash(settings.AUDIT_CHAIN_KEY.encode()), 2],
        )

    code, output = verify()

    assert code == 1
    assert output.startswith("audit chain broken at seq 3: prev_hash ")


@pytest.mark.django_db
def test_a_deleted_record_is_reported_as_missing(three_records):
    with append_only_lifted(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE seq = %s", [2])

    assert verify() == (
        1,
        "audit chain broken at seq 2: record missing (the next stored record is seq 3)\n",
    )


@pytest.mark.django_db
def test_a_cut_tail_is_reported_against_the_chain_head(three_records):
    with append_only_lifted(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE seq = %s", [3])

    assert verify() == (
        1,
        "audit chain broken at seq 3: record missing (the chain head says the last seq is 3)\n",
    )


@pytest.mark.django_db
def test_postgresql_refuses_to_update_or_delete_audit_records(postgres_only, three_records, intact):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(seq=2).update(resource_id="999")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(seq=2).update(hash="0" * 64)  # chained already
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(seq=2).delete()

    assert AuditEvent.objects.get(seq=2).resource_id == str(three_records[1].resource_id)
    assert verify() == (0, intact(3))


@pytest.mark.django_db
def test_postgresql_lets_chaining_set_nothing_but_the_chain(postgres_only, patient, nurse):
    record = read(nurse, patient)
    unchained = AuditEvent.objects.filter(pk=record.pk)

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        unchained.update(seq=1, prev_hash="0" * 64, hash="1" * 64, resource_id="999")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        unchained.update(resource_id="999")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        unchained.delete()

    assert audit_chain_extend() == 1
    assert AuditEvent.objects.get(pk=record.pk).resource_id == str(patient.pk)


@pytest.mark.django_db
def test_the_audit_of_a_rolled_back_change_is_not_written(nurse, intact):
    def change_then_fail() -> None:
        with transaction.atomic():
            patient_create(
                family_name="Patient 1",
                given_names="Synthetic",
                birth_date=dt.date(1980, 1, 15),
                sex="female",
                actor=nurse,
                entry_point=EntryPoint.WEB,
            )
            assert AuditEvent.objects.count() == 1
            raise RuntimeError("the caller's transaction fails after the service")

    with pytest.raises(RuntimeError):
        change_then_fail()

    assert Patient.objects.count() == 0
    assert AuditEvent.objects.count() == 0
    assert AuditChainHead.objects.filter(last_seq__gt=0).count() == 0
    assert verify() == (0, intact(0))


@pytest.mark.django_db
def test_a_refusal_recorded_after_the_rollback_continues_the_chain(patient, nurse, intact):
    read(nurse, patient)

    def read_then_fail() -> None:
        with transaction.atomic():
            read(nurse, patient)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        read_then_fail()

    (refusal,) = chained([read(nurse, patient, outcome=AuditEvent.Outcome.DENIED)])

    assert (refusal.seq, refusal.outcome) == (2, "denied")
    assert verify() == (0, intact(2))


@pytest.mark.django_db
def test_access_to_a_missing_patient_is_recorded_without_a_patient(nurse):
    event = audit_record(
        actor=nurse,
        action=Action.READ,
        resource_type="Patient",
        resource_id="424242",
        patient_id=424242,
        purpose=Purpose.TREATMENT,
        outcome=AuditEvent.Outcome.NOT_FOUND,
        entry_point=EntryPoint.FHIR,
    )

    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.patient_id, stored.detail) == (None, {"requested_patient_id": "424242"})
    assert verify()[0] == 0


@pytest.mark.django_db
def test_system_actors_are_labelled(patient):
    labelled = audit_record(
        actor=None,
        actor_label="client:synthetic-platform",
        action=Action.SEARCH,
        resource_type="Patient",
        purpose=Purpose.CARE_COORDINATION,
        entry_point=EntryPoint.FHIR,
    )
    unlabelled = audit_record(
        actor=None,
        action=Action.EXPORT,
        resource_type="Observation",
        purpose=Purpose.AUDIT,
        entry_point=EntryPoint.CLI,
    )

    assert (labelled.actor_id, labelled.actor_label) == (None, "client:synthetic-platform")
    assert unlabelled.actor_label == "system"


@pytest.mark.django_db
def test_an_invalid_record_lists_every_problem_and_writes_nothing(patient, nurse):
    with pytest.raises(InvalidAuditRecord) as caught:
        audit_record(
            actor=nurse,
            action="peek",
            resource_type="",
            purpose="curiosity",
            entry_point=EntryPoint.REST,
            client_address="not-an-ip",
            detail={"weight": 72.5, "nested": {1: "x"}},
        )

    assert [str(p) for p in caught.value.problems] == [
        "action: 'peek' is not one of read, search, create, update, delete, export, login, "
        "break_glass, grant, revoke",
        "purpose: 'curiosity' is not one of treatment, care_coordination, emergency, "
        "patient_access, administration, audit",
        "resource_type: required",
        "detail.weight: a float cannot be hashed reproducibly; store it as a string",
        "detail.nested: key 1 is not a string",
        "client_address: 'not-an-ip' is not an IP address",
    ]
    assert AuditEvent.objects.count() == 0


@pytest.mark.django_db
def test_a_large_detail_is_refused(nurse):
    with pytest.raises(InvalidAuditRecord, match=r"^detail: 5008 bytes; at most 4096$"):
        audit_record(
            actor=nurse,
            action=Action.EXPORT,
            resource_type="Observation",
            purpose=Purpose.TREATMENT,
            entry_point=EntryPoint.REST,
            detail={"x": "y" * 5000},
        )


@pytest.mark.django_db
def test_a_user_with_audit_records_cannot_be_deleted(patient, intact):
    user = UserFactory.create()
    read(user, patient)

    with pytest.raises(ProtectedError), transaction.atomic():
        user.delete()

    assert verify() == (0, intact(1))


@pytest.mark.django_db
def test_events_for_a_patient_are_bounded_by_dates(patient, nurse):
    other = PatientFactory.create()
    read(nurse, patient, T0 - dt.timedelta(days=1))
    inside = [read(nurse, patient, T0), read(nurse, patient, T0 + dt.timedelta(hours=1))]
    read(nurse, other, T0)
    read(nurse, patient, T0 + dt.timedelta(days=1))

    events = audit_events_for_patient(patient.pk, T0, T0 + dt.timedelta(days=1))

    assert [e.pk for e in events] == [e.pk for e in inside]


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        (T0, T0 + dt.timedelta(days=367), "is longer than 366 days; ask for a shorter one"),
        (T0, T0, "must be after since"),
        (dt.datetime(2026, 3, 2), T0, "since must be timezone-aware"),
    ],
)
@pytest.mark.django_db
def test_unbounded_or_inverted_ranges_are_refused(patient, since, until, message):
    with pytest.raises(InvalidRange, match=message):
        audit_events_for_patient(patient.pk, since, until)


@pytest.mark.django_db
def test_audit_events_are_strictly_read_only_in_the_admin(admin_user):
    request = RequestFactory().get("/admin/patients/auditevent/")
    request.user = admin_user
    model_admin = admin.site._registry[AuditEvent]

    assert model_admin.has_add_permission(request) is False
    assert model_admin.has_change_permission(request) is False
    assert model_admin.has_delete_permission(request) is False
    assert model_admin.get_actions(request) == {}
