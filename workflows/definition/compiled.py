"""A validated document turned into typed, immutable objects the engine runs on.

Definitions are immutable once published, so a compiled definition is cached per process by
checksum and shared by every instance on that version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workflows.definition.conditions import Threshold, observation_tests
from workflows.definition.expressions import measurement_codes
from workflows.definition.schema import TASKS_COMPLETED

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
    title: Text | None = None  # of the event it fires


Action = TaskAction | TimerAction


@dataclass(frozen=True)
class ScoreRule:
    """`points` when `when` holds (always, without `when`)."""

    points: int
    when: str | None = None
    title: Text | None = None


@dataclass(frozen=True)
class AlertSpec:
    name: str
    when: str
    event: str | None
    priority: str
    title: Text | None
    role: str | None = None  # who gets the alert's own task, if the event opens none for it
    # Triage points: the first rule that holds gives the alert's score (none: 0).
    score: tuple[ScoreRule, ...] = ()
    pathway_level: bool = False  # declared under `monitoring`: watched in every state
    codes: frozenset[str] = frozenset()  # the measurements its condition reads
    description: Text | None = None  # of the alert's own task
    escalate_to: str | None = None  # who gets the alert's task when it is overdue
    # Read from the condition's syntax tree (workflows.definition.conditions): the codes it is
    # false for all others of (None: any code may meet it), and its `observation.value < N`
    # comparisons, in the order written.
    only_codes: frozenset[str] | None = None
    thresholds: tuple[Threshold, ...] = ()

    @property
    def task_code(self) -> str:
        """The code of the task the alert opens for its role."""
        return f"alert-{self.name}"[:63]


@dataclass(frozen=True)
class ExpectationSpec:
    """A measurement the state expects at least `every` (ISO-8601); `role` is told if not."""

    code: str
    every: str
    role: str
    priority: str = "urgent"
    title: Text | None = None
    name: str = ""  # default: missing-<code>
    score: tuple[ScoreRule, ...] = ()
    pathway_level: bool = False

    @property
    def key(self) -> str:
        return self.name or f"missing-{self.code}"


@dataclass(frozen=True)
class ParameterSpec:
    """A per-patient setting that alert and score conditions read as `params.<name>`."""

    name: str
    default: float
    minimum: float
    maximum: float
    unit: str | None = None
    title: Text | None = None
    description: Text | None = None
    # Care-team roles that may set it for a patient (empty: every role but the patient's).
    roles: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Bands:
    """A pathway's risk score to band: >= high is high, >= medium is medium, else low."""

    medium: int = 3
    high: int = 5

    def band(self, score: int) -> str:
        if score >= self.high:
            return "high"
        return "medium" if score >= self.medium else "low"


@dataclass(frozen=True)
class MonitoringSpec:
    """What the pathway watches in every non-final state (`monitoring` in the document)."""

    measurements: tuple[str, ...] = ()
    parameters: Mapping[str, ParameterSpec] = field(default_factory=dict)
    alerts: tuple[AlertSpec, ...] = ()
    expects: tuple[ExpectationSpec, ...] = ()
    bands: Bands = Bands()


@dataclass(frozen=True)
class PathwayTimer:
    """A timer of the whole pathway (top-level `timers`): started the first time the pathway
    enters `start_on` (its initial state when not named), started again from now by each
    event of `restart_on`, and not cancelled when a state is left: only when the pathway
    ends. When due it fires `event` in whatever state the pathway is in; a state that does
    not handle the event defers it (see workflows.services.timers)."""

    event: str
    after: str
    start_on: str
    restart_on: frozenset[str] = frozenset()
    title: Text | None = None


@dataclass(frozen=True)
class Reference:
    title: Text
    publisher: str = ""
    year: int | None = None
    url: str = ""
    used_for: Text | None = None


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
    # Pathway alerts and expectations this state does not watch: name -> the reason shown.
    suspends: Mapping[str, Text] = field(default_factory=dict)

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
    monitoring: MonitoringSpec = MonitoringSpec()
    references: tuple[Reference, ...] = ()
    timers: tuple[PathwayTimer, ...] = ()
    # Whether one subject may follow several instances of this pathway at once (by default
    # the app that starts instances refuses a second while one is running).
    allow_concurrent: bool = False
    # Titles of the roles, by name (`role_titles`); a role without one takes a built-in
    # title or its name (workflows.definition.titles).
    role_titles: Mapping[str, Text] = field(default_factory=dict)

    def state(self, name: str) -> StateSpec:
        return self.states[name]

    def alerts_in(self, state: StateSpec) -> tuple[AlertSpec, ...]:
        """The alerts watched in `state`: its own, then the pathway's that it does not
        suspend. None in a final state."""
        if state.final:
            return ()
        shared = tuple(a for a in self.monitoring.alerts if a.name not in state.suspends)
        return state.alerts + shared

    def expects_in(self, state: StateSpec) -> tuple[ExpectationSpec, ...]:
        """The expectations checked in `state`: its own, then the pathway's it does not
        suspend (a state's own expectation of the same code wins)."""
        if state.final:
            return ()
        own = {e.code for e in state.expects}
        shared = tuple(
            e for e in self.monitoring.expects if e.key not in state.suspends and e.code not in own
        )
        return state.expects + shared

    @property
    def every_alert(self) -> tuple[AlertSpec, ...]:
        """The alerts the pathway declares, its own (`monitoring`) then each state's, in
        the document's order, whatever the step."""
        return self.monitoring.alerts + tuple(a for s in self.states.values() for a in s.alerts)

    @property
    def every_expectation(self) -> tuple[ExpectationSpec, ...]:
        """The expected measurements it declares, its own then each state's."""
        return self.monitoring.expects + tuple(e for s in self.states.values() for e in s.expects)

    @property
    def raises_alerts(self) -> bool:
        """Whether any state or the pathway declares alerts or expected measurements."""
        return bool(
            self.monitoring.alerts
            or self.monitoring.expects
            or any(s.alerts or s.expects for s in self.states.values())
        )


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
        monitoring=_monitoring(document.get("monitoring") or {}),
        timers=tuple(
            PathwayTimer(
                event=t["event"],
                after=t["after"],
                start_on=t.get("start_on", document["initial"]),
                restart_on=frozenset(t.get("restart_on", ())),
                title=t.get("title"),
            )
            for t in document.get("timers", ())
        ),
        references=tuple(
            Reference(
                title=r["title"],
                publisher=r.get("publisher", ""),
                year=r.get("year"),
                url=r.get("url", ""),
                used_for=r.get("used_for"),
            )
            for r in document.get("references", ())
        ),
        allow_concurrent=bool(document.get("allow_concurrent", False)),
        role_titles=dict(document.get("role_titles") or {}),
    )


def _score(raw: Any) -> tuple[ScoreRule, ...]:
    if raw is None:
        return ()
    if isinstance(raw, int):
        return (ScoreRule(points=raw),)
    return tuple(
        ScoreRule(points=int(r["points"]), when=r.get("when"), title=r.get("title")) for r in raw
    )


def _alert(a: Mapping[str, Any], *, pathway_level: bool = False) -> AlertSpec:
    tests = observation_tests(a["when"])
    return AlertSpec(
        name=a["name"],
        when=a["when"],
        event=a.get("event"),
        priority=a.get("priority", "urgent"),
        title=a.get("title"),
        role=a.get("role"),
        score=_score(a.get("score")),
        pathway_level=pathway_level,
        codes=measurement_codes(a["when"]),
        description=a.get("description"),
        escalate_to=a.get("escalate_to"),
        only_codes=tests.only_codes,
        thresholds=tests.thresholds,
    )


def _expectation(e: Mapping[str, Any], *, pathway_level: bool = False) -> ExpectationSpec:
    return ExpectationSpec(
        code=e["code"],
        every=e["every"],
        role=e["role"],
        priority=e.get("priority", "urgent"),
        title=e.get("title"),
        name=e.get("name", ""),
        score=_score(e.get("score")),
        pathway_level=pathway_level,
    )


def _monitoring(spec: Mapping[str, Any]) -> MonitoringSpec:
    parameters = {
        name: ParameterSpec(
            name=name,
            default=float(p["default"]),
            minimum=float(p["minimum"]),
            maximum=float(p["maximum"]),
            unit=p.get("unit"),
            title=p.get("title"),
            description=p.get("description"),
            roles=frozenset(p.get("roles", ())),
        )
        for name, p in (spec.get("parameters") or {}).items()
    }
    alerts = tuple(_alert(a, pathway_level=True) for a in spec.get("alerts", ()))
    expects = tuple(_expectation(e, pathway_level=True) for e in spec.get("expects", ()))
    bands = (spec.get("triage") or {}).get("bands")
    return MonitoringSpec(
        measurements=tuple(spec.get("measurements", ())),
        parameters=parameters,
        alerts=alerts,
        expects=expects,
        bands=Bands(medium=bands["medium"], high=bands["high"]) if bands else Bands(),
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
            actions.append(
                TimerAction(event=timer["event"], after=timer["after"], title=timer.get("title"))
            )
    alerts = tuple(_alert(a) for a in spec.get("alerts", ()))
    expects = tuple(_expectation(e) for e in spec.get("expects", ()))
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
        suspends={s["name"]: s["reason"] for s in spec.get("suspends", ())},
    )


__all__ = [
    "TASKS_COMPLETED",
    "Action",
    "AlertSpec",
    "Bands",
    "CompiledDefinition",
    "ExpectationSpec",
    "MonitoringSpec",
    "ParameterSpec",
    "PathwayTimer",
    "Reference",
    "ScoreRule",
    "StateSpec",
    "TaskAction",
    "Threshold",
    "TimerAction",
    "TransitionSpec",
    "compile_document",
    "localized",
]
