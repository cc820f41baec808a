"""The engine against a reference model: a plain-Python state machine written independently
of the engine, driven by hypothesis through random sequences of events, status changes and
clock advances (which fire due timers)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest
from django.db import connection
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tests.workflows.conftest import FOLLOW_UP, TaskRecorder, publish
from workflows import actions
from workflows.actors import SYSTEM, Actor
from workflows.errors import TransitionRefused
from workflows.models import HistoryEntry, PathwayInstance, Timer
from workflows.services import (
    fire_due_timers,
    instance_cancel,
    instance_fire,
    instance_resume,
    instance_start,
    instance_suspend,
    pg_moves,
)

T0 = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)

# The FOLLOW_UP pathway, transcribed by hand: state -> event -> (target, roles or None).
TRANSITIONS: dict[str, dict[str, tuple[str, frozenset[str] | None]]] = {
    "intake": {
        "tasks_completed": ("monitoring", None),
        "abandon": ("closed", frozenset({"coordinator"})),
    },
    "monitoring": {
        "alert": ("nurse_review", None),
        "review_due": ("gp_review", None),
        "note": ("monitoring", frozenset({"nurse"})),
        "stop": ("closed", frozenset({"gp"})),
    },
    "nurse_review": {
        "resolved": ("monitoring", frozenset({"nurse", "gp"})),
        "escalate": ("gp_review", frozenset({"nurse"})),
        "no_answer": ("gp_review", None),
    },
    "gp_review": {
        "continue": ("monitoring", frozenset({"gp"})),
        "stop": ("closed", frozenset({"gp"})),
    },
    "closed": {},
}
TIMERS = {
    "monitoring": [("review_due", dt.timedelta(days=30))],
    "nurse_review": [("no_answer", dt.timedelta(hours=4))],
}
TASKS = {"intake": ["first-visit"], "nurse_review": ["call"], "gp_review": ["consult"]}
EVENTS = sorted({e for events in TRANSITIONS.values() for e in events} | {"bogus"})
ACTORS = [
    SYSTEM,
    Actor.person("nurse", {"nurse"}),
    Actor.person("gp", {"gp"}),
    Actor.person("coordinator", {"coordinator"}),
    Actor.person("nobody", set()),
]
PAYLOADS = [{}, {"reason": ""}, {"reason": "worse"}]


@dataclass
class Model:
    state: str = "intake"
    status: str = "active"
    revision: int = 1
    timers: dict[str, dt.datetime] = field(default_factory=dict)
    opened: list[str] = field(default_factory=lambda: list(TASKS["intake"]))

    def accepts(self, event: str, actor: Actor, payload: dict[str, str]) -> str | None:
        if self.status != "active" or event not in TRANSITIONS[self.state]:
            return None
        target, roles = TRANSITIONS[self.state][event]
        if not actor.is_system and (roles is None or not roles & actor.roles):
            return None
        if event == "escalate" and not payload.get("reason"):
            return None
        return target

    def move(self, target: str, now: dt.datetime) -> None:
        self.timers = {}
        self.state = target
        self.revision += 1
        self.timers = {event: now + after for event, after in TIMERS.get(target, [])}
        self.opened.extend(TASKS.get(target, []))
        if target == "closed":
            self.status = "completed"


class EngineAgainstModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.model = Model()
        self.recorder = TaskRecorder()
        actions.register_task_handler("model", self.recorder.open)
        self.instance_id = instance_start(key="follow-up", actor=SYSTEM, now=self.now).pk

    @rule(
        event=st.sampled_from(EVENTS),
        actor=st.sampled_from(ACTORS),
        payload=st.sampled_from(PAYLOADS),
    )
    def fire(self, event: str, actor: Actor, payload: dict[str, str]) -> None:
        expected = self.model.accepts(event, actor, payload)
        try:
            instance_fire(
                instance_id=self.instance_id,
                event=event,
                actor=actor,
                payload=payload,
                now=self.now,
            )
        except TransitionRefused:
            assert expected is None, f"engine refused {event} that the model accepts"
            return
        assert expected is not None, f"engine accepted {event} that the model refuses"
        self.model.move(expected, self.now)

    @rule(hours=st.integers(min_value=1, max_value=24 * 35))
    def advance_clock_and_sweep(self, hours: int) -> None:
        self.now += dt.timedelta(hours=hours)

        fire_due_timers(now=self.now)

        if self.model.status == "active":
            for event, due in sorted(self.model.timers.items(), key=lambda item: item[1]):
                if due <= self.now and self.model.timers.get(event) == due:
                    self.model.move(TRANSITIONS[self.model.state][event][0], self.now)

    @rule(action=st.sampled_from(["suspend", "resume", "cancel"]))
    def change_status(self, action: str) -> None:
        allowed = {
            "suspend": {"active"},
            "resume": {"suspended"},
            "cancel": {"active", "suspended"},
        }[action]
        service = {
            "suspend": instance_suspend,
            "resume": instance_resume,
            "cancel": instance_cancel,
        }[action]
        try:
            service(instance_id=self.instance_id, actor=ACTORS[3], now=self.now)
        except TransitionRefused:
            assert self.model.status not in allowed
            return
        assert self.model.status in allowed
        self.model.status = {"suspend": "suspended", "resume": "active", "cancel": "cancelled"}[
            action
        ]
        self.model.revision += 1
        if action == "cancel":
            self.model.timers = {}

    @invariant()
    def engine_matches_model(self) -> None:
        instance = PathwayInstance.objects.get(pk=self.instance_id)
        assert (instance.state, instance.status, instance.revision) == (
            self.model.state,
            self.model.status,
            self.model.revision,
        )
        assert HistoryEntry.objects.filter(instance_id=self.instance_id).count() == (
            self.model.revision
        )
        scheduled = dict(
            Timer.objects.filter(instance_id=self.instance_id, status="scheduled").values_list(
                "event", "due_at"
            )
        )
        assert scheduled == self.model.timers
        # Sweeps also fire timers of instances left by earlier examples: keep ours only.
        opened = [code for pk, _, code, _ in self.recorder.opened if pk == self.instance_id]
        assert opened == self.model.opened


@pytest.mark.django_db
@pytest.mark.parametrize("single_statement", [True, False], ids=["pg-statement", "orm"])
def test_engine_behaves_like_the_reference_model(tasks, single_statement, monkeypatch):
    # On PostgreSQL a transition's writes are one SQL statement (pg_moves); the ORM path is
    # the other implementation. Both must match the model.
    if not single_statement and connection.vendor != "postgresql":
        pytest.skip("on SQLite the ORM path is the only one; the other case covers it")
    monkeypatch.setattr(pg_moves, "ENABLED", single_statement)
    publish(FOLLOW_UP)

    run_state_machine_as_test(
        EngineAgainstModel,
        settings=settings(
            max_examples=60,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
