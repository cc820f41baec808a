"""Starting instances and firing events: the heart of the engine.

Contract of every function here:
- it runs in one transaction and holds the instance row lock (SELECT ... FOR UPDATE) from its
  first read to its commit, so concurrent fires on one instance are serialised: N concurrent
  fires of an event give exactly one transition, the others see the new state and are refused;
- a refusal (TransitionRefused, StaleRevision, NotFound) is raised before anything is
  written, so a refused call leaves no trace;
- every change increments `revision` and appends exactly one history entry with that revision.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from workflows import actions
from workflows.actors import Actor
from workflows.definition.compiled import CompiledDefinition, StateSpec, TransitionSpec
from workflows.definition.durations import add_duration
from workflows.definition.expressions import ExpressionError, evaluate
from workflows.definition.limits import data_problem, size_problem
from workflows.errors import RefusalReason, StaleRevision, TransitionRefused
from workflows.models import HistoryEntry, PathwayInstance, Timer
from workflows.selectors import (
    compiled_definition,
    definition_get,
    definition_latest_active,
    instance_definition,
    lock_instance,
)
from workflows.services import pg_moves

Status = PathwayInstance.Status
Kind = HistoryEntry.Kind


@dataclass(frozen=True)
class FireResult:
    instance: PathwayInstance
    transition: TransitionSpec
    entry: HistoryEntry


def instance_start(
    *,
    key: str,
    actor: Actor,
    context: Mapping[str, Any] | None = None,
    version: int | None = None,
    subject: str = "",
    now: dt.datetime | None = None,
) -> PathwayInstance:
    """Start an instance of the latest active version of `key` (or of `version`, which must
    be active) in its initial state, and run that state's `on_enter` actions."""
    now = _aware(now)
    context = _json_object(context, "context")
    definition = (
        definition_get(key=key, version=version)
        if version is not None
        else definition_latest_active(key=key)
    )
    if definition.status != definition.Status.ACTIVE:
        raise TransitionRefused(
            RefusalReason.NOT_ACTIVE,
            _("%(definition)s is %(status)s; only active versions can be started")
            % {"definition": definition, "status": definition.status},
        )
    compiled = compiled_definition(definition)
    initial = compiled.state(compiled.initial)
    with transaction.atomic():
        instance = PathwayInstance.objects.create(
            definition=definition,
            state=initial.name,
            status=Status.COMPLETED if initial.final else Status.ACTIVE,
            subject=subject,
            context=context,
            revision=1,
            started_at=now,
            updated_at=now,
            ended_at=now if initial.final else None,
        )
        entry = HistoryEntry.objects.create(
            instance=instance,
            revision=1,
            kind=Kind.START,
            event="start",
            from_state="",
            to_state=initial.name,
            actor=actor.id,
            actor_roles=sorted(actor.roles),
            payload={},
            occurred_at=now,
        )
        instance_enter(instance, compiled, initial, entry, actor, now)
        if compiled.timers:
            _pathway_timers(instance, compiled, initial, None, now)
    return instance


def instance_fire(
    *,
    instance_id: int,
    event: str,
    actor: Actor,
    payload: Mapping[str, Any] | None = None,
    expected_revision: int | None = None,
    now: dt.datetime | None = None,
) -> FireResult:
    """Fire `event` on the instance as `actor`.

    Raises TransitionRefused (with the reason: not active, event not available in this state,
    role not allowed, guard false, bad payload), StaleRevision when `expected_revision` is given
    and out of date, NotFound. Writes nothing in any of those cases.
    """
    now = _aware(now)
    payload, payload_json = _json_encoded(payload, "payload")
    with transaction.atomic():
        instance = lock_instance(instance_id=instance_id)
        if expected_revision is not None and instance.revision != expected_revision:
            raise StaleRevision(expected_revision, instance.revision)
        compiled = instance_definition(instance)
        transition = resolve_transition(instance, compiled, event, actor, payload)
        entry = instance_move(instance, compiled, transition, actor, payload, now, payload_json)
    return FireResult(instance, transition, entry)


def resolve_transition(
    instance: PathwayInstance,
    compiled: CompiledDefinition,
    event: str,
    actor: Actor,
    payload: Mapping[str, Any],
) -> TransitionSpec:
    """The transition `event` takes now, or TransitionRefused saying exactly why not."""
    if instance.status != Status.ACTIVE:
        message = (
            _("the pathway is %(status)s; resume it first")
            if instance.status == Status.SUSPENDED
            else _("the pathway is %(status)s")
        )
        raise TransitionRefused(RefusalReason.NOT_ACTIVE, message % {"status": instance.status})
    state = compiled.state(instance.state)
    transition = state.transitions.get(event)
    if transition is None:
        available = ", ".join(sorted(state.transitions)) or _("none")
        raise TransitionRefused(
            RefusalReason.NOT_AVAILABLE,
            _("event %(event)s is not available in state %(state)s (available: %(available)s)")
            % {"event": repr(event), "state": repr(state.name), "available": available},
        )
    if not actor.is_system:
        if not transition.manual:
            raise TransitionRefused(
                RefusalReason.ROLE_NOT_ALLOWED,
                _(
                    "event %(event)s is fired automatically (timer, alert or task completion), "
                    "not by a person"
                )
                % {"event": repr(event)},
            )
        if not transition.roles & actor.roles:
            mine = ", ".join(sorted(actor.roles)) or _("none")
            allowed = ", ".join(sorted(transition.roles))
            raise TransitionRefused(
                RefusalReason.ROLE_NOT_ALLOWED,
                _("role not allowed: %(event)s may be fired by %(allowed)s; your roles: %(mine)s")
                % {"event": repr(event), "allowed": allowed, "mine": mine},
            )
    if transition.guard is not None:
        _check_guard(transition, payload, instance.context)
    return transition


def _check_guard(
    transition: TransitionSpec, payload: Mapping[str, Any], context: Mapping[str, Any]
) -> None:
    assert transition.guard is not None
    # The payload was bounded on the way in; a context too, unless the instance started
    # before the bounds existed. A guard never reads data past them.
    too_large = data_problem(context, "context")
    if too_large is not None:
        raise TransitionRefused(
            RefusalReason.GUARD_FALSE,
            _("guard of %(event)s (%(guard)s) could not be evaluated: %(problem)s")
            % {"event": repr(transition.event), "guard": transition.guard, "problem": too_large},
        )
    try:
        value = evaluate(transition.guard, {"payload": payload, "context": context})
    except ExpressionError as exc:
        raise TransitionRefused(
            RefusalReason.GUARD_FALSE,
            _("guard of %(event)s (%(guard)s) could not be evaluated: %(problem)s")
            % {"event": repr(transition.event), "guard": transition.guard, "problem": exc},
        ) from None
    if value is not True:
        names = {"event": repr(transition.event), "guard": transition.guard, "value": repr(value)}
        message = (
            _("guard of %(event)s (%(guard)s) is false")
            if value is False
            else _("guard of %(event)s (%(guard)s) returned %(value)s, not true or false")
        )
        raise TransitionRefused(RefusalReason.GUARD_FALSE, message % names)


def instance_move(
    instance: PathwayInstance,
    compiled: CompiledDefinition,
    transition: TransitionSpec,
    actor: Actor,
    payload: dict[str, Any],
    now: dt.datetime,
    payload_json: str | None = None,
) -> HistoryEntry:
    """Take `transition`: the caller holds the instance's row lock and has checked that the
    transition is allowed. `payload_json` is `payload` already encoded, when the caller has it."""
    source = compiled.state(transition.source)
    target = compiled.state(transition.target)
    if actions.has_exit_hooks():
        actions.run_exit_hooks(
            actions.StateChange(instance, compiled, source, None, actor, now), source
        )
    instance.state = target.name
    instance.revision += 1
    instance.updated_at = now
    if target.final:
        instance.status, instance.ended_at = Status.COMPLETED, now
    timers = [(timer.event, add_duration(now, timer.after)) for timer in target.timers]
    roles = sorted(actor.roles)
    if pg_moves.ENABLED and connections[DEFAULT_DB_ALIAS].vendor == "postgresql":
        entry_id = pg_moves.write_move(
            instance=instance,
            timers=timers,
            kind=Kind.TRANSITION,
            event=transition.event,
            from_state=source.name,
            actor_id=actor.id,
            actor_roles_json=json.dumps(roles),
            payload_json=json.dumps(payload) if payload_json is None else payload_json,
            now=now,
        )
        # A row as read back from the database (positional, in column order): cheaper to
        # build than through the keyword constructor, and marked as saved.
        entry = HistoryEntry.from_db(
            DEFAULT_DB_ALIAS,
            _ENTRY_FIELDS,
            [
                entry_id,
                instance.pk,
                instance.revision,
                Kind.TRANSITION,
                transition.event,
                source.name,
                target.name,
                actor.id,
                roles,
                payload,
                now,
            ],
        )
        _entry_instance_field.set_cached_value(entry, instance)
    else:
        entry = HistoryEntry(
            instance=instance,
            revision=instance.revision,
            kind=Kind.TRANSITION,
            event=transition.event,
            from_state=source.name,
            to_state=target.name,
            actor=actor.id,
            actor_roles=roles,
            payload=payload,
            occurred_at=now,
        )
        # Unconditionally: a timer kept by a version migration may belong to a state that
        # declares none itself.
        Timer.objects.filter(instance=instance, status=Timer.Status.SCHEDULED).exclude(
            state=Timer.PATHWAY
        ).update(status=Timer.Status.CANCELLED, resolved_at=now, note="left the state")
        instance.save(update_fields=["state", "revision", "updated_at", "status", "ended_at"])
        entry.save(force_insert=True)
        if timers:
            Timer.objects.bulk_create(
                Timer(instance=instance, state=target.name, event=event, due_at=due, created_at=now)
                for event, due in timers
            )
    if compiled.timers:
        _pathway_timers(instance, compiled, target, transition.event, now)
    actions.run_move_hooks(actions.StateChange(instance, compiled, target, entry, actor, now))
    _run_task_actions(instance, compiled, target, entry, actor, now)
    return entry


def _pathway_timers(
    instance: PathwayInstance,
    compiled: CompiledDefinition,
    entered: StateSpec,
    event: str | None,
    now: dt.datetime,
) -> None:
    """Start, restart or end the pathway's own timers after entering `entered` by `event`
    (None: the pathway's start)."""
    scheduled = Timer.objects.filter(
        instance=instance, state=Timer.PATHWAY, status=Timer.Status.SCHEDULED
    )
    if entered.final:
        scheduled.update(status=Timer.Status.CANCELLED, resolved_at=now, note="pathway ended")
        return
    for timer in compiled.timers:
        if event is not None and event in timer.restart_on:
            scheduled.filter(event=timer.event).update(
                status=Timer.Status.CANCELLED, resolved_at=now, note=f"restarted by {event}"
            )
        elif entered.name != timer.start_on or (
            Timer.objects.filter(instance=instance, state=Timer.PATHWAY, event=timer.event).exists()
        ):
            continue
        Timer.objects.create(
            instance=instance,
            state=Timer.PATHWAY,
            event=timer.event,
            due_at=add_duration(now, timer.after),
            created_at=now,
        )


# HistoryEntry's columns in their order, for `from_db`.
_ENTRY_FIELDS = [
    "id",
    "instance_id",
    "revision",
    "kind",
    "event",
    "from_state",
    "to_state",
    "actor",
    "actor_roles",
    "payload",
    "occurred_at",
]
_entry_instance_field = HistoryEntry.instance.field


def instance_enter(
    instance: PathwayInstance,
    compiled: CompiledDefinition,
    state: StateSpec,
    entry: HistoryEntry,
    actor: Actor,
    now: dt.datetime,
) -> None:
    """Schedule the state's timers and open its tasks (the instance row is already written)."""
    if state.timers:
        Timer.objects.bulk_create(
            Timer(
                instance=instance,
                state=state.name,
                event=timer.event,
                due_at=add_duration(now, timer.after),
                created_at=now,
            )
            for timer in state.timers
        )
    _run_task_actions(instance, compiled, state, entry, actor, now)


def _run_task_actions(
    instance: PathwayInstance,
    compiled: CompiledDefinition,
    state: StateSpec,
    entry: HistoryEntry,
    actor: Actor,
    now: dt.datetime,
) -> None:
    tasks = state.tasks
    if tasks:
        change = actions.StateChange(instance, compiled, state, entry, actor, now)
        for task in tasks:
            actions.run_task_action(change, task)


def _record_status(
    instance: PathwayInstance,
    status: str,
    event: str,
    actor: Actor,
    reason: str,
    now: dt.datetime,
) -> HistoryEntry:
    instance.status = status
    instance.revision += 1
    instance.updated_at = now
    fields = ["status", "revision", "updated_at"]
    if status in (Status.CANCELLED, Status.COMPLETED):
        instance.ended_at = now
        fields.append("ended_at")
    instance.save(update_fields=fields)
    return HistoryEntry.objects.create(
        instance=instance,
        revision=instance.revision,
        kind=Kind.STATUS,
        event=event,
        from_state=instance.state,
        to_state=instance.state,
        actor=actor.id,
        actor_roles=sorted(actor.roles),
        payload={"reason": reason} if reason else {},
        occurred_at=now,
    )


def instance_suspend(
    *, instance_id: int, actor: Actor, reason: str = "", now: dt.datetime | None = None
) -> HistoryEntry:
    """active -> suspended. Events are refused and due timers wait until it is resumed."""
    return _change_status(
        instance_id, Status.SUSPENDED, "suspend", {Status.ACTIVE}, actor, reason, now
    )


def instance_resume(
    *, instance_id: int, actor: Actor, reason: str = "", now: dt.datetime | None = None
) -> HistoryEntry:
    """suspended -> active. Timers that fell due meanwhile fire at the next sweep."""
    return _change_status(
        instance_id, Status.ACTIVE, "resume", {Status.SUSPENDED}, actor, reason, now
    )


def instance_cancel(
    *, instance_id: int, actor: Actor, reason: str = "", now: dt.datetime | None = None
) -> HistoryEntry:
    """active or suspended -> cancelled, for good: its timers are cancelled."""
    return _change_status(
        instance_id,
        Status.CANCELLED,
        "cancel",
        {Status.ACTIVE, Status.SUSPENDED},
        actor,
        reason,
        now,
    )


def _change_status(
    instance_id: int,
    target: str,
    event: str,
    allowed_from: set[str],
    actor: Actor,
    reason: str,
    now: dt.datetime | None,
) -> HistoryEntry:
    now = _aware(now)
    with transaction.atomic():
        instance = lock_instance(instance_id=instance_id)
        if instance.status not in allowed_from:
            raise TransitionRefused(
                RefusalReason.NOT_ACTIVE,
                _("cannot %(event)s a pathway that is %(status)s")
                % {"event": event, "status": instance.status},
            )
        if target == Status.CANCELLED:
            compiled = instance_definition(instance)
            state = compiled.state(instance.state)
            Timer.objects.filter(instance=instance, status=Timer.Status.SCHEDULED).update(
                status=Timer.Status.CANCELLED, resolved_at=now, note="pathway cancelled"
            )
            if actions.has_exit_hooks():
                change = actions.StateChange(instance, compiled, state, None, actor, now)
                actions.run_exit_hooks(change, state)
        return _record_status(instance, target, event, actor, reason, now)


def _json_object(value: Mapping[str, Any] | None, name: str) -> dict[str, Any]:
    """A JSON object within the bounds a guard may read (`workflows.definition.limits`), or
    TransitionRefused(BAD_PAYLOAD) naming the problem and where it is."""
    return _json_encoded(value, name)[0]


def _json_encoded(value: Mapping[str, Any] | None, name: str) -> tuple[dict[str, Any], str]:
    """`_json_object`, and its JSON text: the check encodes it anyway, and the text is what
    PostgreSQL stores."""
    if value is None:
        return {}, "{}"
    if not isinstance(value, Mapping):
        raise TransitionRefused(
            RefusalReason.BAD_PAYLOAD,
            _("%(name)s must be a JSON object, got %(type)s")
            % {"name": name, "type": type(value).__name__},
        )
    # Counted before encoding: an arbitrarily deep value would overflow json.dumps's stack.
    too_large = data_problem(value, name)
    if too_large is not None:
        raise TransitionRefused(RefusalReason.BAD_PAYLOAD, too_large)
    try:
        encoded = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TransitionRefused(
            RefusalReason.BAD_PAYLOAD,
            _("%(name)s is not valid JSON: %(problem)s") % {"name": name, "problem": exc},
        ) from None
    # PostgreSQL's jsonb cannot store NUL characters. json.dumps writes every NUL as \u0000,
    # so only a text with that sequence (or an escaped backslash before "u0000") can hold one.
    if "\\u0000" in encoded and _has_nul(value):
        raise TransitionRefused(
            RefusalReason.BAD_PAYLOAD,
            _("%(name)s contains a NUL character (\\u0000)") % {"name": name},
        )
    too_large = size_problem(encoded, name)
    if too_large is not None:
        raise TransitionRefused(RefusalReason.BAD_PAYLOAD, too_large)
    return dict(value), encoded


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_nul(item) for item in value)
    return False


def _aware(now: dt.datetime | None) -> dt.datetime:
    """`now`, or the current time; a naive datetime is a programming error: refuse it."""
    if now is None:
        return timezone.now()
    if timezone.is_naive(now):
        raise ValueError("now must be a timezone-aware datetime")
    return now
