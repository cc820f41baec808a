"""A validated document turned into typed, immutable objects the engine runs on.

Definitions are immutable once published, so a compiled definition is cached per process by
checksum and shared by every instance on that version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workflows.definition.validation import TASKS_COMPLETED

Text = str | Mapping[str, str]


def localized(text: Text | None, language: str | None = None, default: str = "") -> str:
    """Pick `language` from a {fr, en} mapping, falling back to English, then to any."""
    if text is None:
        return default
    if isinstance(text, str):
        return text
    if language:
        short = language.split("-")[0].lower()
        if short in text:
            return text[short]
    return text.get("en") or next(iter(text.values()), default)


@dataclass(frozen=True)
class TaskAction:
    code: str
    title: Text
    role: str
    due: str | None
    priority: str
    description: Text | None
    escalate_to: str | None = None  # who an overdue task goes to (default: the coordinator)


@dataclass(frozen=True)
class TimerAction:
    event: str
    after: str


Action = TaskAction | TimerAction


@dataclass(frozen=True)
class AlertSpec:
    name: str
    when: str
    event: str
    priority: str
    title: Text | None
    role: str | None = None  # who gets the alert's own task, if the event opens none


@dataclass(frozen=True)
class ExpectationSpec:
    """A measurement the state expects at least `every` (ISO-8601); `role` is told if not."""

    code: str
    every: str
    role: str
    priority: str = "urgent"
    title: Text | None = None


@dataclass(frozen=True)
class TransitionSpec:
    event: str
    source: str
    target: str
    roles: frozenset[str]
    guard: str | None
    title: Text | None

    @property
    def manual(self) -> bool:
        """Fired by a person holding one of `roles`; otherwise only by the system."""
        return bool(self.roles)


@dataclass(frozen=True)
class StateSpec:
    name: str
    title: Text
    final: bool
    actions: tuple[Action, ...]
    alerts: tuple[AlertSpec, ...]
    transitions: Mapping[str, TransitionSpec]
    expects: tuple[ExpectationSpec, ...] = ()

    @property
    def tasks(self) -> tuple[TaskAction, ...]:
        return tuple(a for a in self.actions if isinstance(a, TaskAction))

    @property
    def timers(self) -> tuple[TimerAction, ...]:
        return tuple(a for a in self.actions if isinstance(a, TimerAction))


@dataclass(frozen=True)
class CompiledDefinition:
    key: str
    version: int
    title: Text
    roles: frozenset[str]
    initial: str
    states: Mapping[str, StateSpec]

    def state(self, name: str) -> StateSpec:
        return self.states[name]


def compile_document(document: Mapping[str, Any]) -> CompiledDefinition:
    """Build the engine's view of a document that has already passed validation."""
    states = {name: _state(name, spec or {}) for name, spec in document["states"].items()}
    return CompiledDefinition(
        key=document["key"],
        version=int(document["version"]),
        title=document["title"],
        roles=frozenset(document.get("roles", ())),
        initial=document["initial"],
        states=states,
    )


def _state(name: str, spec: Mapping[str, Any]) -> StateSpec:
    actions: list[Action] = []
    for action in spec.get("on_enter", ()):
        if "task" in action:
            task = action["task"]
            actions.append(
                TaskAction(
                    code=task["code"],
                    title=task["title"],
                    role=task["role"],
                    due=task.get("due"),
                    priority=task.get("priority", "routine"),
                    description=task.get("description"),
                    escalate_to=task.get("escalate_to"),
                )
            )
        else:
            timer = action["timer"]
            actions.append(TimerAction(event=timer["event"], after=timer["after"]))
    alerts = tuple(
        AlertSpec(
            name=a["name"],
            when=a["when"],
            event=a["event"],
            priority=a.get("priority", "urgent"),
            title=a.get("title"),
            role=a.get("role"),
        )
        for a in spec.get("alerts", ())
    )
    expects = tuple(
        ExpectationSpec(
            code=e["code"],
            every=e["every"],
            role=e["role"],
            priority=e.get("priority", "urgent"),
            title=e.get("title"),
        )
        for e in spec.get("expects", ())
    )
    transitions = {}
    for event, raw in (spec.get("on") or {}).items():
        target = {"to": raw} if isinstance(raw, str) else raw
        transitions[event] = TransitionSpec(
            event=event,
            source=name,
            target=target["to"],
            roles=frozenset(target.get("roles", ())),
            guard=target.get("guard"),
            title=target.get("title"),
        )
    return StateSpec(
        name=name,
        title=spec.get("title", name),
        final=bool(spec.get("final", False)),
        actions=tuple(actions),
        alerts=alerts,
        transitions=transitions,
        expects=expects,
    )


__all__ = [
    "TASKS_COMPLETED",
    "Action",
    "AlertSpec",
    "CompiledDefinition",
    "ExpectationSpec",
    "StateSpec",
    "TaskAction",
    "TimerAction",
    "TransitionSpec",
    "compile_document",
    "localized",
]
