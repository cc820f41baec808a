from __future__ import annotations

import datetime as dt

import pytest
from django.db import DatabaseError, transaction

from tests.workflows.conftest import FOLLOW_UP, TaskRecorder, publish
from workflows import actions
from workflows.actors import SYSTEM, Actor
from workflows.errors import (
    ActionNotRegistered,
    NotFound,
    RefusalReason,
    StaleRevision,
    TransitionRefused,
)
from workflows.models import HistoryEntry, PathwayDefinition, PathwayInstance, Timer
from workflows.selectors import available_transitions, instance_history
from workflows.services import (
    definition_retire,
    definition_upload,
    fire_due_timers,
    instance_cancel,
    instance_fire,
    instance_resume,
    instance_start,
    instance_suspend,
)

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
NURSE = Actor.person("user:nurse", {"nurse"})
GP = Actor.person("user:gp", {"gp"})
COORDINATOR = Actor.person("user:coordinator", {"coordinator"})


def deeply_nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value


def start(now: dt.datetime = T0) -> PathwayInstance:
    return instance_start(key="follow-up", actor=COORDINATOR, now=now)


def to_monitoring(instance: PathwayInstance, now: dt.datetime = T0) -> None:
    instance_fire(instance_id=instance.pk, event="tasks_completed", actor=SYSTEM, now=now)


def snapshot(instance_id: int) -> tuple[object, ...]:
    instance = PathwayInstance.objects.get(pk=instance_id)
    return (
        instance.state,
        instance.status,
        instance.revision,
        HistoryEntry.objects.filter(instance_id=instance_id).count(),
        list(Timer.objects.filter(instance_id=instance_id).values_list("event", "status")),
    )


@pytest.mark.django_db
def test_start_enters_initial_state_and_opens_its_tasks(follow_up, tasks: TaskRecorder):
    instance = start()

    assert (instance.state, instance.status, instance.revision) == ("intake", "active", 1)
    assert tasks.opened == [(instance.pk, "intake", "first-visit", "nurse")]
    entry = instance_history(instance_id=instance.pk).get()
    assert (entry.kind, entry.event, entry.from_state, entry.to_state) == (
        "start",
        "start",
        "",
        "intake",
    )
    assert entry.actor == "user:coordinator"


@pytest.mark.django_db
def test_start_uses_latest_active_version_and_running_instances_keep_theirs(follow_up, tasks):
    first = start()
    publish(FOLLOW_UP.replace("version: 1", "version: 2"))

    second = start()

    assert first.definition.version == 1
    assert second.definition.version == 2
    first.refresh_from_db()
    assert first.definition.version == 1


@pytest.mark.django_db
def test_start_skips_retired_versions(follow_up, tasks):
    publish(FOLLOW_UP.replace("version: 1", "version: 2"))
    definition_retire(key="follow-up", version=2, actor=COORDINATOR)

    instance = start()

    assert instance.definition.version == 1


@pytest.mark.django_db
def test_start_of_unknown_pathway_is_not_found(db, tasks):
    with pytest.raises(NotFound, match="no active version of pathway 'nope'"):
        instance_start(key="nope", actor=COORDINATOR)

    assert PathwayInstance.objects.count() == 0


@pytest.mark.django_db
def test_start_without_a_task_handler_is_refused_and_writes_nothing(follow_up):
    saved = actions.snapshot()
    actions.restore(({}, {}))
    try:
        with pytest.raises(ActionNotRegistered, match="no app handles 'task' actions"):
            start()
    finally:
        actions.restore(saved)

    assert PathwayInstance.objects.count() == 0
    assert HistoryEntry.objects.count() == 0


@pytest.mark.django_db
def test_fire_moves_instance_records_history_and_bumps_revision(follow_up, tasks):
    instance = start()
    to_monitoring(instance)

    result = instance_fire(
        instance_id=instance.pk,
        event="stop",
        actor=GP,
        payload={"why": "recovered"},
        now=T0 + dt.timedelta(days=1),
    )

    assert (result.instance.state, result.instance.status, result.instance.revision) == (
        "closed",
        "completed",
        3,
    )
    assert result.instance.ended_at == T0 + dt.timedelta(days=1)
    history = list(
        instance_history(instance_id=instance.pk).values_list(
            "revision", "event", "from_state", "to_state", "actor", "actor_roles", "payload"
        )
    )
    assert history == [
        (1, "start", "", "intake", "user:coordinator", ["coordinator"], {}),
        (2, "tasks_completed", "intake", "monitoring", "system", [], {}),
        (3, "stop", "monitoring", "closed", "user:gp", ["gp"], {"why": "recovered"}),
    ]


@pytest.mark.django_db
def test_event_not_available_in_state_is_refused_and_writes_nothing(follow_up, tasks):
    instance = start()
    before = snapshot(instance.pk)

    with pytest.raises(TransitionRefused) as refused:
        instance_fire(instance_id=instance.pk, event="stop", actor=GP)

    assert refused.value.reason == RefusalReason.NOT_AVAILABLE
    assert refused.value.message == (
        "event 'stop' is not available in state 'intake' (available: abandon, tasks_completed)"
    )
    assert snapshot(instance.pk) == before


@pytest.mark.django_db
def test_role_not_allowed_is_refused_and_writes_nothing(follow_up, tasks):
    instance = start()
    to_monitoring(instance)
    before = snapshot(instance.pk)

    with pytest.raises(TransitionRefused) as refused:
        instance_fire(instance_id=instance.pk, event="stop", actor=NURSE)

    assert refused.value.reason == RefusalReason.ROLE_NOT_ALLOWED
    assert refused.value.message == "role not allowed: 'stop' may be fired by gp; your roles: nurse"
    assert snapshot(instance.pk) == before


@pytest.mark.django_db
def test_automatic_event_cannot_be_fired_by_a_person(follow_up, tasks):
    instance = start()
    before = snapshot(instance.pk)

    with pytest.raises(TransitionRefused) as refused:
        instance_fire(instance_id=instance.pk, event="tasks_completed", actor=GP)

    assert refused.value.reason == RefusalReason.ROLE_NOT_ALLOWED
    assert "fired automatically" in refused.value.message
    assert snapshot(instance.pk) == before


@pytest.mark.django_db
def test_guard_false_is_refused_with_the_guard_and_writes_nothing(follow_up, tasks):
    instance = start()
    to_monitoring(instance)
    instance_fire(instance_id=instance.pk, event="alert", actor=SYSTEM)
    before = snapshot(instance.pk)

    with pytest.raises(TransitionRefused) as refused:
        instance_fire(
            instance_id=instance.pk, event="escalate", actor=NURSE, payload={"reason": ""}
        )

    assert refused.value.reason == RefusalReason.GUARD_FALSE
    assert refused.value.message == "guard of 'escalate' (payload.reason != '') is false"
    assert snapshot(instance.pk) == before


@pytest.mark.django_db
def test_guard_that_cannot_be_evaluated_is_refused_naming_the_cause(follow_up, tasks):
    instance = start()
    to_monitoring(instance)
    instance_fire(instance_id=instance.pk, event="alert", actor=SYSTEM)

    with pytest.raises(TransitionRefused) as refused:
        instance_fire(instance_id=instance.pk, event="escalate", actor=NURSE, payload={})

    assert refused.value.reason == RefusalReason.GUARD_FALSE
    assert "could not be evaluated" in refused.value.message
    assert "reason" in refused.value.message


@pytest.mark.django_db
def test_a_guard_does_not_read_a_context_stored_past_the_bounds(follow_up, tasks):
    # An instance started before the bounds existed may hold a larger context.
    instance = start()
    to_monitoring(instance)
    instance_fire(instance_id=instance.pk, event="alert", actor=SYSTEM)
    PathwayInstance.objects.filter(pk=instance.pk).update(context={"codes": list(range(600))})
    before = snapshot(instance.pk)

    with pytest.raises(TransitionRefused) as refused:
        instance_fire(
            instance_id=instance.pk, event="escalate", actor=NURSE, payload={"reason": "dyspnoea"}
        )

    assert refused.value.reason == RefusalReason.GUARD_FALSE
    assert refused.value.message == (
        "guard of 'escalate' (payload.reason != '') could not be evaluated: "
        "context.codes: 600 items; context holds at most 500 values in all"
    )
    assert snapshot(instance.pk) == before


@pytest.mark.django_db
def test_guard_true_lets_the_transition_through(follow_up, tasks):
    instance = start()
    to_monitoring(instance)
    instance_fire(instance_id=instance.pk, event="alert", actor=SYSTEM)

    result = instance_fire(
        instance_id=instance.pk, event="escalate", actor=NURSE, payload={"reason": "dyspnoea"}
    )

    assert result.instance.state == "gp_review"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (["not", "an", "object"], "payload must be a JSON object, got list"),
        ({"when": dt.date(2026, 1, 1)}, "payload is not valid JSON"),
        ({"x": float("nan")}, "payload is not valid JSON"),
        ({"big": "x" * 70_000}, "payload is larger than 65536 bytes"),
        ({"items": list(range(600))}, "payload.items: 600 items; payload holds at most 500"),
        (
            {"items": [[i] for i in range(300)]},
            "payload.items[249]: payload holds more than 500 values",
        ),
        ({"a": [[[[[[[[[[1]]]]]]]]]]}, "payload.a[0][0][0][0][0][0][0][0][0]: nested more than 10"),
        (
            {"a": deeply_nested(100_000)},
            "payload.a[0][0][0][0][0][0][0][0][0]: nested more than 10",
        ),
    ],
)
def test_bad_payload_is_refused_and_writes_nothing(follow_up, tasks, payload, message):
    instance = start()
    to_monitoring(instance)
    before = snapshot(instance.pk)

    with pytest.raises(TransitionRefused) as refused:
        instance_fire(instance_id=instance.pk, event="stop", actor=GP, payload=payload)

    assert refused.value.reason == RefusalReason.BAD_PAYLOAD
    assert message in refused.value.message
    assert snapshot(instance.pk) == before


@pytest.mark.django_db
def test_stale_expected_revision_is_refused(follow_up, tasks):
    instance = start()
    to_monitoring(instance)

    with pytest.raises(StaleRevision, match="instance is at revision 2, not 1"):
        instance_fire(instance_id=instance.pk, event="stop", actor=GP, expected_revision=1)

    assert PathwayInstance.objects.get(pk=instance.pk).state == "monitoring"


@pytest.mark.django_db
def test_fire_on_unknown_instance_is_not_found(db, tasks):
    with pytest.raises(NotFound):
        instance_fire(instance_id=987654, event="stop", actor=GP)


@pytest.mark.django_db
def test_entering_a_state_schedules_its_timers_and_leaving_cancels_them(follow_up, tasks):
    instance = start()
    to_monitoring(instance, now=T0)

    scheduled = list(
        Timer.objects.filter(instance=instance).values_list("event", "due_at", "status")
    )
    instance_fire(instance_id=instance.pk, event="stop", actor=GP, now=T0 + dt.timedelta(days=1))

    assert scheduled == [("review_due", T0 + dt.timedelta(days=30), "scheduled")]
    timer = Timer.objects.get(instance=instance)
    assert (timer.status, timer.resolved_at) == ("cancelled", T0 + dt.timedelta(days=1))


@pytest.mark.django_db
def test_self_transition_reschedules_the_states_timers(follow_up, tasks):
    instance = start()
    to_monitoring(instance, now=T0)

    instance_fire(instance_id=instance.pk, event="note", actor=NURSE, now=T0 + dt.timedelta(days=2))

    rows = list(
        Timer.objects.filter(instance=instance).order_by("id").values_list("status", "due_at")
    )
    assert rows == [
        ("cancelled", T0 + dt.timedelta(days=30)),
        ("scheduled", T0 + dt.timedelta(days=32)),
    ]


@pytest.mark.django_db
def test_due_timer_fires_its_event_once(follow_up, tasks):
    instance = start()
    to_monitoring(instance, now=T0)

    early = fire_due_timers(now=T0 + dt.timedelta(days=29))
    due = fire_due_timers(now=T0 + dt.timedelta(days=30))
    again = fire_due_timers(now=T0 + dt.timedelta(days=31))

    assert (early.fired, again.fired) == ([], [])
    assert len(due.fired) == 1
    instance.refresh_from_db()
    assert instance.state == "gp_review"
    entry = instance_history(instance_id=instance.pk).last()
    assert entry is not None
    assert (entry.event, entry.actor) == ("review_due", "system")
    assert entry.payload["timer"] == due.fired[0]
    assert Timer.objects.get(pk=due.fired[0]).status == "fired"


@pytest.mark.django_db
def test_timers_of_a_suspended_instance_wait_until_it_resumes(follow_up, tasks):
    instance = start()
    to_monitoring(instance, now=T0)
    instance_suspend(instance_id=instance.pk, actor=GP, reason="hospitalised")

    while_suspended = fire_due_timers(now=T0 + dt.timedelta(days=40))
    instance_resume(instance_id=instance.pk, actor=GP)
    after_resume = fire_due_timers(now=T0 + dt.timedelta(days=41))

    assert while_suspended.fired == []
    assert len(after_resume.fired) == 1
    instance.refresh_from_db()
    assert instance.state == "gp_review"


@pytest.mark.django_db
def test_suspended_instance_refuses_events(follow_up, tasks):
    instance = start()
    to_monitoring(instance)
    instance_suspend(instance_id=instance.pk, actor=GP, reason="hospitalised")
    before = snapshot(instance.pk)

    with pytest.raises(TransitionRefused) as refused:
        instance_fire(instance_id=instance.pk, event="stop", actor=GP)

    assert refused.value.reason == RefusalReason.NOT_ACTIVE
    assert refused.value.message == "the pathway is suspended; resume it first"
    assert snapshot(instance.pk) == before


@pytest.mark.django_db
def test_suspend_resume_cancel_are_recorded_in_history(follow_up, tasks):
    instance = start()
    to_monitoring(instance)

    instance_suspend(instance_id=instance.pk, actor=GP, reason="hospitalised")
    instance_resume(instance_id=instance.pk, actor=GP)
    instance_cancel(instance_id=instance.pk, actor=COORDINATOR, reason="moved away")

    instance.refresh_from_db()
    assert (instance.status, instance.revision) == ("cancelled", 5)
    events = list(
        instance_history(instance_id=instance.pk).values_list("kind", "event", "payload")
    )[2:]
    assert events == [
        ("status", "suspend", {"reason": "hospitalised"}),
        ("status", "resume", {}),
        ("status", "cancel", {"reason": "moved away"}),
    ]
    assert list(Timer.objects.filter(instance=instance).values_list("status", flat=True)) == [
        "cancelled"
    ]
    assert tasks.left[-1] == (instance.pk, "monitoring")


@pytest.mark.django_db
def test_cancelled_instance_cannot_be_resumed_or_cancelled_again(follow_up, tasks):
    instance = start()
    instance_cancel(instance_id=instance.pk, actor=COORDINATOR)

    with pytest.raises(TransitionRefused, match="cannot resume a pathway that is cancelled"):
        instance_resume(instance_id=instance.pk, actor=COORDINATOR)
    with pytest.raises(TransitionRefused, match="cannot cancel a pathway that is cancelled"):
        instance_cancel(instance_id=instance.pk, actor=COORDINATOR)

    assert PathwayInstance.objects.get(pk=instance.pk).revision == 2


@pytest.mark.django_db
def test_completed_instance_refuses_events(follow_up, tasks):
    instance = start()
    instance_fire(instance_id=instance.pk, event="abandon", actor=COORDINATOR)

    with pytest.raises(TransitionRefused) as refused:
        instance_fire(instance_id=instance.pk, event="abandon", actor=COORDINATOR)

    assert refused.value.message == "the pathway is completed"


@pytest.mark.django_db
def test_exit_hooks_hear_every_state_left(follow_up, tasks):
    instance = start()

    to_monitoring(instance)
    instance_fire(instance_id=instance.pk, event="stop", actor=GP)

    assert tasks.left == [(instance.pk, "intake"), (instance.pk, "monitoring")]


@pytest.mark.django_db
def test_available_transitions_follow_state_and_roles(follow_up, tasks):
    instance = start()
    to_monitoring(instance)
    instance.refresh_from_db()

    as_nurse = [t.event for t in available_transitions(instance, NURSE)]
    as_gp = [t.event for t in available_transitions(instance, GP)]
    as_system = [t.event for t in available_transitions(instance, SYSTEM)]

    assert as_nurse == ["note"]
    assert as_gp == ["stop"]
    assert as_system == ["alert", "review_due", "note", "stop"]


@pytest.mark.django_db
def test_history_cannot_be_updated_or_deleted_on_postgresql(postgres_only, follow_up, tasks):
    instance = start()
    entry = instance_history(instance_id=instance.pk).get()

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        HistoryEntry.objects.filter(pk=entry.pk).update(actor="someone else")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        HistoryEntry.objects.filter(pk=entry.pk).delete()

    assert HistoryEntry.objects.get(pk=entry.pk).actor == "user:coordinator"


@pytest.mark.django_db
def test_definition_without_active_version_cannot_start(db, tasks):
    source = FOLLOW_UP.replace("key: follow-up", "key: drafted")

    definition_upload(source=source, actor=COORDINATOR, fmt="yaml")

    with pytest.raises(NotFound, match="no active version of pathway 'drafted'"):
        instance_start(key="drafted", actor=COORDINATOR)
    assert PathwayDefinition.objects.get(key="drafted").status == "draft"


@pytest.mark.django_db
def test_a_timer_that_fails_to_fire_does_not_hold_up_the_others(follow_up, tasks):
    broken = start()
    to_monitoring(broken, now=T0)
    healthy = start(now=T0 + dt.timedelta(hours=1))
    to_monitoring(healthy, now=T0 + dt.timedelta(hours=1))
    saved = actions.snapshot()

    def explode(change, action):
        if change.instance.pk == broken.pk:
            raise RuntimeError("handler down")
        tasks.open(change, action)

    actions.register_task_handler("tests", explode)
    try:
        sweep = fire_due_timers(now=T0 + dt.timedelta(days=31))
    finally:
        actions.restore(saved)

    assert len(sweep.failed) == 1
    assert len(sweep.fired) == 1
    assert PathwayInstance.objects.get(pk=healthy.pk).state == "gp_review"
    assert PathwayInstance.objects.get(pk=broken.pk).state == "monitoring"
    assert Timer.objects.get(pk=sweep.failed[0]).status == "scheduled"


@pytest.mark.django_db
def test_payload_with_a_nul_character_is_refused(follow_up, tasks):
    instance = start()
    to_monitoring(instance)

    with pytest.raises(TransitionRefused, match="NUL character"):
        instance_fire(instance_id=instance.pk, event="stop", actor=GP, payload={"n": "a\x00b"})

    assert PathwayInstance.objects.get(pk=instance.pk).state == "monitoring"


@pytest.mark.django_db
def test_naive_datetimes_are_refused(follow_up, tasks):
    with pytest.raises(ValueError, match="timezone-aware"):
        instance_start(key="follow-up", actor=COORDINATOR, now=dt.datetime(2026, 1, 1, 9, 0))

    assert PathwayInstance.objects.count() == 0
