from __future__ import annotations

import datetime as dt
import textwrap
from typing import Any
from unittest import mock

import pytest
import time_machine

from config.celery import app
from coordination import tasks as jobs
from coordination.models import CarePathway, DeadLetter, Task, TaskEvent, TaskFollowUp
from coordination.services import (
    TaskActionInput,
    care_pathway_resume,
    care_pathway_start,
    care_pathway_suspend,
    task_act,
)
from coordination.services.jobs import (
    dead_letter_record,
    dead_letter_requeue,
    due_timers_sweep,
    overdue_tasks_escalate,
    task_reminders_send,
)
from directory.services import care_team_member_add
from tests.coordination.conftest import Scene, make_patient, make_practitioner
from workflows.actors import Actor
from workflows.models import Timer
from workflows.services import definition_publish

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)

JOBS_TEST = textwrap.dedent(
    """
    key: jobs-test
    version: 1
    allow_concurrent: true   # test_sweep_goes_through_every_batch starts five for one patient
    title: Jobs test
    roles: [gp, nurse, coordinator]
    initial: waiting
    states:
      waiting:
        on_enter:
          - timer: {event: wake, after: P1D}
          - task: {code: prepare, title: Prepare, role: nurse, due: PT6H, escalate_to: gp}
        on:
          wake: visit
          tasks_completed: visit
      visit:
        on_enter:
          - task: {code: visit, title: {en: Visit, fr: Visite}, role: nurse, due: P2D}
        on:
          tasks_completed: closed
      closed: {final: true}
    """
)


@pytest.fixture
def frozen():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def jobs_scene(db: None, frozen) -> Scene:
    definition_publish(source=JOBS_TEST, actor=Actor(id="test"), fmt="yaml")
    patient = make_patient()
    gp, nurse = make_practitioner("gp"), make_practitioner("nurse")
    coordinator, outsider = make_practitioner("coordinator"), make_practitioner("nurse")
    care_team_member_add(patient=patient, role="gp", practitioner=gp, actor=None)
    care_team_member_add(patient=patient, role="nurse", practitioner=nurse, actor=None)
    care_team_member_add(patient=patient, role="coordinator", practitioner=coordinator, actor=None)
    pathway = care_pathway_start(patient=patient, key="jobs-test", user=gp.user)
    return Scene(patient, gp, nurse, coordinator, outsider, pathway)


def state_of(pathway: CarePathway) -> str:
    pathway.refresh_from_db()
    assert pathway.instance is not None
    pathway.instance.refresh_from_db()
    return pathway.instance.state


def open_codes(pathway: CarePathway) -> list[str]:
    return sorted(
        Task.objects.filter(
            care_pathway=pathway, status__in=["ready", "in-progress", "on-hold"]
        ).values_list("code", flat=True)
    )


# --- timers ---------------------------------------------------------------------------------


def test_sweep_fires_a_due_timer_and_opens_the_next_state_tasks(jobs_scene: Scene):
    report = due_timers_sweep(now=T0 + dt.timedelta(days=1))

    assert (report.fired, report.skipped, report.failed) == (1, 0, [])
    assert state_of(jobs_scene.pathway) == "visit"
    assert open_codes(jobs_scene.pathway) == ["visit"]


def test_sweep_before_the_due_time_fires_nothing(jobs_scene: Scene):
    report = due_timers_sweep(now=T0 + dt.timedelta(hours=23))

    assert (report.fired, report.skipped) == (0, 0)
    assert state_of(jobs_scene.pathway) == "waiting"


def test_sweep_run_twice_fires_each_timer_once(jobs_scene: Scene):
    later = T0 + dt.timedelta(days=2)

    first = due_timers_sweep(now=later)
    second = due_timers_sweep(now=later)

    assert (first.fired, second.fired) == (1, 0)
    assert Timer.objects.filter(status=Timer.Status.FIRED).count() == 1
    assert Task.objects.filter(care_pathway=jobs_scene.pathway, code="visit").count() == 1


def test_sweep_goes_through_every_batch(db: None, frozen):
    definition_publish(source=JOBS_TEST, actor=Actor(id="test"), fmt="yaml")
    patient = make_patient()
    pathways = [care_pathway_start(patient=patient, key="jobs-test", user=None) for _ in range(5)]

    report = due_timers_sweep(now=T0 + dt.timedelta(days=1), batch=2)

    assert report.fired == 5
    assert [state_of(p) for p in pathways] == ["visit"] * 5


def test_timers_job_calls_the_sweep_at_the_current_time(jobs_scene: Scene, frozen):
    frozen.shift(dt.timedelta(days=1))

    result = jobs.timers_sweep.apply().get()

    assert result == {"fired": 1, "skipped": 0, "failed": 0}
    assert state_of(jobs_scene.pathway) == "visit"


# --- reminders --------------------------------------------------------------------------------


def test_reminder_is_recorded_once_as_a_task_event(jobs_scene: Scene):
    prepare = Task.objects.get(care_pathway=jobs_scene.pathway, code="prepare")

    first = task_reminders_send(now=T0 + 4 * HOUR + dt.timedelta(minutes=30), lead="PT2H")
    second = task_reminders_send(now=T0 + 5 * HOUR, lead="PT2H")

    assert (first, second) == ([prepare.pk], [])
    events = list(TaskEvent.objects.filter(task=prepare).values_list("action", "to_status"))
    assert events == [("open", "ready"), ("remind", "ready")]
    prepare.refresh_from_db()
    assert (prepare.status, prepare.version) == ("ready", 2)
    follow_up = TaskFollowUp.objects.get(task=prepare)
    assert (follow_up.kind, follow_up.due_at) == ("reminder", T0 + 6 * HOUR)


def test_task_not_yet_within_the_lead_is_not_reminded(jobs_scene: Scene):
    sent = task_reminders_send(now=T0 + 3 * HOUR, lead="PT2H")

    assert sent == []
    assert not TaskFollowUp.objects.exists()


def test_task_given_less_than_the_lead_is_not_reminded(jobs_scene: Scene):
    sent = task_reminders_send(now=T0 + HOUR, lead="PT8H")

    assert sent == []
    assert TaskEvent.objects.filter(action="remind").count() == 0


def test_overdue_task_is_not_reminded(jobs_scene: Scene):
    sent = task_reminders_send(now=T0 + 7 * HOUR, lead="PT2H")

    assert sent == []


# --- escalation -------------------------------------------------------------------------------


def test_overdue_task_escalates_once_to_the_role_its_definition_names(jobs_scene: Scene):
    prepare = Task.objects.get(care_pathway=jobs_scene.pathway, code="prepare")

    first = overdue_tasks_escalate(now=T0 + 7 * HOUR, grace="PT15M")
    second = overdue_tasks_escalate(now=T0 + 9 * HOUR, grace="PT15M")

    assert (first, second) == ([prepare.pk], [])
    escalation = Task.objects.get(care_pathway=jobs_scene.pathway, code="escalation-prepare")
    assert (escalation.offered_role, escalation.owner, escalation.priority) == (
        "gp",
        jobs_scene.gp,
        "urgent",
    )
    assert escalation.title == {"en": "Overdue: Prepare", "fr": "En retard : Prepare"}
    assert (escalation.pathway_state, escalation.pathway_revision) == ("waiting", None)
    last = TaskEvent.objects.filter(task=prepare).order_by("version").last()
    assert last is not None
    assert (last.action, last.detail["to_role"], last.detail["task"]) == (
        "escalate",
        "gp",
        escalation.pk,
    )


def test_overdue_task_without_escalate_to_goes_to_the_coordinator(scene: Scene):
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")
    assert visit.due_at is not None
    late = visit.due_at + dt.timedelta(hours=1)

    escalated = overdue_tasks_escalate(now=late, grace="PT15M")

    assert escalated == [visit.pk]
    escalation = Task.objects.get(care_pathway=scene.pathway, code="escalation-visit")
    assert (escalation.offered_role, escalation.owner) == ("coordinator", scene.coordinator)
    assert escalation.title == {"en": "Overdue: Home visit", "fr": "En retard : Home visit"}


def test_task_within_the_grace_period_is_not_escalated(jobs_scene: Scene):
    escalated = overdue_tasks_escalate(now=T0 + 6 * HOUR + dt.timedelta(minutes=10), grace="PT15M")

    assert escalated == []
    assert open_codes(jobs_scene.pathway) == ["prepare"]


def test_tasks_of_a_suspended_pathway_wait_for_it_to_resume_to_escalate(jobs_scene: Scene):
    prepare = Task.objects.get(care_pathway=jobs_scene.pathway, code="prepare")
    care_pathway_suspend(pathway=jobs_scene.pathway, user=None, reason="in hospital")

    while_suspended = overdue_tasks_escalate(now=T0 + 7 * HOUR, grace="PT15M")
    care_pathway_resume(pathway=jobs_scene.pathway, user=None)
    after_resume = overdue_tasks_escalate(now=T0 + 8 * HOUR, grace="PT15M")

    assert (while_suspended, after_resume) == ([], [prepare.pk])


def test_escalation_task_does_not_hold_the_step_back(jobs_scene: Scene):
    overdue_tasks_escalate(now=T0 + 7 * HOUR, grace="PT15M")
    prepare = Task.objects.get(care_pathway=jobs_scene.pathway, code="prepare")

    task_act(task_id=prepare.pk, user=jobs_scene.nurse.user, data=TaskActionInput("complete"))

    assert state_of(jobs_scene.pathway) == "visit"
    escalation = Task.objects.get(care_pathway=jobs_scene.pathway, code="escalation-prepare")
    assert escalation.status == "cancelled"
    assert open_codes(jobs_scene.pathway) == ["visit"]


# --- dead letters -----------------------------------------------------------------------------


def test_job_failing_every_attempt_is_parked_as_a_dead_letter(db: None, settings):
    with mock.patch.object(jobs, "due_timers_sweep", side_effect=RuntimeError("disk on fire")):
        result = jobs.timers_sweep.apply()

    assert result.failed()
    letter = DeadLetter.objects.get()
    assert (letter.task_name, letter.args, letter.kwargs) == ("coordination.timers_sweep", [], {})
    assert letter.exception == "RuntimeError: disk on fire"
    assert letter.attempts == settings.CELERY_JOB_MAX_RETRIES + 1
    assert "disk on fire" in letter.traceback
    assert letter.resolved is False


def test_job_that_succeeds_on_a_retry_leaves_no_dead_letter(db: None):
    flaky = mock.Mock(side_effect=[RuntimeError("blip"), mock.DEFAULT])
    flaky.return_value = mock.Mock(fired=0, skipped=0, failed=[])
    with mock.patch.object(jobs, "due_timers_sweep", flaky):
        result = jobs.timers_sweep.apply()

    assert result.successful()
    assert flaky.call_count == 2
    assert not DeadLetter.objects.exists()


def test_recording_the_same_failure_twice_keeps_one_letter(db: None):
    common: dict[str, Any] = {
        "task_name": "coordination.reminders_send",
        "task_id": "abc",
        "args": [],
        "kwargs": {},
    }

    dead_letter_record(**common, exception="E: 1", traceback="", attempts=6, now=T0)
    dead_letter_record(**common, exception="E: 2", traceback="", attempts=6, now=T0 + HOUR)

    letter = DeadLetter.objects.get()
    assert (letter.exception, letter.first_failed_at, letter.last_failed_at) == (
        "E: 2",
        T0,
        T0 + HOUR,
    )


def test_requeue_resolves_the_letter_and_sends_the_job_after_commit(
    db: None, django_capture_on_commit_callbacks
):
    letter = dead_letter_record(
        task_name="coordination.reminders_send",
        task_id="abc",
        args=[1],
        kwargs={"x": 2},
        exception="E",
        traceback="",
        attempts=6,
    )
    with mock.patch("config.celery.app.send_task") as send:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            requeued = dead_letter_requeue(dead_letter_id=letter.pk, actor="admin", now=T0)
        assert send.call_count == 0
        for callback in callbacks:
            callback()

    assert requeued is True
    send.assert_called_once_with("coordination.reminders_send", args=[1], kwargs={"x": 2})
    letter.refresh_from_db()
    assert (letter.resolved, letter.resolved_at, letter.resolution) == (
        True,
        T0,
        "re-queued by admin",
    )


def test_requeueing_a_resolved_letter_sends_nothing(db: None, django_capture_on_commit_callbacks):
    letter = dead_letter_record(
        task_name="coordination.reminders_send",
        task_id="abc",
        args=[],
        kwargs={},
        exception="E",
        traceback="",
        attempts=6,
    )
    dead_letter_requeue(dead_letter_id=letter.pk, actor="admin")
    with (
        mock.patch("config.celery.app.send_task") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        again = dead_letter_requeue(dead_letter_id=letter.pk, actor="admin")

    assert again is False
    send.assert_not_called()


def test_the_beat_schedule_names_registered_jobs(settings):
    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert scheduled <= set(app.tasks)
    assert scheduled == {
        "coordination.timers_sweep",
        "coordination.reminders_send",
        "coordination.overdue_escalate",
        "coordination.missing_measurements_check",
        "coordination.webhooks_send",
        "coordination.outbox_relay_backstop",
        "coordination.audit_chain_backstop",
    }


def test_jobs_are_acknowledged_late_and_requeued_when_their_worker_is_lost(settings):
    assert settings.CELERY_TASK_ACKS_LATE is True
    assert settings.CELERY_TASK_REJECT_ON_WORKER_LOST is True
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert visibility > settings.CELERY_TASK_TIME_LIMIT
