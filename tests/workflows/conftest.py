from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from workflows import actions
from workflows.actions import StateChange
from workflows.actors import Actor
from workflows.definition.compiled import StateSpec, TaskAction
from workflows.models import PathwayDefinition
from workflows.services import definition_publish

PUBLISHER = Actor(id="test:publisher")

# A small pathway exercising every engine feature: tasks, timers, roles, a guard, alerts,
# a self-loop and a final state.
FOLLOW_UP = textwrap.dedent(
    """
    key: follow-up
    version: 1
    title: {en: Follow-up, fr: Suivi}
    roles: [gp, nurse, coordinator]
    initial: intake
    states:
      intake:
        on_enter:
          - task: {code: first-visit, title: First visit, role: nurse, due: P2D}
        on:
          tasks_completed: monitoring
          abandon: {to: closed, roles: [coordinator]}
      monitoring:
        on_enter:
          - timer: {event: review_due, after: P30D}
        alerts:
          - {name: low-spo2, when: "observation.value < 90.0", event: alert}
        on:
          alert: nurse_review
          review_due: gp_review
          note: {to: monitoring, roles: [nurse]}
          stop: {to: closed, roles: [gp]}
      nurse_review:
        on_enter:
          - task: {code: call, title: Call the patient, role: nurse, due: PT4H, priority: urgent}
          - timer: {event: no_answer, after: PT4H}
        on:
          resolved: {to: monitoring, roles: [nurse, gp]}
          escalate: {to: gp_review, roles: [nurse], guard: "payload.reason != ''"}
          no_answer: gp_review
      gp_review:
        on_enter:
          - task: {code: consult, title: Consultation, role: gp, due: P7D}
        on:
          continue: {to: monitoring, roles: [gp]}
          stop: {to: closed, roles: [gp]}
      closed: {final: true}
    """
)


@dataclass
class TaskRecorder:
    """Stands in for coordination's `task` handler: records what the engine asked to open."""

    opened: list[tuple[int, str, str, str]] = field(default_factory=list)
    left: list[tuple[int, str]] = field(default_factory=list)

    def open(self, change: StateChange, action: TaskAction) -> None:
        self.opened.append((change.instance.pk, change.state.name, action.code, action.role))

    def leave(self, change: StateChange, state: StateSpec) -> None:
        self.left.append((change.instance.pk, state.name))


@pytest.fixture
def tasks() -> Iterator[TaskRecorder]:
    saved = actions.snapshot()
    recorder = TaskRecorder()
    actions.register_task_handler("tests", recorder.open)
    actions.register_exit_hook("tests", recorder.leave)
    yield recorder
    actions.restore(saved)


def publish(source: str) -> PathwayDefinition:
    return definition_publish(source=source, actor=PUBLISHER, fmt="yaml").definition


@pytest.fixture
def follow_up(db: None) -> PathwayDefinition:
    return publish(FOLLOW_UP)
