"""Instances read from hand-written SQL (core.sql) are the ORM's instances."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, NotSupportedError, ProgrammingError, connection, transaction
from django.db.models import Model
from django.db.models.signals import post_save
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from coordination.models import CarePathway, Task, TaskEvent
from core.sql import (
    attach,
    column,
    from_row,
    kept_cursor,
    related_model,
    rows_insert,
    rows_insert_columns,
    rows_update,
    select_list,
    statement,
    table,
)
from live.models import OutboxEvent
from patients.models import AuditEvent, Patient
from tests.coordination.conftest import Scene


def values(instance: Model) -> list[object]:
    return [getattr(instance, f.attname) for f in instance._meta.concrete_fields]


def read(sql: str, params: list[int]) -> tuple[object, ...]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    assert row is not None
    return row


def test_a_row_becomes_the_instance_the_orm_reads_with_converted_values(scene: Scene):
    # AuditEvent has date-times, JSON and choices: each needs the backend's converters.
    event = AuditEvent.objects.filter(patient=scene.patient).order_by("pk").first()
    assert event is not None
    row = read(
        f"SELECT {select_list(AuditEvent, 'e')} FROM {table(AuditEvent)} e "
        f"WHERE e.{column(AuditEvent, 'pk')} = %s",
        [event.pk],
    )
    instance, end = from_row(AuditEvent, row)
    assert end == len(row) == len(AuditEvent._meta.concrete_fields)
    assert instance is not None
    assert values(instance) == values(event)
    assert instance._state.adding is False


def test_joined_rows_are_cached_as_select_related_and_an_absent_one_is_none(scene: Scene):
    task = Task.objects.filter(care_pathway=scene.pathway).order_by("pk").first()
    assert task is not None
    Task.objects.filter(pk=task.pk).update(care_pathway=None)
    row = read(
        f"SELECT {select_list(Task, 't')}, {select_list(CarePathway, 'c')}, "
        f"{select_list(Patient, 'p')} FROM {table(Task)} t "
        f"LEFT JOIN {table(CarePathway)} c ON c.id = t.{column(Task, 'care_pathway')} "
        f"JOIN {table(Patient)} p ON p.id = t.{column(Task, 'patient')} WHERE t.id = %s",
        [task.pk],
    )
    instance, end = from_row(Task, row)
    pathway, end = from_row(CarePathway, row, end)
    patient, end = from_row(related_model(Task, "patient"), row, end)
    assert instance is not None
    assert pathway is None
    assert end == len(row)
    attach(instance, "care_pathway", pathway)
    attach(instance, "patient", patient)
    expected = Patient.objects.get(pk=scene.patient.pk)
    with CaptureQueriesContext(connection) as queries:
        assert instance.care_pathway is None
        assert values(instance.patient) == values(expected)
    assert len(queries) == 0


def test_names_that_are_no_column_or_no_forward_relation_are_refused():
    with pytest.raises(ValueError, match="is not a column"):
        column(Patient, "care_team")  # reverse/many-to-many: no column of its own
    with pytest.raises(ValueError, match="is not a forward relation"):
        related_model(Patient, "family_name")
    assert column(Task, "pk") == connection.ops.quote_name("id")
    assert column(Task, "patient") == connection.ops.quote_name("patient_id")


def test_inserted_rows_get_their_keys_and_read_back_as_given(scene: Scene):
    task = Task.objects.filter(care_pathway=scene.pathway).order_by("pk").first()
    assert task is not None
    now = timezone.now()
    entries = [
        TaskEvent(
            task=task, version=task.version + n, action="note", from_status=task.status,
            to_status=task.status, actor_label="system", detail={"n": n, "text": "é"},
            occurred_at=now,
        )
        for n in (1, 2)
    ]  # fmt: skip

    rows_insert(entries)

    assert all(e.pk is not None and not e._state.adding for e in entries)
    assert entries[0].pk != entries[1].pk
    for entry in entries:
        assert values(TaskEvent.objects.get(pk=entry.pk)) == values(entry)


def test_an_insert_is_refused_for_saved_rows_or_mixed_models(scene: Scene):
    saved = TaskEvent.objects.filter(task__care_pathway=scene.pathway).first()
    assert saved is not None
    count = TaskEvent.objects.count()
    with pytest.raises(ValueError, match="already has a primary key"):
        rows_insert([saved])
    with pytest.raises(ValueError, match="one model"):
        rows_insert([TaskEvent(), OutboxEvent()])
    assert TaskEvent.objects.count() == count


def test_rows_inserted_by_columns_read_back_as_the_orm_writes_them(scene: Scene):
    now = timezone.now()
    shared = {
        "occurred_at": now, "actor_id": scene.nurse.user.pk, "actor_label": "nurse",
        "action": "search", "resource_type": "Task", "entry_point": "rest",
        "client_address": None,
    }  # fmt: skip
    varying: dict[str, list[object]] = {
        "patient_id": [scene.patient.pk, None],
        "resource_id": ["7", ""],
        "purpose": ["care_coordination", "emergency"],
        "outcome": ["success", "denied"],
        "detail": [{"ids": [7], "text": "é"}, {}],
    }
    expected = [
        AuditEvent.objects.create(**shared, **{k: v[i] for k, v in varying.items()})
        for i in range(2)
    ]
    last = expected[-1].pk

    with CaptureQueriesContext(connection) as queries:
        written = rows_insert_columns(AuditEvent, shared=shared, varying=varying)

    assert written == 2
    assert len(queries) == 1
    stored = list(AuditEvent.objects.filter(pk__gt=last).order_by("pk"))
    assert [values(e)[1:] for e in stored] == [values(e)[1:] for e in expected]  # but the id


def test_the_text_of_an_insert_by_columns_does_not_grow_with_its_rows(postgres_only, scene: Scene):
    def statement(rows: int) -> str:
        with CaptureQueriesContext(connection) as queries:
            rows_insert_columns(
                AuditEvent,
                shared={"occurred_at": timezone.now(), "actor_label": "x", "action": "search",
                        "resource_type": "Task", "purpose": "audit", "outcome": "success",
                        "entry_point": "rest"},
                varying={"patient_id": [scene.patient.pk] * rows, "detail": [{}] * rows},
            )  # fmt: skip
        return str(queries[0]["sql"]).split(" SELECT ")[0]

    assert statement(1) == statement(150)


def test_an_insert_by_columns_refuses_unknown_fields_and_uneven_columns(scene: Scene):
    with pytest.raises(ValueError, match="unknown or repeated"):
        rows_insert_columns(AuditEvent, shared={"nonsense": 1}, varying={"detail": [{}]})
    with pytest.raises(ValueError, match="unknown or repeated"):
        rows_insert_columns(AuditEvent, shared={"detail": {}}, varying={"detail": [{}]})
    with pytest.raises(ValueError, match="one length"):
        rows_insert_columns(AuditEvent, shared={}, varying={"detail": [{}], "resource_id": []})


def test_an_insert_by_columns_takes_text_integers_or_none_outside_json_fields(
    postgres_only, scene: Scene
):
    count = AuditEvent.objects.count()
    with pytest.raises(ValueError, match="text, integers or None"):
        rows_insert_columns(
            AuditEvent, shared={"actor_label": "x"}, varying={"occurred_at": [timezone.now()]}
        )
    with pytest.raises(ValueError, match="text, integers or None"):
        rows_insert_columns(AuditEvent, shared={"actor_label": "x"}, varying={"patient_id": [True]})
    assert AuditEvent.objects.count() == count


def test_updated_rows_change_only_the_given_columns(scene: Scene):
    tasks = list(Task.objects.filter(care_pathway=scene.pathway).order_by("pk"))
    for n, task in enumerate(tasks):
        task.note, task.output, task.title = f"note {n}", {"n": n}, "not written"

    rows_update(tasks, ["note", "output"])

    for n, task in enumerate(tasks):
        stored = Task.objects.get(pk=task.pk)
        assert (stored.note, stored.output) == (f"note {n}", {"n": n})
        assert stored.title != "not written"


@pytest.mark.django_db(transaction=True)
def test_the_kept_cursor_is_reused_until_the_connection_changes():
    with kept_cursor() as first:
        first.execute("SELECT 1")
    with kept_cursor() as again:
        again.execute("SELECT 2")
        assert again.fetchone() == (2,)
    assert again is first

    connection.close()
    with kept_cursor() as after_close:
        after_close.execute("SELECT 3")
        assert after_close.fetchone() == (3,)
    assert after_close is not first


def test_recorded_queries_go_through_a_fresh_recording_cursor(db):
    with kept_cursor() as kept:
        kept.execute("SELECT 1")
    with CaptureQueriesContext(connection) as queries, kept_cursor() as recording:
        recording.execute("SELECT 2")
    assert recording is not kept
    assert [q["sql"] for q in queries] == ["SELECT 2"]


def test_each_use_of_the_kept_cursor_is_its_own():
    assert kept_cursor() is not kept_cursor()


@pytest.mark.django_db(transaction=True)
def test_two_threads_recording_queries_do_not_close_each_other_s_cursor():
    # A enters, B enters, A leaves, then B runs its statement: when uses shared one instance,
    # A's leaving closed B's cursor ("Cannot operate on a closed cursor", then a crash).
    step = threading.Barrier(2, timeout=10)
    answers: dict[str, object] = {}

    def use(name: str, leaves_first: bool) -> None:
        connection.force_debug_cursor = True  # record queries, as DEBUG does
        try:
            with kept_cursor() as cursor:
                step.wait()  # both inside
                if not leaves_first:
                    step.wait()  # the other one has left
                cursor.execute("SELECT %s", [name])
                answers[name] = cursor.fetchone()
            if leaves_first:
                step.wait()
        except Exception as exc:  # recorded for the assertion below, in the main thread
            answers[name] = exc
            step.abort()
        finally:
            connection.close()

    threads = [
        threading.Thread(target=use, args=("a", True)),
        threading.Thread(target=use, args=("b", False)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert answers == {"a": ("a",), "b": ("b",)}


def test_errors_through_the_kept_cursor_are_django_s(scene: Scene):
    task = Task.objects.filter(care_pathway=scene.pathway).first()
    assert task is not None
    entry = TaskEvent.objects.filter(task=task).first()
    assert entry is not None
    duplicate = TaskEvent(
        task=task, version=entry.version, action="note", to_status=task.status,
        actor_label="system", occurred_at=timezone.now(),
    )  # fmt: skip
    with pytest.raises(IntegrityError), transaction.atomic():
        rows_insert([duplicate])  # (task, version) is unique
    assert TaskEvent.objects.filter(task=task, version=entry.version).count() == 1


def test_a_model_with_save_receivers_is_refused_and_nothing_is_written(db):
    def receiver(**kwargs: object) -> None:  # pragma: no cover - must never be called
        raise AssertionError("rows_insert sends no signal")

    stored = OutboxEvent.objects.create(type="test.stored", occurred_at=timezone.now())
    event = OutboxEvent(type="test.new", occurred_at=timezone.now())
    post_save.connect(receiver, sender=OutboxEvent, dispatch_uid="test-rows-refused")
    try:
        with pytest.raises(ImproperlyConfigured, match=r"live\.OutboxEvent has save signal"):
            rows_insert([event])
        stored.attempts = 5
        with pytest.raises(ImproperlyConfigured, match="write it with the ORM"):
            rows_update([stored], ["attempts"])
        with pytest.raises(ImproperlyConfigured):
            rows_insert_columns(
                OutboxEvent, shared={"occurred_at": timezone.now()}, varying={"type": ["x"]}
            )
    finally:
        post_save.disconnect(sender=OutboxEvent, dispatch_uid="test-rows-refused")
    assert list(OutboxEvent.objects.values_list("type", "attempts")) == [("test.stored", 0)]
    rows_insert([event])  # without the receiver, written
    assert OutboxEvent.objects.filter(type="test.new").count() == 1


def test_a_statement_text_is_built_once_per_arguments():
    built: list[tuple[str, bool]] = []

    @statement
    def text(name: str, *, locked: bool = False) -> str:
        built.append((name, locked))
        return f"SELECT {name}{' FOR UPDATE' if locked else ''}"

    assert text("a") == text("a") == "SELECT a"
    assert text("a", locked=True) == "SELECT a FOR UPDATE"
    assert text("b") == "SELECT b"
    assert built == [("a", False), ("a", True), ("b", False)]


@pytest.mark.django_db(transaction=True)
def test_the_prepared_cursor_is_kept_per_connection_and_its_errors_are_django_s():
    if connection.vendor != "postgresql":
        with pytest.raises(NotSupportedError), kept_cursor(prepared=True):
            pass  # pragma: no cover
        return
    with kept_cursor(prepared=True) as first:
        first.execute("SELECT %s::int", [1], prepare=True)
        assert first.fetchone() == (1,)
    with kept_cursor(prepared=True) as again:
        again.execute("SELECT %s::int", [2], prepare=True)
        assert again.fetchone() == (2,)
    assert again is first
    with pytest.raises(ProgrammingError), kept_cursor(prepared=True) as broken:
        broken.execute("SELECT * FROM no_such_table")
    connection.close()
    with kept_cursor(prepared=True) as after_close:
        after_close.execute("SELECT 3")
        assert after_close.fetchone() == (3,)
    assert after_close is not first
