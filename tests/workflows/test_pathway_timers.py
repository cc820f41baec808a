"""Pathway timers (top-level `timers`): an end date that a hospital stay or an alert does not
move, restarted only by the events that say so, fired in whatever state handles it."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest

from workflows.actors import SYSTEM, Actor
from workflows.definition import validate_source
from workflows.models import PathwayInstance, Timer
from workflows.services import definition_publish, fire_due_timers, instance_fire, instance_start

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
GP = Actor(id="user:1", roles=frozenset({"gp"}))

PRESCRIBED = textwrap.dedent(
    """
    key: prescribed
    version: 1
    title: Prescribed monitoring
    roles: [gp]
    initial: enrolment
    timers:
      - event: prescription_end
        after: P1Y
        start_on: monitoring
        restart_on: [renew]
    states:
      enrolment:
        on:
          enrolled: {to: monitoring, roles: [gp]}
      monitoring:
        on_enter:
          - timer: {event: monthly, after: P1M}
        on:
          monthly: monitoring
          admitted: {to: hospital, roles: [gp]}
          prescription_end: renewal
          stop: {to: closed, roles: [gp]}
      hospital:
        on:
          home: {to: monitoring, roles: [gp]}
      renewal:
        on:
          renew: {to: monitoring, roles: [gp]}
          stop: {to: closed, roles: [gp]}
      closed: {final: true}
    """
)


@pytest.fixture
def prescribed(db: None) -> None:
    definition_publish(source=PRESCRIBED, actor=SYSTEM, fmt="yaml")


def fire(instance: PathwayInstance, event: str, at: dt.datetime) -> None:
    instance_fire(instance_id=instance.pk, event=event, actor=GP, now=at)


def pathway_timers(instance: PathwayInstance) -> list[tuple[str, dt.datetime, str]]:
    return list(
        Timer.objects.filter(instance=instance, state=Timer.PATHWAY)
        .order_by("id")
        .values_list("event", "due_at", "status")
    )


def state(instance: PathwayInstance) -> str:
    instance.refresh_from_db()
    return instance.state


def test_the_end_date_is_set_on_first_entry_and_survives_a_hospital_stay(prescribed):
    instance = instance_start(key="prescribed", actor=GP, now=T0)
    assert pathway_timers(instance) == []
    fire(instance, "enrolled", T0)
    end = T0 + dt.timedelta(days=365)

    fire(instance, "admitted", T0 + 10 * DAY)
    fire(instance, "home", T0 + 20 * DAY)
    fire_due_timers(now=T0 + 40 * DAY)  # the monthly state timer loops in monitoring

    assert pathway_timers(instance) == [("prescription_end", end, "scheduled")]


def test_a_due_pathway_timer_fires_in_a_state_that_handles_it(prescribed):
    instance = instance_start(key="prescribed", actor=GP, now=T0)
    fire(instance, "enrolled", T0)
    end = T0 + dt.timedelta(days=365)
    Timer.objects.filter(state="monitoring").update(due_at=end + DAY)  # keep it out of the way

    sweep = fire_due_timers(now=end)

    assert len(sweep.fired) == 1
    assert state(instance) == "renewal"
    assert pathway_timers(instance) == [("prescription_end", end, "fired")]


def test_a_due_pathway_timer_waits_for_a_state_that_handles_it(prescribed):
    instance = instance_start(key="prescribed", actor=GP, now=T0)
    fire(instance, "enrolled", T0)
    end = T0 + dt.timedelta(days=365)
    fire(instance, "admitted", end - DAY)

    sweep = fire_due_timers(now=end)

    assert sweep.fired == []
    assert state(instance) == "hospital"
    timer = Timer.objects.get(instance=instance, state=Timer.PATHWAY)
    assert (timer.status, timer.due_at) == ("scheduled", end + dt.timedelta(hours=1))
    assert "does not handle" in timer.note

    fire(instance, "home", end + dt.timedelta(minutes=30))
    Timer.objects.filter(state="monitoring").update(due_at=end + 30 * DAY)
    later = fire_due_timers(now=end + dt.timedelta(hours=1))
    assert len(later.fired) == 1
    assert state(instance) == "renewal"


def test_renewing_restarts_the_period_and_the_end_cancels_it(prescribed):
    instance = instance_start(key="prescribed", actor=GP, now=T0)
    fire(instance, "enrolled", T0)
    end = T0 + dt.timedelta(days=365)
    Timer.objects.filter(state="monitoring").update(due_at=end + DAY)
    fire_due_timers(now=end)

    fire(instance, "renew", end + DAY)
    assert pathway_timers(instance)[-1] == (
        "prescription_end",
        dt.datetime(2028, 3, 3, 8, 0, tzinfo=dt.UTC),  # a calendar year after renewing
        "scheduled",
    )

    fire(instance, "stop", end + 2 * DAY)
    assert [status for *_, status in pathway_timers(instance)] == ["fired", "cancelled"]


def test_pathway_timers_are_checked():
    source = PRESCRIBED.replace("start_on: monitoring", "start_on: monitorin").replace(
        "restart_on: [renew]", "restart_on: [renw]"
    )

    problems = {(p.location, p.message) for p in validate_source(source).problems}

    assert problems == {
        ("timers.0.start_on", "unknown state 'monitorin'; did you mean 'monitoring'?"),
        ("timers.0.restart_on.0", "event 'renw' is not handled by any state"),
    }
