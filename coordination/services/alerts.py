"""Device alerts: the alerts watched in a pathway's current state (its own `alerts` and the
pathway's `monitoring.alerts` it does not suspend) evaluated on incoming observations, and the
`expects` rules (a measurement that should arrive every so often) checked by a job.

A triggered alert fires its event on the care pathway as the system when the current state
handles it (the state's tasks open through the engine), and opens a task of its own for the
alert's `role` when the event opened none for that role (for the coordinator, when the alert
names no role and the event opened nothing). The alert's priority carries to every task it
opened: raised when higher than the task's own, and the due time brought within the
priority's limit (stat PT1H, asap PT2H, urgent PT4H).

A repeat of an alert whose work (its task) is still open opens nothing: it is counted on the
alert's record, and when it is worse (a higher score, priority or band) the open work is
escalated (its task's priority raised, its due time shortened). Once the work is done or
cancelled, the next reading that meets the condition raises the alert again. Alerts recorded
without a task fall back to the debounce window (PARCOURS_ALERT_DEBOUNCE).

Each alert carries triage points (its `score` rules) and the pathway's risk is recomputed
(coordination.services.risk) whenever an alert is raised or escalated.

Locks: the pathway instances first (in id order), then the patient's care pathway rows, then
the other rows of this app: the order of every pathway service. `observations_ingest` takes
the instance locks before it stores the observations, so that nothing it writes is locked
before an instance.
"""

from __future__ import annotations

import bisect
import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation

from coordination import task_states
from coordination.models import BAND_RANK, AlertRecord, CarePathway, RiskBand, Task
from coordination.selectors.pathways import SUBJECT_PREFIX
from coordination.services.parameters import parameter_values
from coordination.services.pathways import care_pathway_fire
from coordination.services.risk import band_priority, open_alert_scores, pathway_risk_refresh
from coordination.services.system_tasks import open_system_task
from coordination.services.tasks import task_priority_raise
from live import events
from live.services.outbox import event_record
from patients.durations import parse_window
from patients.measurements import MEASUREMENTS, to_canonical
from patients.models import Consent, Observation
from patients.selectors import (
    consent_resumed_at,
    consent_withdrawn_since,
    last_value,
    news2_at,
    observation_list,
    trend_fall,
    trend_rise,
)
from patients.selectors import delta as stored_delta
from patients.selectors import fall as stored_fall
from patients.selectors import rise as stored_rise
from workflows.definition.compiled import (
    AlertSpec,
    CompiledDefinition,
    ExpectationSpec,
    ScoreRule,
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
    """An active care pathway of the patient whose current state watches alerts."""

    pathway_id: int
    instance_id: int


def alert_listeners(*, patient_id: int) -> list[Listener]:
    """The patient's active pathways whose current state watches alerts, in instance id order
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
        if definition.alerts_in(definition.states[state]):
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
        window_values = self._window(code, start, at)
        if window_values is None or len(window_values) < 2:
            return None
        return float(window_values[-1] - window_values[0])

    def news2(self, window: str, at: dt.datetime, *, complete: bool) -> int | None:
        """The NEWS2 total from the latest vital signs within the window (one query); when
        `complete`, None unless every parameter is present (`news2_partial` sums those that
        are)."""
        result = news2_at(self.patient_id, at, window)
        return result.score if complete else result.partial

    def rise(self, code: str, window: str, at: dt.datetime) -> float | None:
        """The last value minus the lowest in the window: a gain, even after a dip."""
        return self._trend(code, window, at, trend_rise, stored_rise)

    def fall(self, code: str, window: str, at: dt.datetime) -> float | None:
        """The highest value in the window minus the last: a loss, even after a peak."""
        return self._trend(code, window, at, trend_fall, stored_fall)

    def _trend(
        self,
        code: str,
        window: str,
        at: dt.datetime,
        over: Callable[[list[Decimal]], Decimal | None],
        stored: Callable[[int, str, str, dt.datetime], Decimal | None],
    ) -> float | None:
        if code not in MEASUREMENTS:
            return None
        values = self._window(code, parse_window(window).before(at), at)
        change = stored(self.patient_id, code, window, at) if values is None else over(values)
        return float(change) if change is not None else None

    def _window(self, code: str, start: dt.datetime, at: dt.datetime) -> list[Decimal] | None:
        """The values from `start` to `at` (inclusive), or None when the range is not loaded."""
        if start < self.since or at > self.until:
            return None
        keys, values = self._load(code)
        low = bisect.bisect_left(keys, (start, -1))
        high = bisect.bisect_right(keys, (at, float("inf")))
        return values[low:high]


# --- evaluating a state's alerts --------------------------------------------------------------

# The longest an alert's work may wait, by the alert's priority: a `stat` alert cannot open a
# task due in 4 hours.
PRIORITY_DUE_WITHIN = {"stat": "PT1H", "asap": "PT2H", "urgent": "PT4H"}
SYSTEM_LABEL = "system:alerts"


@dataclass(frozen=True)
class AlertPlan:
    needs_observation: bool
    # The condition is false for every other code (`observation.code == 'X' && ...`), so
    # rows of other codes are not evaluated at all: AlertSpec.only_codes, read at compile time.
    only_codes: frozenset[str] | None


def alert_plan(alert: AlertSpec) -> AlertPlan:
    """How `alert` is evaluated on a batch of readings."""
    return _plan(alert.when, alert.only_codes)


@lru_cache(maxsize=1024)
def _plan(when: str, only_codes: frozenset[str] | None) -> AlertPlan:
    program = compile_expression(when)
    return AlertPlan(needs_observation="observation" in program.variables(), only_codes=only_codes)


def _condition_holds(
    source: str,
    series: SeriesCache,
    at: dt.datetime,
    observation: Observation | None,
    params: Mapping[str, float],
) -> bool:
    functions: dict[str, Callable[..., Any]] = {
        "last": lambda code: series.last(code, at),
        "delta": lambda code, window: series.delta(code, window, at),
        "rise": lambda code, window: series.rise(code, window, at),
        "fall": lambda code, window: series.fall(code, window, at),
        "news2": lambda window: series.news2(window, at, complete=True),
        "news2_partial": lambda window: series.news2(window, at, complete=False),
    }
    variables: dict[str, Any] = {"params": dict(params)}
    if observation is not None:
        variables["observation"] = {
            "code": observation.code,
            "value": float(observation.value),
            "unit": observation.unit,
            "effective": observation.effective_at,
        }
    try:
        return evaluate(source, variables, functions) is True
    except ExpressionError as exc:
        logger.debug("condition not evaluated: %s", exc)
        return False


def alert_holds(
    alert: AlertSpec,
    series: SeriesCache,
    at: dt.datetime,
    observation: Observation | None,
    params: Mapping[str, float] | None = None,
) -> bool:
    """Whether the alert's condition holds at `at` (for `observation`, when it reads it).
    A condition that cannot be evaluated (no measurement yet for `last`, a type mismatch)
    does not hold."""
    return _condition_holds(alert.when, series, at, observation, params or {})


def score_of(
    rules: Sequence[ScoreRule],
    series: SeriesCache | None,
    at: dt.datetime,
    observation: Observation | None,
    params: Mapping[str, float],
) -> int:
    """The points of the first rule that holds (a rule without `when` always does); 0 if
    none. Rules with a condition need the series; without it only unconditional rules count."""
    for rule in rules:
        if rule.when is None:
            return rule.points
        if series is not None and _condition_holds(rule.when, series, at, observation, params):
            return rule.points
    return 0


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
    meanwhile is left alone rather than locked after rows this transaction already wrote."""
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
    definition = instance_definition(instance)
    state = definition.state(instance.state)
    params = pathway_parameters(care_pathway_id=listener.pathway_id, definition=definition)
    done_once: set[tuple[str, str]] = set()
    for observation in ordered:
        if instance.status != PathwayInstance.Status.ACTIVE:
            break
        for alert in definition.alerts_in(state):
            if alert.only_codes is not None and observation.code not in alert.only_codes:
                continue
            plan = alert_plan(alert)
            at: dt.datetime = observation.effective_at
            seen: Observation | None = observation
            if not plan.needs_observation:
                if (state.name, alert.name) in done_once:
                    continue
                done_once.add((state.name, alert.name))
                at, seen = ordered[-1].effective_at, None
            if not alert_holds(alert, series, at, seen, params):
                continue
            record = alert_raise(
                pathway_id=listener.pathway_id,
                instance_id=listener.instance_id,
                alert=alert,
                observation=seen,
                now=now,
                score=score_of(alert.score, series, at, seen, params),
            )
            if record is not None:
                raised.append(record)
                instance = lock_instance(instance_id=listener.instance_id)
                new_state = instance_definition(instance).state(instance.state)
                if new_state.name != state.name:
                    state = new_state
                    break
    return raised


def pathway_parameters(*, care_pathway_id: int, definition: CompiledDefinition) -> dict[str, float]:
    """The values of the pathway's parameters for this patient (`params` in conditions):
    each set value, or the definition's default."""
    return parameter_values(care_pathway_id=care_pathway_id, definition=definition)


def alert_raise(
    *,
    pathway_id: int,
    instance_id: int,
    alert: AlertSpec,
    observation: Observation | None,
    now: dt.datetime | None = None,
    score: int | None = None,
) -> AlertRecord | None:
    """Raise `alert` on the pathway: fire its event (as the system) when the current state
    handles it, open its task, carry its priority, record it, refresh the pathway's risk.
    Returns None when the alert's earlier work is still open (the repeat is counted, and
    escalates that work when worse), or when the pathway no longer watches this alert."""
    now = now or timezone.now()
    if score is None:
        score = score_of(alert.score, None, now, observation, {})
    with transaction.atomic():
        instance = lock_instance(instance_id=instance_id)
        definition = instance_definition(instance)
        state = definition.state(instance.state)
        if instance.status != PathwayInstance.Status.ACTIVE or alert not in definition.alerts_in(
            state
        ):
            return None
        if _absorbed(pathway_id, alert.name, alert.priority, score, definition, now):
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
        refusal, opened, fired = "", [], False
        if alert.event is not None and alert.event in state.transitions:
            try:
                # A refusal is stored on the alert record: in English, like every stored text,
                # whatever language the request that recorded the observation asked for.
                with translation.override("en"):
                    result = care_pathway_fire(
                        pathway=pathway, event=alert.event, user=None, payload=payload
                    )
            except TransitionRefused as exc:  # e.g. a guard on the alert's event said no
                refusal = exc.message[:500]
            else:
                fired = True
                opened = list(
                    Task.objects.filter(
                        care_pathway_id=pathway_id, pathway_revision=result.entry.revision
                    ).order_by("priority_rank", "id")
                )
        instance = lock_instance(instance_id=instance_id)
        task = _work_of(opened, alert.role)
        if instance.status == PathwayInstance.Status.ACTIVE and task is None:
            if alert.role or not opened:
                current = instance_definition(instance)
                task = open_system_task(
                    instance=instance,
                    definition=current,
                    state=current.state(instance.state),
                    code=alert.task_code,
                    description=alert.description,
                    title=alert.title
                    or {"en": f"Alert: {alert.name}", "fr": f"Alerte : {alert.name}"},
                    role=alert.role or DEFAULT_ALERT_ROLE,
                    priority=alert.priority,
                    due=PRIORITY_DUE_WITHIN.get(alert.priority),
                    now=now,
                )
                opened.append(task)
            else:
                task = opened[0]
        for work in opened:
            task_priority_raise(
                work,
                priority=alert.priority,
                due_within=PRIORITY_DUE_WITHIN.get(alert.priority),
                actor_label=SYSTEM_LABEL,
                now=now,
                detail={"alert": alert.name},
            )
        record = _alert_create(
            care_pathway_id=pathway_id,
            patient_id=pathway.patient_id,
            name=alert.name,
            kind=AlertRecord.Kind.CONDITION,
            state=state.name,
            event=alert.event if fired or refusal else "",
            priority=alert.priority,
            observation_id=observation.pk if observation is not None else None,
            fired=fired,
            refusal=refusal,
            task=task,
            raised_at=now,
            last_seen_at=now,
            score=score,
            definition=definition,
        )
        return record


def _work_of(opened: Sequence[Task], role: str | None) -> Task | None:
    """The task that is the alert's work among those its event opened: the first for the
    alert's role, or (no role named) the first of all."""
    if role is None:
        return opened[0] if opened else None
    return next((t for t in opened if t.offered_role == role), None)


def _absorbed(
    pathway_id: int,
    name: str,
    priority: str,
    score: int,
    definition: CompiledDefinition,
    now: dt.datetime,
) -> bool:
    """Whether a repeat of the alert is absorbed by its earlier, still open work; counts it,
    and escalates that work when the repeat is worse."""
    recent = (
        AlertRecord.objects.select_for_update(of=("self",))
        .filter(care_pathway_id=pathway_id, name=name)
        .select_related("task")
        .order_by("-raised_at", "-id")
        .first()
    )
    if recent is None:
        return False
    if recent.task is not None:
        if recent.task.status not in task_states.OPEN:
            return False  # the work is done: a new reading is a new alert
    else:
        window = parse_duration(settings.PARCOURS_ALERT_DEBOUNCE)
        if recent.raised_at <= now - window:
            return False
    recent.repeats += 1
    recent.last_seen_at = now
    fields = ["repeats", "last_seen_at"]
    bands = definition.monitoring.bands
    band = recent.band
    if score > recent.score:
        others = sum(open_alert_scores(care_pathway_id=pathway_id).values()) - recent.score
        band = bands.band(max(others, 0) + score)
    rank = task_states.PRIORITY_RANK
    worse = (
        rank[priority] < rank[recent.priority]
        or score > recent.score
        or BAND_RANK[RiskBand(band)] < BAND_RANK[RiskBand(recent.band)]
    )
    if worse:
        if rank[priority] < rank[recent.priority]:
            recent.priority = priority
        recent.score = max(recent.score, score)
        recent.escalated_at = now
        fields += ["priority", "score", "escalated_at"]
    recent.save(update_fields=fields)
    if worse:
        risk = pathway_risk_refresh(care_pathway_id=pathway_id, bands=bands, now=now)
        recent.band = risk.band
        recent.save(update_fields=["band"])
        if recent.task_id is not None:
            wanted = recent.priority
            least = band_priority(risk.band)
            if least is not None and rank[least] < rank[wanted]:
                wanted = least
            task = Task.objects.select_for_update().get(pk=recent.task_id)  # open: checked
            task_priority_raise(
                task,
                priority=wanted,
                due_within=PRIORITY_DUE_WITHIN.get(wanted),
                actor_label=SYSTEM_LABEL,
                now=now,
                detail={"alert": name, "escalated": True},
            )
        _alert_event(recent, events.ALERT_ESCALATED)
    return True


def lock_listeners(*, patient_id: int) -> list[Listener]:
    """Lock the instances of the patient's listening pathways, in id order, then the
    patient's care pathway rows (which a raised alert's risk update takes: see
    coordination.services.triage). Called before anything else is written in the same
    transaction (see the module docstring)."""
    listeners = alert_listeners(patient_id=patient_id)
    for listener in listeners:
        lock_instance(instance_id=listener.instance_id)
    if listeners:
        list(
            CarePathway.objects.select_for_update()
            .filter(patient_id=patient_id)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
    return listeners


# --- missing measurements ----------------------------------------------------------------------


def missing_measurements_check(*, now: dt.datetime | None = None) -> list[AlertRecord]:
    """Open a task for every `expects` rule of an active pathway's current state whose
    measurement has not arrived for longer than `every` (counted from the latest measurement,
    or from entering the state if none arrived since). Once per gap: the next task for the
    same rule waits for a measurement to arrive and then lapse again. Nothing is expected of
    a patient who withdrew `remote_monitoring`; once they give it again, the gap counts from
    that moment. Safe to run twice."""
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
        for expectation in definition.expects_in(state):
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
        # Read only when a task would open (the rare case): a withdrawn remote monitoring
        # expects nothing; given again, the gap counts from then, not across the withdrawal.
        scope = Consent.Scope.REMOTE_MONITORING
        if consent_withdrawn_since(patient_id=pathway.patient_id, scope=scope) is not None:
            return None
        resumed = consent_resumed_at(patient_id=pathway.patient_id, scope=scope)
        if resumed is not None and resumed > since:
            since = resumed
            if add_duration(since, expectation.every) > now:
                return None
        name = expectation.key
        if AlertRecord.objects.filter(
            care_pathway_id=pathway.pk,
            name__in=(name, f"missing:{expectation.code}"),  # the latter: records before names
            raised_at__gte=since,
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
            due=PRIORITY_DUE_WITHIN.get(expectation.priority),
            now=now,
        )
        params = pathway_parameters(care_pathway_id=pathway.pk, definition=definition)
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
            score=score_of(expectation.score, None, now, None, params),
            definition=definition,
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
    "pathway_parameters",
    "score_of",
]


def _alert_create(*, definition: CompiledDefinition, **fields: Any) -> AlertRecord:
    """Store an alert, refresh its pathway's risk (the band is stored on the alert) and
    record its outbox event, in the caller's transaction."""
    record = AlertRecord.objects.create(**fields)
    risk = pathway_risk_refresh(
        care_pathway_id=record.care_pathway_id,
        bands=definition.monitoring.bands,
        now=record.raised_at,
    )
    if risk.band != record.band:
        record.band = risk.band
        record.save(update_fields=["band"])
    _alert_event(record, events.ALERT_RAISED)
    return record


def _alert_event(record: AlertRecord, type: str) -> None:
    event_record(
        type=type,
        patient=record.patient_id,
        payload=events.alert_payload(
            alert_id=record.pk,
            name=record.name,
            pathway_id=record.care_pathway_id,
            priority=record.priority,
            fired=record.fired,
            task_id=record.task_id,
            kind=record.kind,
            score=record.score,
            band=record.band,
        ),
        occurred_at=record.last_seen_at,
    )
