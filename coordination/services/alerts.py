"""Device alerts: the `alerts` of a pathway's current state evaluated on incoming observations,
and the `expects` rules (a measurement that should arrive every so often) checked by a job.

A triggered alert fires its event on the care pathway as the system (the state's tasks open
through the engine), and opens a task of its own for the alert's `role` when it names one, or
for the coordinator when the event opened none. Repeats of the same alert on the same pathway
within the debounce window (PARCOURS_ALERT_DEBOUNCE, PT12H) open nothing: they are counted on
the alert's record.

Locks: the pathway instances first (in id order), then the rows of this app, then the audit
head — the order of every pathway service. `observations_ingest` takes the instance locks
before it stores the observations, because storing them takes the audit head.
"""

from __future__ import annotations

import bisect
import datetime as dt
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from coordination import events
from coordination.models import AlertRecord, CarePathway, Task
from coordination.services.outbox import event_record
from coordination.services.pathways import SUBJECT_PREFIX, care_pathway_fire
from coordination.services.system_tasks import open_system_task
from patients.durations import parse_window
from patients.measurements import MEASUREMENTS, to_canonical
from patients.models import Observation
from patients.selectors import delta as stored_delta
from patients.selectors import last_value, observation_list
from workflows.definition.compiled import (
    AlertSpec,
    CompiledDefinition,
    ExpectationSpec,
    StateSpec,
)
from workflows.definition.durations import add_duration, parse_duration
from workflows.definition.expressions import ExpressionError, compile_expression, evaluate
from workflows.errors import NotFound, TransitionRefused
from workflows.models import HistoryEntry, PathwayInstance
from workflows.selectors import compiled_definition_by_id, instance_definition, lock_instance

logger = logging.getLogger(__name__)

DEFAULT_ALERT_ROLE = "coordinator"
# How far back a batch's series are read in one query; `last` and `delta` reaching further
# back ask the patients selectors instead (same answers, one query each).
LOOKBACK = dt.timedelta(days=31)


# --- which pathways listen ------------------------------------------------------------------


@dataclass(frozen=True)
class Listener:
    """An active care pathway of the patient whose current state has alerts."""

    pathway_id: int
    instance_id: int


def alert_listeners(*, patient_id: int) -> list[Listener]:
    """The patient's active pathways whose current state has alerts, in instance id order
    (the order their locks are taken). Reads no definition document: compiled definitions
    are cached by checksum."""
    rows = (
        CarePathway.objects.filter(
            patient_id=patient_id, instance__status=PathwayInstance.Status.ACTIVE
        )
        .order_by("instance_id")
        .values_list(
            "pk", "instance_id", "instance__state", "instance__definition_id",
            "instance__definition__checksum",
        )
    )  # fmt: skip
    listeners = []
    for pathway_id, instance_id, state, definition_id, checksum in rows:
        definition = compiled_definition_by_id(definition_id, checksum)
        if definition.states[state].alerts:
            listeners.append(Listener(pathway_id, instance_id))
    return listeners


# --- the series `last` and `delta` read -------------------------------------------------------


class SeriesCache:
    """The patient's measurements around a batch, read once per code, answering `last(code)`
    and `delta(code, window)` at any moment of the batch exactly as the patients selectors
    (`last_value`, `delta`) would, in the code's canonical unit."""

    def __init__(self, patient_id: int, since: dt.datetime, until: dt.datetime) -> None:
        self.patient_id = patient_id
        # One read covers at most the range the selector allows (a backfill spanning more
        # asks the selectors for the older part).
        self.since, self.until = max(since, until - dt.timedelta(days=365)), until
        self._series: dict[str, tuple[list[tuple[dt.datetime, int]], list[Decimal]]] = {}

    def _load(self, code: str) -> tuple[list[tuple[dt.datetime, int]], list[Decimal]]:
        if code not in self._series:
            rows = observation_list(
                patient_id=self.patient_id,
                since=self.since,
                until=self.until + dt.timedelta(microseconds=1),
                code=code,
            ).values_list("effective_at", "pk", "value", "unit")
            keys, values = [], []
            for effective, pk, value, unit in rows:
                keys.append((effective, pk))
                values.append(to_canonical(code, value, unit))
            self._series[code] = (keys, values)
        return self._series[code]

    def last(self, code: str, at: dt.datetime) -> float | None:
        if code not in MEASUREMENTS:
            return None
        if at <= self.until:
            keys, values = self._load(code)
            index = bisect.bisect_right(keys, (at, float("inf")))
            if index:
                return float(values[index - 1])
        found = last_value(self.patient_id, code, at)  # older than the batch's lookback
        return float(found.value) if found is not None else None

    def delta(self, code: str, window: str, at: dt.datetime) -> float | None:
        if code not in MEASUREMENTS:
            return None
        start = parse_window(window).before(at)
        if start < self.since or at > self.until:
            change = stored_delta(self.patient_id, code, window, at)
            return float(change) if change is not None else None
        keys, values = self._load(code)
        low = bisect.bisect_left(keys, (start, -1))
        high = bisect.bisect_right(keys, (at, float("inf")))
        if high - low < 2:
            return None
        return float(values[high - 1] - values[low])


# --- evaluating a state's alerts --------------------------------------------------------------

# `observation.code == 'X' && ...`: false for every other code, whatever follows (CEL's `&&`
# is false as soon as one side is), so rows of other codes are not evaluated at all.
_CODE_FIRST = re.compile(r"^\s*observation\.code\s*==\s*['\"]([^'\"]+)['\"]\s*&&")


@dataclass(frozen=True)
class AlertPlan:
    needs_observation: bool
    only_code: str | None


@lru_cache(maxsize=1024)
def alert_plan(when: str) -> AlertPlan:
    program = compile_expression(when)
    match = _CODE_FIRST.match(when)
    return AlertPlan(
        needs_observation="observation" in program.variables(),
        only_code=match.group(1) if match else None,
    )


def alert_holds(
    alert: AlertSpec, series: SeriesCache, at: dt.datetime, observation: Observation | None
) -> bool:
    """Whether the alert's condition holds at `at` (for `observation`, when it reads it).
    A condition that cannot be evaluated (no measurement yet for `last`, a type mismatch)
    does not hold."""
    functions: dict[str, Callable[..., Any]] = {
        "last": lambda code: series.last(code, at),
        "delta": lambda code, window: series.delta(code, window, at),
    }
    variables: dict[str, Any] = {}
    if observation is not None:
        variables["observation"] = {
            "code": observation.code,
            "value": float(observation.value),
            "unit": observation.unit,
            "effective": observation.effective_at,
        }
    try:
        return evaluate(alert.when, variables, functions) is True
    except ExpressionError as exc:
        logger.debug("alert %s not evaluated: %s", alert.name, exc)
        return False


def alerts_evaluate(
    *,
    patient_id: int,
    observations: Sequence[Observation],
    listeners: Sequence[Listener] | None = None,
    now: dt.datetime | None = None,
) -> list[AlertRecord]:
    """Evaluate the alerts of the patient's active pathways on `observations` (just stored),
    in the order they were taken, raising each alert that holds. After an alert moves a
    pathway, the following observations meet the new state's alerts. An alert that does not
    read `observation` is evaluated once for the batch, at its latest measurement.

    Run inside the transaction that stored the observations, with the `listeners` that
    `lock_listeners` returned before they were stored: a pathway that starts listening
    meanwhile is left alone rather than locked after the audit head."""
    now = now or timezone.now()
    if not observations:
        return []
    if listeners is None:
        listeners = alert_listeners(patient_id=patient_id)
    if not listeners:
        return []
    ordered = sorted(observations, key=lambda o: (o.effective_at, o.pk))
    latest = ordered[-1].effective_at
    series = SeriesCache(patient_id, ordered[0].effective_at - LOOKBACK, max(latest, now))
    raised: list[AlertRecord] = []
    for listener in listeners:
        raised.extend(_evaluate_for(listener, ordered, series, now))
    return raised


def _evaluate_for(
    listener: Listener, ordered: Sequence[Observation], series: SeriesCache, now: dt.datetime
) -> list[AlertRecord]:
    raised: list[AlertRecord] = []
    instance = lock_instance(instance_id=listener.instance_id)
    state = instance_definition(instance).state(instance.state)
    done_once: set[tuple[str, str]] = set()
    for observation in ordered:
        if instance.status != PathwayInstance.Status.ACTIVE:
            break
        for alert in state.alerts:
            plan = alert_plan(alert.when)
            if plan.only_code is not None and plan.only_code != observation.code:
                continue
            if not plan.needs_observation:
                if (state.name, alert.name) in done_once:
                    continue
                done_once.add((state.name, alert.name))
                holds = alert_holds(alert, series, ordered[-1].effective_at, None)
            else:
                holds = alert_holds(alert, series, observation.effective_at, observation)
            if not holds:
                continue
            record = alert_raise(
                pathway_id=listener.pathway_id,
                instance_id=listener.instance_id,
                alert=alert,
                observation=observation if plan.needs_observation else None,
                now=now,
            )
            if record is not None:
                raised.append(record)
                instance = lock_instance(instance_id=listener.instance_id)
                new_state = instance_definition(instance).state(instance.state)
                if new_state.name != state.name:
                    state = new_state
                    break
    return raised


def alert_raise(
    *,
    pathway_id: int,
    instance_id: int,
    alert: AlertSpec,
    observation: Observation | None,
    now: dt.datetime | None = None,
) -> AlertRecord | None:
    """Raise `alert` on the pathway: fire its event (as the system), open its task, record it.
    Returns None, and only counts the repeat, when the same alert was raised on this pathway
    within the debounce window, or when the pathway is no longer in a state with this alert."""
    now = now or timezone.now()
    window = parse_duration(settings.PARCOURS_ALERT_DEBOUNCE)
    with transaction.atomic():
        instance = lock_instance(instance_id=instance_id)
        definition = instance_definition(instance)
        state = definition.state(instance.state)
        if instance.status != PathwayInstance.Status.ACTIVE or alert not in state.alerts:
            return None
        if _debounced(pathway_id, alert.name, now - window, now):
            return None
        pathway = CarePathway.objects.get(pk=pathway_id)
        payload: dict[str, Any] = {"alert": alert.name}
        if observation is not None:
            payload |= {
                "observation": observation.pk,
                "code": observation.code,
                "value": float(observation.value),
                "unit": observation.unit,
            }
        refusal, opened = "", []
        try:
            result = care_pathway_fire(
                pathway=pathway, event=alert.event, user=None, payload=payload
            )
        except TransitionRefused as exc:  # e.g. a guard on the alert's event said no
            refusal = exc.message[:500]
        else:
            opened = list(
                Task.objects.filter(
                    care_pathway_id=pathway_id, pathway_revision=result.entry.revision
                ).order_by("priority_rank", "id")
            )
        instance = lock_instance(instance_id=instance_id)
        task = opened[0] if opened else None
        if instance.status == PathwayInstance.Status.ACTIVE and (alert.role or not opened):
            definition = instance_definition(instance)
            task = open_system_task(
                instance=instance,
                definition=definition,
                state=definition.state(instance.state),
                code=f"alert-{alert.name}"[:63],
                title=alert.title or {"en": f"Alert: {alert.name}", "fr": f"Alerte : {alert.name}"},
                role=alert.role or DEFAULT_ALERT_ROLE,
                priority=alert.priority,
                due=None,
                now=now,
            )
        return _alert_create(
            care_pathway_id=pathway_id,
            patient_id=pathway.patient_id,
            name=alert.name,
            kind=AlertRecord.Kind.CONDITION,
            state=state.name,
            event=alert.event,
            priority=alert.priority,
            observation_id=observation.pk if observation is not None else None,
            fired=not refusal,
            refusal=refusal,
            task=task,
            raised_at=now,
            last_seen_at=now,
        )


def _debounced(pathway_id: int, name: str, since: dt.datetime, now: dt.datetime) -> bool:
    recent = (
        AlertRecord.objects.select_for_update()
        .filter(care_pathway_id=pathway_id, name=name, raised_at__gt=since)
        .order_by("-raised_at")
        .first()
    )
    if recent is None:
        return False
    recent.repeats += 1
    recent.last_seen_at = now
    recent.save(update_fields=["repeats", "last_seen_at"])
    return True


def lock_listeners(*, patient_id: int) -> list[Listener]:
    """Lock the instances of the patient's listening pathways, in id order. Called before
    anything that takes the audit head in the same transaction (see the module docstring)."""
    listeners = alert_listeners(patient_id=patient_id)
    for listener in listeners:
        lock_instance(instance_id=listener.instance_id)
    return listeners


# --- missing measurements ----------------------------------------------------------------------


def missing_measurements_check(*, now: dt.datetime | None = None) -> list[AlertRecord]:
    """Open a task for every `expects` rule of an active pathway's current state whose
    measurement has not arrived for longer than `every` (counted from the latest measurement,
    or from entering the state if none arrived since). Once per gap: the next task for the
    same rule waits for a measurement to arrive and then lapse again. Safe to run twice."""
    now = now or timezone.now()
    raised = []
    rows = (
        PathwayInstance.objects.filter(
            status=PathwayInstance.Status.ACTIVE, subject__startswith=SUBJECT_PREFIX
        )
        .order_by("pk")
        .values_list("pk", "state", "definition_id", "definition__checksum")
    )
    for instance_id, state_name, definition_id, checksum in rows.iterator():
        definition = compiled_definition_by_id(definition_id, checksum)
        state = definition.states[state_name]
        for expectation in state.expects:
            try:
                record = _check_expectation(instance_id, definition, state, expectation, now)
            except NotFound:
                continue
            if record is not None:
                raised.append(record)
    return raised


def _check_expectation(
    instance_id: int,
    definition: CompiledDefinition,
    state: StateSpec,
    expectation: ExpectationSpec,
    now: dt.datetime,
) -> AlertRecord | None:
    with transaction.atomic():
        instance = lock_instance(instance_id=instance_id)
        if instance.status != PathwayInstance.Status.ACTIVE or instance.state != state.name:
            return None
        pathway = CarePathway.objects.get(instance_id=instance_id)
        entered = (
            HistoryEntry.objects.filter(instance_id=instance_id, to_state=state.name)
            .order_by("-revision")
            .values_list("occurred_at", flat=True)
            .first()
        ) or instance.started_at
        latest = last_value(pathway.patient_id, expectation.code, now)
        since = max(entered, latest.effective_at) if latest is not None else entered
        if add_duration(since, expectation.every) > now:
            return None
        name = f"missing:{expectation.code}"
        if AlertRecord.objects.filter(
            care_pathway_id=pathway.pk, name=name, raised_at__gte=since
        ).exists():
            return None
        display = (
            MEASUREMENTS[expectation.code].display
            if expectation.code in MEASUREMENTS
            else expectation.code
        )
        title = expectation.title or {
            "en": f"No {display} measurement since {since:%Y-%m-%d}",
            "fr": f"Aucune mesure ({display}) depuis le {since:%d/%m/%Y}",
        }
        task = open_system_task(
            instance=instance,
            definition=definition,
            state=state,
            code=f"missing-{expectation.code}"[:63],
            title=title,
            role=expectation.role,
            priority=expectation.priority,
            due=None,
            now=now,
        )
        return _alert_create(
            care_pathway_id=pathway.pk,
            patient_id=pathway.patient_id,
            name=name,
            kind=AlertRecord.Kind.MISSING,
            state=state.name,
            priority=expectation.priority,
            task=task,
            raised_at=now,
            last_seen_at=now,
        )


__all__ = [
    "AlertPlan",
    "Listener",
    "SeriesCache",
    "alert_holds",
    "alert_listeners",
    "alert_plan",
    "alert_raise",
    "alerts_evaluate",
    "lock_listeners",
    "missing_measurements_check",
]


def _alert_create(**fields: Any) -> AlertRecord:
    """Store an alert and its outbox event, in the caller's transaction."""
    record = AlertRecord.objects.create(**fields)
    event_record(
        type=events.ALERT_RAISED,
        patient=record.patient_id,
        payload=events.alert_payload(
            alert_id=record.pk,
            name=record.name,
            pathway_id=record.care_pathway_id,
            priority=record.priority,
            fired=record.fired,
            task_id=record.task_id,
            kind=record.kind,
        ),
        occurred_at=record.raised_at,
    )
    return record
