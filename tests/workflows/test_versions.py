from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command

from tests.workflows.conftest import FOLLOW_UP, PUBLISHER, publish
from workflows.actors import SYSTEM, Actor
from workflows.definition import InvalidDefinition
from workflows.errors import DefinitionConflict, MigrationRefused
from workflows.models import HistoryEntry, PathwayDefinition, PathwayInstance, Timer
from workflows.services import (
    definition_activate,
    definition_publish,
    definition_retire,
    definition_upload,
    instance_fire,
    instance_start,
    instances_migrate,
)

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
GP = Actor.person("user:gp", {"gp"})
# Version 2 renames nurse_review to triage and drops gp_review.
FOLLOW_UP_V2 = (
    FOLLOW_UP.replace("version: 1", "version: 2")
    .replace("nurse_review", "triage")
    .replace("review_due: gp_review", "review_due: monitoring")
    .replace("escalate: {to: gp_review", "escalate: {to: closed")
    .replace("no_answer: gp_review", "no_answer: closed")
)
FOLLOW_UP_V2 = FOLLOW_UP_V2[: FOLLOW_UP_V2.index("  gp_review:")] + "  closed: {final: true}\n"


@pytest.mark.django_db
def test_publish_stores_an_active_definition_with_checksum():
    result = definition_publish(source=FOLLOW_UP, actor=PUBLISHER, fmt="yaml")

    definition = PathwayDefinition.objects.get()
    assert (result.created, result.activated) == (True, True)
    assert (definition.key, definition.version, definition.status) == ("follow-up", 1, "active")
    assert definition.title == "Follow-up"
    assert len(definition.checksum) == 64
    assert definition.source == FOLLOW_UP


@pytest.mark.django_db
def test_publishing_identical_content_again_is_a_no_op():
    first = definition_publish(source=FOLLOW_UP, actor=PUBLISHER, fmt="yaml")
    reformatted = FOLLOW_UP.replace(
        "roles: [gp, nurse, coordinator]", "roles:\n  - gp\n  - nurse\n  - coordinator"
    )

    again = definition_publish(source=reformatted, actor=PUBLISHER, fmt="yaml")

    assert (again.created, again.activated) == (False, False)
    assert again.definition.pk == first.definition.pk
    assert PathwayDefinition.objects.get().source == FOLLOW_UP


@pytest.mark.django_db
def test_publishing_different_content_under_a_published_version_is_refused():
    publish(FOLLOW_UP)
    changed = FOLLOW_UP.replace("due: P2D", "due: P3D")

    with pytest.raises(DefinitionConflict, match="follow-up@1 is already active"):
        definition_publish(source=changed, actor=PUBLISHER, fmt="yaml")

    assert PathwayDefinition.objects.get().source == FOLLOW_UP


@pytest.mark.django_db
def test_a_draft_can_be_replaced_until_it_is_activated():
    definition_upload(source=FOLLOW_UP, actor=PUBLISHER, fmt="yaml")
    changed = FOLLOW_UP.replace("due: P2D", "due: P3D")

    replaced = definition_upload(source=changed, actor=PUBLISHER, fmt="yaml")
    definition_activate(key="follow-up", version=1, actor=PUBLISHER)

    assert (replaced.created, replaced.changed) == (False, True)
    definition = PathwayDefinition.objects.get()
    assert (definition.status, definition.source) == ("active", changed)


@pytest.mark.django_db
def test_invalid_source_is_refused_with_every_problem_and_stores_nothing():
    broken = FOLLOW_UP.replace("role: nurse, due: P2D", "role: nurze, due: P2X")

    with pytest.raises(InvalidDefinition) as refused:
        definition_publish(source=broken, actor=PUBLISHER, fmt="yaml")

    assert [p.location for p in refused.value.problems] == [
        "states.intake.on_enter.0.task.role",
        "states.intake.on_enter.0.task.due",
    ]
    assert PathwayDefinition.objects.count() == 0


@pytest.mark.django_db
def test_retired_versions_cannot_be_reactivated_and_republishing_them_is_a_no_op():
    publish(FOLLOW_UP)
    definition_retire(key="follow-up", version=1, actor=PUBLISHER)

    again = definition_publish(source=FOLLOW_UP, actor=PUBLISHER, fmt="yaml")
    with pytest.raises(DefinitionConflict, match="retired and cannot be reactivated"):
        definition_activate(key="follow-up", version=1, actor=PUBLISHER)

    assert (again.definition.status, again.activated) == ("retired", False)


@pytest.mark.django_db
def test_migration_dry_run_lists_moves_and_unmappable_instances_and_writes_nothing(tasks):
    publish(FOLLOW_UP)
    in_intake = instance_start(key="follow-up", actor=SYSTEM, now=T0)
    in_review = instance_start(key="follow-up", actor=SYSTEM, now=T0)
    instance_fire(instance_id=in_review.pk, event="tasks_completed", actor=SYSTEM, now=T0)
    instance_fire(instance_id=in_review.pk, event="review_due", actor=SYSTEM, now=T0)
    in_triage = instance_start(key="follow-up", actor=SYSTEM, now=T0)
    instance_fire(instance_id=in_triage.pk, event="tasks_completed", actor=SYSTEM, now=T0)
    instance_fire(instance_id=in_triage.pk, event="alert", actor=SYSTEM, now=T0)
    publish(FOLLOW_UP_V2)
    history_before = HistoryEntry.objects.count()

    plan = instances_migrate(
        key="follow-up",
        from_version=1,
        to_version=2,
        state_map={"nurse_review": "triage"},
        actor=GP,
        dry_run=True,
    )

    assert [(m.instance_id, m.old_state, m.new_state) for m in plan.moves] == [
        (in_intake.pk, "intake", "intake"),
        (in_review.pk, "gp_review", None),
        (in_triage.pk, "nurse_review", "triage"),
    ]
    assert [m.instance_id for m in plan.unmapped] == [in_review.pk]
    assert plan.applied is False
    assert HistoryEntry.objects.count() == history_before
    assert set(PathwayInstance.objects.values_list("definition__version", flat=True)) == {1}


@pytest.mark.django_db
def test_migration_with_unmappable_instances_is_refused_and_moves_nothing(tasks):
    publish(FOLLOW_UP)
    stuck = instance_start(key="follow-up", actor=SYSTEM, now=T0)
    instance_fire(instance_id=stuck.pk, event="tasks_completed", actor=SYSTEM, now=T0)
    instance_fire(instance_id=stuck.pk, event="review_due", actor=SYSTEM, now=T0)
    publish(FOLLOW_UP_V2)

    with pytest.raises(MigrationRefused, match=f"instance {stuck.pk} in state 'gp_review'"):
        instances_migrate(
            key="follow-up", from_version=1, to_version=2, state_map={}, actor=GP, dry_run=False
        )

    assert PathwayInstance.objects.get(pk=stuck.pk).definition.version == 1


@pytest.mark.django_db
def test_migration_moves_instances_records_history_and_keeps_matching_timers(tasks):
    publish(FOLLOW_UP)
    monitored = instance_start(key="follow-up", actor=SYSTEM, now=T0)
    instance_fire(instance_id=monitored.pk, event="tasks_completed", actor=SYSTEM, now=T0)
    in_review = instance_start(key="follow-up", actor=SYSTEM, now=T0)
    instance_fire(instance_id=in_review.pk, event="tasks_completed", actor=SYSTEM, now=T0)
    instance_fire(instance_id=in_review.pk, event="alert", actor=SYSTEM, now=T0)
    publish(FOLLOW_UP_V2)
    opened_before = len(tasks.opened)

    plan = instances_migrate(
        key="follow-up",
        from_version=1,
        to_version=2,
        state_map={"nurse_review": "triage"},
        actor=GP,
        dry_run=False,
        now=T0 + dt.timedelta(hours=1),
    )

    assert plan.applied is True
    moved = PathwayInstance.objects.get(pk=in_review.pk)
    assert (moved.definition.version, moved.state, moved.revision) == (2, "triage", 4)
    entry = HistoryEntry.objects.filter(instance=moved).order_by("revision").last()
    assert entry is not None
    assert (entry.kind, entry.from_state, entry.to_state, entry.actor) == (
        "migration",
        "nurse_review",
        "triage",
        "user:gp",
    )
    assert entry.payload == {"from": "follow-up@1", "to": "follow-up@2"}
    # nurse_review became triage: the instance left the old state (its timer cancelled, exit
    # hooks told) and entered the new one (its timer scheduled anew, its task opened).
    assert list(
        Timer.objects.filter(instance=moved, event="no_answer")
        .order_by("id")
        .values_list("event", "status", "due_at")
    ) == [
        ("no_answer", "cancelled", T0 + dt.timedelta(hours=4)),
        ("no_answer", "scheduled", T0 + dt.timedelta(hours=5)),
    ]
    assert tasks.opened[opened_before:] == [(moved.pk, "triage", "call", "nurse")]
    assert (moved.pk, "nurse_review") in tasks.left
    # monitoring kept its name: nothing re-entered, its automatic timer kept.
    kept = PathwayInstance.objects.get(pk=monitored.pk)
    assert kept.definition.version == 2
    assert list(
        Timer.objects.filter(instance=kept, status="scheduled").values_list("event", flat=True)
    ) == ["review_due"]


@pytest.mark.django_db
def test_migration_with_a_bad_state_map_names_each_problem(tasks):
    publish(FOLLOW_UP)
    publish(FOLLOW_UP_V2)

    with pytest.raises(MigrationRefused) as refused:
        instances_migrate(
            key="follow-up",
            from_version=1,
            to_version=2,
            state_map={"nowhere": "intake", "gp_review": "gone"},
            actor=GP,
        )

    assert refused.value.problems == [
        "state_map: 'nowhere' is not a state of version 1",
        "state_map: 'gp_review' -> 'gone': 'gone' is not a state of version 2",
    ]


@pytest.mark.django_db
def test_migrate_pathway_command_dry_run_then_apply(tasks, capsys):
    publish(FOLLOW_UP)
    in_triage = instance_start(key="follow-up", actor=SYSTEM, now=T0)
    instance_fire(instance_id=in_triage.pk, event="tasks_completed", actor=SYSTEM, now=T0)
    instance_fire(instance_id=in_triage.pk, event="alert", actor=SYSTEM, now=T0)
    publish(FOLLOW_UP_V2)

    call_command("migrate_pathway", "follow-up", "1", "2", "--map", "nurse_review=triage")
    dry = capsys.readouterr().out
    unchanged = PathwayInstance.objects.get(pk=in_triage.pk).definition.version
    call_command(
        "migrate_pathway", "follow-up", "1", "2", "--map", "nurse_review=triage", "--apply"
    )
    applied = capsys.readouterr().out

    assert dry == (
        f"instance {in_triage.pk}: nurse_review -> triage\n"
        "dry run: 1 instance(s), 0 cannot be mapped\n"
    )
    assert unchanged == 1
    assert applied.endswith("migrated: 1 instance(s), 0 cannot be mapped\n")
    assert PathwayInstance.objects.get(pk=in_triage.pk).state == "triage"
