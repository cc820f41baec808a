"""Every shipped pathway, in every state but the final ones, answers a clearly critical reading
of each measurement it monitors: an open task of priority urgent or higher for the alert's
role, in the transaction that stored the reading — unless the state suspends that alert, with
a reason it declares.

The cases are generated from the definitions in workflows/library/: a new state, alert or
measurement is covered without anyone remembering to add a test. The pathway is driven into
each state by firing the shortest chain of events from the initial state, as the system (the
same engine path a timer takes), then the reading goes through the real ingestion service.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.db import transaction

from coordination import task_states
from coordination.models import AlertRecord, CarePathway, Task
from coordination.services import care_pathway_fire, care_pathway_start
from coordination.services.observations import observations_ingest
from directory.services import care_team_member_add
from patients.measurements import MEASUREMENTS
from tests.coordination.conftest import make_patient, make_practitioner
from workflows.actors import Actor
from workflows.definition import validate_source
from workflows.definition.compiled import CompiledDefinition, compile_document, localized
from workflows.models import PathwayInstance
from workflows.services import definition_publish
from workflows.shipped import library_files

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
URGENT_OR_HIGHER = {"urgent", "asap", "stat"}
DEFAULT_ALERT_ROLE = "coordinator"  # who gets an alert that names no role


@dataclass(frozen=True)
class Reading:
    value: str
    unit: str
    hours_ago: float = 0


# A clearly critical reading per measurement code, what a clinician trying the pathways would
# post (issue 20): preceded, for a trend, by the readings it is compared with.
CRITICAL: dict[str, tuple[Reading, ...]] = {
    "29463-7": (Reading("80.0", "kg", 48), Reading("84.0", "kg")),  # +4 kg in 48 h
    "59408-5": (Reading("80", "%"),),
    "8867-4": (Reading("150", "/min"),),
    "41653-7": (Reading("0.40", "g/L"),),
    "14743-9": (Reading("2.2", "mmol/L"),),
    "hf-dyspnoea": (Reading("3", "{score}"),),
    "hf-oedema": (Reading("3", "{score}"),),
    "hf-fatigue": (Reading("3", "{score}"),),
    "hf-orthopnoea": (Reading("3", "{score}"),),
}

# Enough to satisfy every guard of the shipped pathways on the way to a state.
PAYLOAD = {
    "reason": "synthetic run",
    "letter_handed_to_patient": True,
    "needs_physio": True,
    "foot_risk_grade": 2,
}


def _definitions() -> list[tuple[Path, CompiledDefinition]]:
    found = []
    for path in library_files():
        result = validate_source(path.read_text(encoding="utf-8"), filename=path.name)
        assert result.ok, (path.name, result.problems)
        found.append((path, compile_document(result.document)))
    return found


def _monitored_codes(definition: CompiledDefinition) -> list[str]:
    codes: set[str] = set(definition.monitoring.measurements)
    for alert in definition.monitoring.alerts:
        codes |= alert.codes
    for state in definition.states.values():
        for alert in state.alerts:
            codes |= alert.codes
    return sorted(codes)


def _cases() -> Iterator[Any]:
    for path, definition in _definitions():
        for code in _monitored_codes(definition):
            for name, state in definition.states.items():
                if not state.final:
                    yield pytest.param(path, name, code, id=f"{definition.key}:{name}:{code}")


CASES = list(_cases())
DEFINITIONS = dict(_definitions())


def test_the_cases_cover_the_monitoring_pathways():
    keys = {param.values[0].stem for param in CASES}

    assert keys == {"hf-telemonitoring", "t2d-follow-up"}  # return home watches no device


def test_every_monitored_code_has_a_critical_reading_and_is_accepted():
    codes = {param.values[2] for param in CASES}

    assert codes <= set(CRITICAL), codes - set(CRITICAL)
    for code in codes:
        assert code in MEASUREMENTS, f"{code} is monitored but not an accepted measurement"
        for reading in CRITICAL[code]:
            assert MEASUREMENTS[code].unit(reading.unit) is not None, (code, reading)


def _path_to(definition: CompiledDefinition, target: str) -> list[str]:
    """The shortest chain of events from the initial state to `target`."""
    queue: deque[tuple[str, list[str]]] = deque([(definition.initial, [])])
    seen = {definition.initial}
    while queue:
        state, events = queue.popleft()
        if state == target:
            return events
        for event, transition in definition.state(state).transitions.items():
            if transition.target not in seen:
                seen.add(transition.target)
                queue.append((transition.target, [*events, event]))
    raise AssertionError(f"{target} is not reachable from {definition.initial}")


def _pathway_in_state(path: Path, definition: CompiledDefinition, target: str) -> CarePathway:
    definition_publish(
        source=path.read_text(encoding="utf-8"), actor=Actor(id="test"), filename=path.name
    )
    patient = make_patient()
    for role in sorted(definition.roles - {"patient"}):
        practitioner = (
            make_practitioner(role)
            if role in ("gp", "nurse", "coordinator")
            else make_practitioner("other")
        )
        care_team_member_add(patient=patient, role=role, practitioner=practitioner, actor=None)
    pathway = care_pathway_start(patient=patient, key=definition.key, user=None)
    for event in _path_to(definition, target):
        assert pathway.instance is not None
        pathway.instance.refresh_from_db()
        transition = definition.state(pathway.instance.state).transitions[event]
        care_pathway_fire(
            pathway=pathway,
            event=event,
            user=None,
            payload=PAYLOAD if transition.guard else {},
        )
    assert pathway.instance is not None
    pathway.instance.refresh_from_db()
    assert pathway.instance.state == target
    assert pathway.instance.status == PathwayInstance.Status.ACTIVE
    return pathway


def _post(pathway: CarePathway, code: str, reading: Reading) -> list[AlertRecord]:
    at = T0 - dt.timedelta(hours=reading.hours_ago)
    item = {"code": code, "value": Decimal(reading.value), "unit": reading.unit, "effective_at": at}
    return observations_ingest(
        patient=pathway.patient, observations=[item], actor=None, source="device", now=T0
    ).alerts


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "state_name", "code"), CASES)
def test_a_critical_reading_opens_urgent_work_in_every_state_unless_suspended(
    path: Path, state_name: str, code: str
):
    definition = DEFINITIONS[path]
    state = definition.state(state_name)
    watching = [a for a in definition.alerts_in(state) if code in a.codes]
    suspended = [
        a for a in definition.monitoring.alerts if code in a.codes and a.name in state.suspends
    ]
    with time_machine.travel(T0, tick=False):
        pathway = _pathway_in_state(path, definition, state_name)
        *earlier, critical = CRITICAL[code]
        for reading in earlier:
            _post(pathway, code, reading)
        before = set(Task.objects.filter(care_pathway=pathway).values_list("pk", flat=True))

        with transaction.atomic():
            raised = _post(pathway, code, critical)
            opened = list(
                Task.objects.filter(care_pathway=pathway, status__in=task_states.OPEN)
                .exclude(pk__in=before)
                .values_list("offered_role", "priority")
            )

    if watching:
        assert raised, f"{definition.key} in {state_name}: nothing raised for {code}"
        by_name = {a.name: a for a in watching}
        for record in raised:
            alert = by_name[record.name]
            role = alert.role or DEFAULT_ALERT_ROLE
            assert any(r == role and p in URGENT_OR_HIGHER for r, p in opened), (
                f"{definition.key} in {state_name}: alert {record.name} opened no urgent task "
                f"for {role} (opened: {opened})"
            )
    else:
        assert suspended, f"{definition.key}: {state_name} leaves {code} unwatched, silently"
        assert raised == []
        assert opened == []
        for alert in suspended:
            reason = state.suspends[alert.name]
            assert localized(reason, "fr").strip()
            assert localized(reason, "en").strip()
