"""The transition hot path: what makes it fast must not change what it does."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.workflows.conftest import TaskRecorder
from workflows.actors import SYSTEM, Actor
from workflows.errors import TransitionRefused
from workflows.models import HistoryEntry, PathwayInstance
from workflows.selectors import _LOCK_FIELDS
from workflows.services import instance_fire, instance_start
from workflows.services.instances import _ENTRY_FIELDS

NURSE = Actor.person("user:nurse", {"nurse"})


def prepared_executions() -> dict[str, int]:
    """How often each of the engine's statements ran prepared on this connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements")
        rows = cursor.fetchall()
    kinds = {"FOR UPDATE OF i": "lock", "WITH cancelled AS": "move"}
    counts: dict[str, int] = {}
    for statement, executions in rows:
        for marker, kind in kinds.items():
            if marker in statement:
                counts[kind] = counts.get(kind, 0) + executions
    return counts


def test_row_field_lists_follow_the_models_column_order():
    # `from_db` takes a full row positionally: a new column must be added to these lists too.
    assert [f.attname for f in PathwayInstance._meta.concrete_fields] == _LOCK_FIELDS
    assert [f.attname for f in HistoryEntry._meta.concrete_fields] == _ENTRY_FIELDS


def test_transition_statements_run_prepared_on_postgresql(postgres_only, follow_up, tasks):
    instance = instance_start(key="follow-up", actor=SYSTEM)
    before = prepared_executions()

    instance_fire(instance_id=instance.pk, event="tasks_completed", actor=SYSTEM)
    instance_fire(instance_id=instance.pk, event="note", actor=NURSE)
    instance_fire(instance_id=instance.pk, event="note", actor=NURSE)

    after = prepared_executions()
    assert after.get("lock", 0) - before.get("lock", 0) == 3
    assert after.get("move", 0) - before.get("move", 0) == 3


def test_other_queries_are_prepared_after_the_configured_threshold(postgres_only, follow_up, tasks):
    threshold = connection.settings_dict["OPTIONS"]["prepare_threshold"]
    assert threshold == 5  # DATABASE_PREPARE_THRESHOLD's default
    instance = instance_start(key="follow-up", actor=SYSTEM)
    instance_fire(instance_id=instance.pk, event="tasks_completed", actor=SYSTEM)
    assert connection.connection.prepare_threshold == threshold

    def counted() -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements")
            return [row[0] for row in cursor.fetchall() if "__count" in row[0]]

    for _ in range(threshold - 1):
        PathwayInstance.objects.filter(pk=instance.pk).count()
    assert counted() == []
    for _ in range(2):
        PathwayInstance.objects.filter(pk=instance.pk).count()
    assert len(counted()) == 1


def test_with_the_threshold_at_zero_nothing_is_prepared(postgres_only, follow_up, tasks):
    instance = instance_start(key="follow-up", actor=SYSTEM)
    instance_fire(instance_id=instance.pk, event="tasks_completed", actor=SYSTEM)  # prepared
    raw = connection.connection
    saved, raw.prepare_threshold = raw.prepare_threshold, None  # DATABASE_PREPARE_THRESHOLD=0
    try:
        before = prepared_executions()
        instance_fire(instance_id=instance.pk, event="note", actor=NURSE)
        instance_fire(instance_id=instance.pk, event="note", actor=NURSE)
        assert prepared_executions() == before
    finally:
        raw.prepare_threshold = saved
    assert list(
        HistoryEntry.objects.filter(instance_id=instance.pk)
        .order_by("revision")
        .values_list("revision", flat=True)
    ) == [1, 2, 3, 4]


def test_refused_fire_after_prepared_ones_writes_nothing(follow_up, tasks: TaskRecorder):
    instance = instance_start(key="follow-up", actor=SYSTEM)
    instance_fire(instance_id=instance.pk, event="tasks_completed", actor=SYSTEM)

    with pytest.raises(TransitionRefused, match="role not allowed"):
        instance_fire(instance_id=instance.pk, event="stop", actor=NURSE)
    result = instance_fire(instance_id=instance.pk, event="note", actor=NURSE, payload={"a": 1})

    assert result.entry.revision == 3
    assert list(
        HistoryEntry.objects.filter(instance_id=instance.pk)
        .order_by("revision")
        .values_list("revision", "event", "payload")
    ) == [(1, "start", {}), (2, "tasks_completed", {}), (3, "note", {"a": 1})]


def test_fire_result_entry_is_the_stored_row(follow_up, tasks):
    instance = instance_start(key="follow-up", actor=SYSTEM)
    instance_fire(instance_id=instance.pk, event="tasks_completed", actor=SYSTEM)

    result = instance_fire(
        instance_id=instance.pk, event="note", actor=NURSE, payload={"text": "called"}
    )

    stored = HistoryEntry.objects.get(pk=result.entry.pk)
    fields = [f.attname for f in HistoryEntry._meta.concrete_fields]
    assert [getattr(result.entry, f) for f in fields] == [getattr(stored, f) for f in fields]
    assert result.entry._state.adding is False
    assert result.entry.instance is result.instance


def test_payload_with_an_escaped_backslash_u0000_text_is_accepted(follow_up, tasks):
    instance = instance_start(key="follow-up", actor=SYSTEM)
    instance_fire(instance_id=instance.pk, event="tasks_completed", actor=SYSTEM)

    result = instance_fire(
        instance_id=instance.pk, event="note", actor=NURSE, payload={"text": "\\u0000"}
    )

    assert HistoryEntry.objects.get(pk=result.entry.pk).payload == {"text": "\\u0000"}


def test_instance_table_keeps_room_for_hot_updates_on_postgresql(postgres_only):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reloptions FROM pg_class WHERE relname = %s",
            [PathwayInstance._meta.db_table],
        )
        assert cursor.fetchone() == (["fillfactor=50"],)


def test_history_lookups_by_instance_use_the_unique_index(postgres_only):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname",
            [HistoryEntry._meta.db_table],
        )
        definitions = [row[0] for row in cursor.fetchall()]
    assert [d.split(" USING ")[1] for d in definitions] == [
        "btree (instance_id, revision)",
        "btree (id)",
    ]
