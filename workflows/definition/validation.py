"""Validation of pathway documents: JSON Schema for the shape, then the semantic checks.

Every problem is collected and reported at once; a problem in one part never hides the
problems of another. Semantic checks look only at the parts whose shape is right, so a
document that is wrong in several ways gets one message per mistake, not a cascade.
"""

from __future__ import annotations

import difflib
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jsonschema
import jsonschema_rs
from jsonschema.exceptions import ValidationError

from workflows.definition.compiled import compile_document
from workflows.definition.durations import BadDuration, parse_duration
from workflows.definition.expressions import (
    ALERT_SCOPE,
    GUARD_SCOPE,
    check_expression,
    parameter_names,
)
from workflows.definition.parsing import Format, ParsedSource, guess_format, parse_source
from workflows.definition.problems import Problem, dotted
from workflows.definition.schema import PATHWAY_SCHEMA, TASKS_COMPLETED
from workflows.definition.translation import gettext as _
from workflows.definition.translation import gettext_noop

_NAME_RULES = {
    "states": gettext_noop(
        "a state name is lower-case letters, digits and '_', starting with a letter"
    ),
    "on": gettext_noop(
        "an event name is lower-case letters, digits and '_', starting with a letter"
    ),
}


@dataclass
class ValidationResult:
    document: Any
    problems: list[Problem] = field(default_factory=list)
    # Valid, but worth a second look (a state that leaves a monitored measurement unwatched).
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def validate_source(
    text: str, *, filename: str | None = None, fmt: Format | None = None
) -> ValidationResult:
    """Parse and validate a YAML or JSON source. Problems carry line numbers where known."""
    parsed = parse_source(text, fmt or guess_format(filename, text))
    if parsed.document is None and parsed.problems:
        return ValidationResult(None, parsed.problems)
    problems = list(parsed.problems)
    problems.extend(validate_document(parsed.document))
    warnings = monitoring_warnings(parsed.document) if not problems else []
    return ValidationResult(parsed.document, _locate(problems, parsed), _locate(warnings, parsed))


def validate_document(document: Any) -> list[Problem]:
    if not isinstance(document, Mapping):
        kind = _("empty") if document is None else type(document).__name__
        message = _("a pathway is a mapping of keys, got %(kind)s") % {"kind": kind}
        return [Problem("(document)", message)]
    problems = list(_schema_problems(document))
    problems.extend(_Semantics(document).problems())
    return _dedupe(problems)


# --- shape ------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(PATHWAY_SCHEMA)
    return jsonschema.Draft202012Validator(PATHWAY_SCHEMA)


@lru_cache(maxsize=1)
def _fast_validator() -> Any:
    return jsonschema_rs.validator_for(PATHWAY_SCHEMA)


def _schema_problems(document: Mapping[str, Any]) -> Iterator[Problem]:
    # Two implementations of the same schema: the Rust one answers "valid?" in microseconds;
    # only a document that fails it goes through the Python one, whose error objects carry
    # what the messages need (the failing keyword, its schema, the branches of a oneOf).
    try:
        if _fast_validator().is_valid(document):
            return
    except ValueError:  # a value JSON has no type for (a YAML date, a non-text key): invalid
        pass
    for error in _validator().iter_errors(document):
        yield from _explain(error)


_TYPE_NAMES = {
    "string": gettext_noop("text"),
    "integer": gettext_noop("a whole number"),
    "object": gettext_noop("a mapping"),
    "array": gettext_noop("a list"),
    "boolean": gettext_noop("true or false"),
}


def _kind(value: Any) -> str:
    if value is None:
        return _("nothing")
    if isinstance(value, bool):
        return _("a boolean")
    if isinstance(value, int):
        return _("a number")
    if isinstance(value, float):
        return _("a decimal number")
    if isinstance(value, str):
        return _("text")
    if isinstance(value, list):
        return _("a list")
    if isinstance(value, dict):
        return _("a mapping")
    return type(value).__name__


def _explain(error: ValidationError) -> Iterator[Problem]:
    path = list(error.absolute_path)
    location = dotted(path)
    kind = error.validator
    if "propertyNames" in error.schema_path:
        rule = _NAME_RULES.get(
            str(path[-1]) if path else "", gettext_noop("use lower-case letters and digits")
        )
        name = str(error.instance)
        message = _("invalid name %(name)s: %(rule)s") % {"name": repr(name), "rule": _(rule)}
        yield Problem(dotted([*path, name]), message)
        return
    if kind == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        for key in missing:
            message = _("missing required key %(key)s") % {"key": repr(key)}
            yield Problem(location if path else "(document)", message)
    elif kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        for key in sorted(set(error.instance) - set(allowed), key=str):
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            message = (
                _("unknown key %(key)s; did you mean %(hint)s?")
                if hint
                else _("unknown key %(key)s (allowed: %(allowed)s)")
            ) % {
                "key": repr(key),
                "hint": repr(hint[0]) if hint else "",
                "allowed": ", ".join(allowed),
            }
            yield Problem(dotted([*path, str(key)]), message)
    elif kind == "oneOf":
        yield from _explain_one_of(error, path)
    elif kind == "type":
        expected = error.validator_value
        names = [expected] if isinstance(expected, str) else list(expected)
        wanted = _(" or ").join(_(_TYPE_NAMES.get(n, n)) for n in names)
        message = _("expected %(wanted)s, got %(kind)s")
        yield Problem(location, message % {"wanted": wanted, "kind": _kind(error.instance)})
    elif kind == "enum":
        choices = ", ".join(str(c) for c in error.validator_value)
        message = _("%(value)s is not one of: %(choices)s")
        yield Problem(location, message % {"value": repr(error.instance), "choices": choices})
    elif kind == "pattern":
        message = _("%(value)s is not allowed here: %(rule)s")
        rule = _(_pattern_rule(path))
        yield Problem(location, message % {"value": repr(error.instance), "rule": rule})
    elif kind == "minimum":
        message = _("must be at least %(minimum)s, got %(value)s")
        yield Problem(
            location, message % {"minimum": error.validator_value, "value": repr(error.instance)}
        )
    elif kind == "uniqueItems":
        yield Problem(location, _("contains the same value twice"))
    elif kind in ("minProperties", "maxProperties") and path[-2:-1] in (["on_enter"],):
        yield Problem(location, _("an action is a mapping with exactly one key: 'task' or 'timer'"))
    elif kind == "minProperties":
        yield Problem(location, _("must not be empty"))
    elif kind in ("minLength", "maxLength", "minItems"):
        yield Problem(location, _length_message(kind, error))
    else:  # a rule with no message of ours: say where, in words, then jsonschema's own
        message = _("the value at %(path)s does not have the expected form (%(detail)s)")
        yield Problem(location, message % {"path": location, "detail": error.message})


def _explain_one_of(error: ValidationError, path: list[str | int]) -> Iterator[Problem]:
    # Text and transitions are "a string, or a mapping of a given shape". Explain the
    # branch that matches the value's kind rather than jsonschema's "not valid under any".
    instance = error.instance
    branch = [
        sub
        for sub in error.context or []
        if sub.validator != "type" and len(sub.relative_schema_path) > 1
    ]
    if isinstance(instance, (dict, str)) and branch:
        for sub in branch:
            yield from _explain(sub)
        return
    is_transition = len(path) >= 2 and path[-2] == "on"
    wanted = (
        _("a target state name or a mapping with 'to'")
        if is_transition
        else _("text or a mapping of language codes to text")
    )
    message = _("expected %(wanted)s, got %(kind)s")
    yield Problem(dotted(path), message % {"wanted": wanted, "kind": _kind(instance)})


def _pattern_rule(path: list[str | int]) -> str:
    last = str(path[-1]) if path else ""
    parent = str(path[-2]) if len(path) > 1 else ""
    if last == "key":
        return gettext_noop("a pathway key is lower-case letters, digits and '-'")
    if last in ("event",):
        return _NAME_RULES["on"]
    if last in ("role",) or parent in ("roles",):
        return gettext_noop(
            "a role is lower-case letters, digits, '-' and '_', starting with a letter"
        )
    return gettext_noop("use lower-case letters, digits, '-' and '_'")


def _length_message(kind: str, error: ValidationError) -> str:
    if kind == "minLength" and error.validator_value == 1:
        return _("must not be empty")
    if kind == "minItems":
        return _("must list at least %(n)s item(s)") % {"n": error.validator_value}
    limit = error.validator_value
    if kind == "minLength":
        return _("must be at least %(n)s characters") % {"n": limit}
    return _("must be at most %(n)s characters") % {"n": limit}


# --- meaning ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Edge:
    source: str
    event: str
    target: str
    location: str


class _Semantics:
    """Semantic checks over the well-shaped parts of a document."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.doc = document
        states = document.get("states")
        self.states: dict[str, Mapping[str, Any]] = (
            {str(k): (v if isinstance(v, Mapping) else {}) for k, v in states.items()}
            if isinstance(states, Mapping)
            else {}
        )
        roles = document.get("roles")
        self.roles = {r for r in roles if isinstance(r, str)} if isinstance(roles, list) else None
        self.out: list[Problem] = []

    def problems(self) -> list[Problem]:
        edges = list(self._edges())
        self._check_initial()
        self._check_role_titles()
        self._check_monitoring()
        self._check_pathway_timers(edges)
        self._check_states(edges)
        self._check_graph(edges)
        return self.out

    def _check_pathway_timers(self, edges: list[_Edge]) -> None:
        timers = self.doc.get("timers")
        handled = {edge.event for edge in edges}
        seen: set[str] = set()
        for i, timer in enumerate(timers if isinstance(timers, list) else []):
            if not isinstance(timer, Mapping):
                continue
            path: list[str | int] = ["timers", i]
            self._check_duration([*path, "after"], timer.get("after"))
            event = timer.get("event")
            if isinstance(event, str):
                if event in seen:
                    self.add(
                        [*path, "event"],
                        _("a pathway timer for %(event)s is already declared")
                        % {"event": repr(event)},
                    )
                seen.add(event)
                if self.states and event not in handled:
                    self.add(
                        [*path, "event"],
                        _("timer event %(event)s is not handled by any state")
                        % {"event": repr(event)},
                    )
            start = timer.get("start_on")
            if isinstance(start, str) and self.states and start not in self.states:
                self.add(
                    [*path, "start_on"],
                    _("unknown state %(state)s") % {"state": repr(start)} + self._suggest(start),
                )
            restart = timer.get("restart_on")
            for j, name in enumerate(restart if isinstance(restart, list) else []):
                if isinstance(name, str) and self.states and name not in handled:
                    self.add(
                        [*path, "restart_on", j],
                        _("event %(event)s is not handled by any state") % {"event": repr(name)},
                    )

    def _monitoring(self) -> Mapping[str, Any]:
        monitoring = self.doc.get("monitoring")
        return monitoring if isinstance(monitoring, Mapping) else {}

    def _monitored_names(self) -> set[str]:
        monitoring = self._monitoring()
        names: set[str] = set()
        for key in ("alerts", "expects"):
            items = monitoring.get(key)
            for item in items if isinstance(items, list) else []:
                if isinstance(item, Mapping):
                    name = _item_name(key, item)
                    if name:
                        names.add(name)
        return names

    def _check_monitoring(self) -> None:
        monitoring = self._monitoring()
        base: list[str | int] = ["monitoring"]
        parameters = monitoring.get("parameters")
        for name, spec in parameters.items() if isinstance(parameters, Mapping) else []:
            if not isinstance(spec, Mapping):
                continue
            path: list[str | int] = [*base, "parameters", str(name)]
            low, high, default = spec.get("minimum"), spec.get("maximum"), spec.get("default")
            if (
                isinstance(low, (int, float))
                and isinstance(high, (int, float))
                and isinstance(default, (int, float))
            ):
                if low > high:
                    self.add(
                        [*path, "minimum"],
                        _("minimum %(low)s is above maximum %(high)s") % {"low": low, "high": high},
                    )
                elif not low <= default <= high:
                    self.add(
                        [*path, "default"],
                        _("default %(default)s is outside the bounds [%(low)s, %(high)s]")
                        % {"default": default, "low": low, "high": high},
                    )
            roles = spec.get("roles")
            for j, role in enumerate(roles if isinstance(roles, list) else []):
                self._check_role([*path, "roles", j], role)
        triage = monitoring.get("triage")
        bands = triage.get("bands") if isinstance(triage, Mapping) else None
        if isinstance(bands, Mapping):
            medium, high = bands.get("medium"), bands.get("high")
            if isinstance(medium, int) and isinstance(high, int) and medium >= high:
                self.add(
                    [*base, "triage", "bands"],
                    _("the medium band (%(medium)s) must start below the high band (%(high)s)")
                    % {"medium": medium, "high": high},
                )
        names: dict[str, str] = {}
        for key in ("alerts", "expects"):
            items = monitoring.get(key)
            for i, item in enumerate(items if isinstance(items, list) else []):
                if not isinstance(item, Mapping):
                    continue
                path = [*base, key, i]
                name = _item_name(key, item)
                if name and name in names:
                    self.add(
                        [*path, "name" if key == "alerts" else "code"],
                        _("%(name)s is already the name of %(other)s")
                        % {"name": repr(name), "other": names[name]},
                    )
                if name:
                    names.setdefault(name, dotted(path))
                if key == "alerts":
                    self._check_alert(path, item, on=None)
                    if "role" not in item:
                        self.add(
                            path,
                            "a pathway alert needs a 'role': who is told when the current "
                            "state does not handle its event",
                        )
                else:
                    self._check_expectation(path, item)

    def _check_alert(
        self, path: list[str | int], alert: Mapping[str, Any], on: Mapping[str, Any] | None
    ) -> None:
        when = alert.get("when")
        if isinstance(when, str):
            self._check_condition([*path, "when"], when)
        if "role" in alert:
            self._check_role([*path, "role"], alert.get("role"))
        if "escalate_to" in alert:
            self._check_role([*path, "escalate_to"], alert.get("escalate_to"))
        event = alert.get("event")
        if on is not None and isinstance(event, str) and event not in on:
            self.add(
                [*path, "event"],
                _("alert event %(event)s is not handled by this state's 'on'")
                % {"event": repr(event)},
            )
        if on is None and path[0] == "monitoring" and isinstance(event, str):
            handled = any(
                isinstance(state.get("on"), Mapping) and event in state["on"]
                for state in self.states.values()
            )
            if not handled:
                self.add(
                    [*path, "event"],
                    _("alert event %(event)s is not handled by any state") % {"event": repr(event)},
                )
        self._check_score([*path, "score"], alert.get("score"))

    def _check_expectation(self, path: list[str | int], expectation: Mapping[str, Any]) -> None:
        self._check_duration([*path, "every"], expectation.get("every"))
        self._check_role([*path, "role"], expectation.get("role"))
        self._check_score([*path, "score"], expectation.get("score"))

    def _check_score(self, path: list[str | int], score: Any) -> None:
        for i, rule in enumerate(score if isinstance(score, list) else []):
            if isinstance(rule, Mapping) and isinstance(rule.get("when"), str):
                self._check_condition([*path, i, "when"], rule["when"])

    def _check_condition(self, path: list[str | int], source: str) -> None:
        problems = check_expression(source, ALERT_SCOPE)
        for message in problems:
            self.add(path, message)
        if problems:
            return
        declared = self._parameter_names()
        for name in sorted(parameter_names(source) - declared):
            listed = ", ".join(sorted(declared)) or _("none")
            self.add(
                path,
                _(
                    "unknown parameter params.%(name)s "
                    "(declared under monitoring.parameters: %(listed)s)"
                )
                % {"name": name, "listed": listed},
            )

    def _parameter_names(self) -> set[str]:
        parameters = self._monitoring().get("parameters")
        return set(parameters) if isinstance(parameters, Mapping) else set()

    def add(self, path: Iterable[str | int], message: str) -> None:
        self.out.append(Problem(dotted(list(path)), message))

    def _edges(self) -> Iterator[_Edge]:
        for name, state in self.states.items():
            on = state.get("on")
            if not isinstance(on, Mapping):
                continue
            for event, spec in on.items():
                if isinstance(spec, str):
                    yield _Edge(name, str(event), spec, dotted(["states", name, "on", str(event)]))
                elif isinstance(spec, Mapping) and isinstance(spec.get("to"), str):
                    location = dotted(["states", name, "on", str(event), "to"])
                    yield _Edge(name, str(event), spec["to"], location)

    def _suggest(self, name: str) -> str:
        hint = difflib.get_close_matches(name, list(self.states), n=1)
        return _("; did you mean %(hint)s?") % {"hint": repr(hint[0])} if hint else ""

    def _check_initial(self) -> None:
        initial = self.doc.get("initial")
        if isinstance(initial, str) and self.states and initial not in self.states:
            message = _("unknown initial state %(state)s") % {"state": repr(initial)}
            self.add(["initial"], message + self._suggest(initial))

    def _check_role_titles(self) -> None:
        titles = self.doc.get("role_titles")
        for role in titles if isinstance(titles, Mapping) else ():
            self._check_role(["role_titles", str(role)], role)

    def _check_role(self, path: list[str | int], role: Any) -> None:
        if self.roles is not None and isinstance(role, str) and role not in self.roles:
            declared = ", ".join(sorted(self.roles)) or _("none")
            message = _("role %(role)s is not declared in 'roles' (declared: %(declared)s)")
            self.add(path, message % {"role": repr(role), "declared": declared})

    def _check_duration(self, path: list[str | int], value: Any) -> None:
        if isinstance(value, str):
            try:
                parse_duration(value)
            except BadDuration as exc:
                self.add(path, str(exc))

    def _check_states(self, edges: list[_Edge]) -> None:
        for edge in edges:
            if edge.target not in self.states:
                self.out.append(
                    Problem(
                        edge.location,
                        _("unknown target state %(state)s") % {"state": repr(edge.target)}
                        + self._suggest(edge.target),
                    )
                )
        for name, state in self.states.items():
            self._check_state(name, state)

    def _check_state(self, name: str, state: Mapping[str, Any]) -> None:
        base: list[str | int] = ["states", name]
        on = state.get("on") if isinstance(state.get("on"), Mapping) else {}
        assert isinstance(on, Mapping)
        final = state.get("final") is True
        if final and on:
            self.add([*base, "on"], _("a final state ends the pathway and cannot have transitions"))
        if final and state.get("alerts"):
            self.add([*base, "alerts"], _("a final state cannot have alerts: nothing follows it"))
        codes: dict[str, int] = {}
        opens_tasks = False
        actions = state.get("on_enter")
        for i, action in enumerate(actions if isinstance(actions, list) else []):
            if not isinstance(action, Mapping):
                continue
            task, timer = action.get("task"), action.get("timer")
            if isinstance(task, Mapping):
                opens_tasks = True
                path: list[str | int] = [*base, "on_enter", i, "task"]
                code = task.get("code")
                if isinstance(code, str):
                    if code in codes:
                        first = f"on_enter.{codes[code]}"
                        self.add(
                            [*path, "code"],
                            _("duplicate task code %(code)s (already used by %(first)s)")
                            % {"code": repr(code), "first": first},
                        )
                    codes.setdefault(code, i)
                self._check_role([*path, "role"], task.get("role"))
                if "escalate_to" in task:
                    self._check_role([*path, "escalate_to"], task.get("escalate_to"))
                self._check_duration([*path, "due"], task.get("due"))
            if isinstance(timer, Mapping):
                path = [*base, "on_enter", i, "timer"]
                self._check_duration([*path, "after"], timer.get("after"))
                event = timer.get("event")
                if final:
                    self.add(path, _("a final state cannot start timers: nothing follows it"))
                elif isinstance(event, str) and event not in on:
                    self.add(
                        [*path, "event"],
                        _("timer event %(event)s is not handled by this state's 'on'")
                        % {"event": repr(event)},
                    )
        self._check_alerts(base, state.get("alerts"), on, final)
        self._check_expects(base, state.get("expects"), final)
        self._check_suspends(base, state.get("suspends"), final)
        for event, spec in on.items():
            path = [*base, "on", str(event)]
            if isinstance(spec, Mapping):
                roles = spec.get("roles")
                for j, role in enumerate(roles if isinstance(roles, list) else []):
                    self._check_role([*path, "roles", j], role)
                guard = spec.get("guard")
                if isinstance(guard, str):
                    for message in check_expression(guard, GUARD_SCOPE):
                        self.add([*path, "guard"], message)
                if event == TASKS_COMPLETED and roles:
                    self.add(
                        [*path, "roles"],
                        _("tasks_completed is fired automatically and cannot name roles"),
                    )
            if event == TASKS_COMPLETED and not opens_tasks:
                self.add(path, _("tasks_completed can never fire: this state opens no task"))

    def _check_alerts(
        self, base: list[str | int], alerts: Any, on: Mapping[str, Any], final: bool
    ) -> None:
        # In a final state the alerts themselves are the mistake (reported by _check_state).
        names: set[str] = set()
        for i, alert in enumerate(alerts if isinstance(alerts, list) else []):
            if not isinstance(alert, Mapping):
                continue
            path: list[str | int] = [*base, "alerts", i]
            name = alert.get("name")
            if isinstance(name, str):
                if name in names:
                    self.add(
                        [*path, "name"],
                        _("duplicate alert name %(name)s in this state") % {"name": repr(name)},
                    )
                names.add(name)
            if isinstance(name, str) and name in self._monitored_names():
                self.add(
                    [*path, "name"],
                    _(
                        "%(name)s is already a pathway alert under 'monitoring'; "
                        "give this one another name"
                    )
                    % {"name": repr(name)},
                )
            self._check_alert(path, alert, on=None if final else on)

    def _check_expects(self, base: list[str | int], expects: Any, final: bool) -> None:
        if final and expects:
            self.add([*base, "expects"], _("a final state cannot expect measurements"))
            return
        codes: set[str] = set()
        for i, expectation in enumerate(expects if isinstance(expects, list) else []):
            if not isinstance(expectation, Mapping):
                continue
            path: list[str | int] = [*base, "expects", i]
            code = expectation.get("code")
            if isinstance(code, str):
                if code in codes:
                    self.add(
                        [*path, "code"],
                        _("measurement %(code)s is already expected here") % {"code": repr(code)},
                    )
                codes.add(code)
            self._check_expectation(path, expectation)

    def _check_suspends(self, base: list[str | int], suspends: Any, final: bool) -> None:
        if final and suspends:
            self.add([*base, "suspends"], _("a final state watches nothing: nothing to suspend"))
            return
        known = self._monitored_names()
        seen: set[str] = set()
        for i, item in enumerate(suspends if isinstance(suspends, list) else []):
            if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
                continue
            name = item["name"]
            if name in seen:
                self.add(
                    [*base, "suspends", i, "name"],
                    _("%(name)s is already suspended here") % {"name": repr(name)},
                )
            seen.add(name)
            if name not in known:
                hint = difflib.get_close_matches(name, sorted(known), n=1)
                listed = ", ".join(sorted(known)) or _("none")
                message = (
                    _(
                        "%(name)s is not a pathway alert or expectation under 'monitoring'; "
                        "did you mean %(hint)s?"
                    )
                    if hint
                    else _(
                        "%(name)s is not a pathway alert or expectation under 'monitoring' "
                        "(declared: %(listed)s)"
                    )
                )
                values = {
                    "name": repr(name),
                    "hint": repr(hint[0]) if hint else "",
                    "listed": listed,
                }
                self.add([*base, "suspends", i, "name"], message % values)

    def _check_graph(self, edges: list[_Edge]) -> None:
        initial = self.doc.get("initial")
        if not self.states or not isinstance(initial, str) or initial not in self.states:
            return
        forward: dict[str, set[str]] = {name: set() for name in self.states}
        backward: dict[str, set[str]] = {name: set() for name in self.states}
        for edge in edges:
            if edge.target in self.states:
                forward[edge.source].add(edge.target)
                backward[edge.target].add(edge.source)
        reachable = _closure([initial], forward)
        finals = [n for n, s in self.states.items() if s.get("final") is True]
        can_finish = _closure(finals, backward)
        for name, state in self.states.items():
            final = state.get("final") is True
            # A state whose `on` is declared but broken (unknown targets, wrong shape) has
            # its own problems reported; "no way out" would only repeat them.
            if not final and not state.get("on"):
                self.add(
                    ["states", name], _("not final and has no way out: add 'on' or 'final: true'")
                )
            if name not in reachable:
                message = _("unreachable from the initial state %(state)s")
                self.add(["states", name], message % {"state": repr(initial)})
            elif not final and forward[name] and finals and name not in can_finish:
                self.add(["states", name], _("no final state can be reached from this state"))
        if not any(name in reachable for name in finals):
            what = (
                _("no final state is reachable from the initial state")
                if finals
                else _("no state is final: mark at least one with 'final: true'")
            )
            self.add(["states"], what)


def _item_name(key: str, item: Mapping[str, Any]) -> str:
    """The name of a `monitoring` alert, or of an expectation (`missing-<code>` by default)."""
    if key == "alerts":
        name = item.get("name")
        return name if isinstance(name, str) else ""
    name, code = item.get("name"), item.get("code")
    if isinstance(name, str):
        return name
    return f"missing-{code}" if isinstance(code, str) else ""


# --- warnings -------------------------------------------------------------------------------


def monitoring_warnings(document: Any) -> list[Problem]:
    """For a valid document: each non-final state that leaves a monitored measurement without
    an alert, unless it suspends the pathway alerts of that measurement with a reason.

    The monitored measurements are `monitoring.measurements`, or else every measurement read
    by an alert of the pathway (under `monitoring` or in any state)."""
    definition = compile_document(document)
    monitored = set(definition.monitoring.measurements)
    every_alert = [a for s in definition.states.values() for a in s.alerts]
    every_alert += list(definition.monitoring.alerts)
    if not monitored:
        for alert in every_alert:
            monitored |= alert.codes
    warnings = []
    for name, state in definition.states.items():
        if state.final:
            continue
        watched: set[str] = set()
        for alert in definition.alerts_in(state):
            watched |= alert.codes
        for alert in definition.monitoring.alerts:
            if alert.name in state.suspends:
                watched |= alert.codes  # declared silence, with its reason
        unwatched = sorted(monitored - watched)
        if unwatched:
            message = (
                _(
                    "measurement %(codes)s monitored by this pathway but no alert watches it "
                    "in this state: add a pathway alert under 'monitoring' or an alert here, "
                    "or suspend the pathway alert with a reason"
                )
                if len(unwatched) == 1
                else _(
                    "measurements %(codes)s monitored by this pathway but no alert watches "
                    "them in this state: add a pathway alert under 'monitoring' or an alert "
                    "here, or suspend the pathway alert with a reason"
                )
            )
            warnings.append(
                Problem(dotted(["states", name]), message % {"codes": ", ".join(unwatched)})
            )
    return warnings


def _closure(start: Iterable[str], graph: Mapping[str, set[str]]) -> set[str]:
    seen = set(start)
    queue = deque(seen)
    while queue:
        for nxt in graph[queue.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[str, str]] = set()
    out = []
    for problem in problems:
        key = (problem.location, problem.message)
        if key not in seen:
            seen.add(key)
            out.append(problem)
    return out


def _locate(problems: list[Problem], parsed: ParsedSource) -> list[Problem]:
    located = []
    for problem in problems:
        position = parsed.position(problem.location) if problem.line is None else None
        located.append(
            Problem(problem.location, problem.message, *position) if position else problem
        )
    return sorted(located, key=lambda p: (p.line or 0, p.column or 0, p.location, p.message))
