from __future__ import annotations

import datetime as dt
import textwrap
from typing import Any

import pytest
import time_machine

from coordination import tasks as jobs
from coordination.models import AlertRecord, CarePathway, Task
from coordination.services import care_pathway_start
from coordination.services.alerts import SeriesCache, missing_measurements_check
from coordination.services.observations import observations_ingest
from directory.services import care_team_member_add
from patients.errors import InvalidObservation
from patients.models import Observation, Patient
from patients.selectors import delta, last_value
from tests.coordination.conftest import Scene, make_patient, make_practitioner
from workflows.actors import Actor
from workflows.models import HistoryEntry
from workflows.services import definition_publish

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)
WEIGHT, SPO2, GLUCOSE, HEART_RATE = "29463-7", "59408-5", "41653-7", "8867-4"

ALERT_TEST = textwrap.dedent(
    """
    key: alert-test
    version: 1
    title: Alert test
    roles: [gp, nurse, coordinator, patient]
    initial: monitoring
    states:
      monitoring:
        expects:
          - {code: '29463-7', every: P3D, role: nurse}
        alerts:
          - name: weight-gain
            title: {en: Weight gain, fr: Prise de poids}
            when: "observation.code == '29463-7' && delta('29463-7', 'P3D') >= 2.0"
            event: decompensation_risk
          - name: low-spo2
            when: "observation.code == '59408-5' && observation.value < 90.0"
            event: hypoxaemia
            role: nurse
          - name: hypoglycaemia
            when: >-
              observation.code == '41653-7' &&
              observation.unit == 'g/L' && observation.value < 0.70
            event: hypoglycaemia
          - name: fast-heart
            when: "last('8867-4') > 120.0"
            event: tachycardia
        on:
          decompensation_risk: nurse_review
          hypoxaemia: monitoring
          hypoglycaemia: glucose_review
          tachycardia: monitoring
          stop: {to: closed, roles: [gp]}
      nurse_review:
        on_enter:
          - task: {code: call-patient, title: Call the patient, role: nurse, due: PT4H,
                   priority: urgent}
        on:
          resolved: {to: monitoring, roles: [nurse]}
      glucose_review:
        on:
          resolved: {to: monitoring, roles: [gp]}
      closed: {final: true}
    """
)


@pytest.fixture
def frozen():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def monitored(db: None, frozen) -> Scene:
    definition_publish(source=ALERT_TEST, actor=Actor(id="test"), fmt="yaml")
    patient = make_patient()
    gp, nurse = make_practitioner("gp"), make_practitioner("nurse")
    coordinator, outsider = make_practitioner("coordinator"), make_practitioner("nurse")
    care_team_member_add(patient=patient, role="gp", practitioner=gp, actor=None)
    care_team_member_add(patient=patient, role="nurse", practitioner=nurse, actor=None)
    care_team_member_add(patient=patient, role="coordinator", practitioner=coordinator, actor=None)
    pathway = care_pathway_start(patient=patient, key="alert-test", user=gp.user)
    return Scene(patient, gp, nurse, coordinator, outsider, pathway)


def item(code: str, value: Any, unit: str, at: dt.datetime) -> dict[str, Any]:
    return {"code": code, "value": value, "unit": unit, "effective_at": at}


def ingest(patient: Patient, items: Any, now: dt.datetime = T0) -> list[AlertRecord]:
    return observations_ingest(
        patient=patient, observations=items, actor=None, source="device", now=now
    ).alerts


def state_of(pathway: CarePathway) -> str:
    assert pathway.instance is not None
    pathway.instance.refresh_from_db()
    return pathway.instance.state


def open_tasks(pathway: CarePathway) -> list[tuple[str, str, str]]:
    return sorted(
        Task.objects.filter(care_pathway=pathway, status="ready").values_list(
            "code", "offered_role", "priority"
        )
    )


def test_weight_up_two_kg_within_three_days_fires_the_event_and_opens_the_state_task(
    monitored: Scene,
):
    ingest(monitored.patient, item(WEIGHT, "80.0", "kg", T0 - 2 * DAY))

    raised = ingest(monitored.patient, item(WEIGHT, "82.0", "kg", T0))

    assert [(a.name, a.event, a.fired, a.state) for a in raised] == [
        ("weight-gain", "decompensation_risk", True, "monitoring")
    ]
    assert state_of(monitored.pathway) == "nurse_review"
    assert open_tasks(monitored.pathway) == [("call-patient", "nurse", "urgent")]
    assert raised[0].task is not None
    assert raised[0].task.code == "call-patient"
    entry = HistoryEntry.objects.filter(instance=monitored.pathway.instance).last()
    assert entry is not None
    assert (entry.event, entry.actor, entry.payload["alert"], entry.payload["value"]) == (
        "decompensation_risk",
        "system",
        "weight-gain",
        82.0,
    )


def test_weight_up_less_than_two_kg_raises_nothing(monitored: Scene):
    ingest(monitored.patient, item(WEIGHT, "80.0", "kg", T0 - 2 * DAY))

    raised = ingest(monitored.patient, item(WEIGHT, "81.9", "kg", T0))

    assert raised == []
    assert state_of(monitored.pathway) == "monitoring"
    assert open_tasks(monitored.pathway) == []


def test_weight_gain_spread_over_more_than_three_days_raises_nothing(monitored: Scene):
    ingest(monitored.patient, item(WEIGHT, "80.0", "kg", T0 - 4 * DAY))

    raised = ingest(monitored.patient, item(WEIGHT, "83.0", "kg", T0))

    assert raised == []
    assert not AlertRecord.objects.exists()


def test_low_spo2_opens_an_urgent_task_for_the_role_the_alert_names(monitored: Scene):
    raised = ingest(monitored.patient, item(SPO2, 88, "%", T0))

    assert [(a.name, a.fired) for a in raised] == [("low-spo2", True)]
    assert state_of(monitored.pathway) == "monitoring"
    assert open_tasks(monitored.pathway) == [("alert-low-spo2", "nurse", "urgent")]
    task = Task.objects.get(code="alert-low-spo2")
    assert (task.owner, task.pathway_state, task.pathway_revision) == (
        monitored.nurse,
        "monitoring",
        None,
    )


def test_spo2_at_ninety_percent_raises_nothing(monitored: Scene):
    raised = ingest(monitored.patient, item(SPO2, 90, "%", T0))

    assert raised == []
    assert open_tasks(monitored.pathway) == []


def test_glucose_below_0_7_g_per_litre_opens_a_task_for_the_coordinator(monitored: Scene):
    raised = ingest(monitored.patient, item(GLUCOSE, "0.65", "g/L", T0))

    assert [a.name for a in raised] == ["hypoglycaemia"]
    assert state_of(monitored.pathway) == "glucose_review"
    assert open_tasks(monitored.pathway) == [("alert-hypoglycaemia", "coordinator", "urgent")]
    task = Task.objects.get(code="alert-hypoglycaemia")
    assert task.title == {"en": "Alert: hypoglycaemia", "fr": "Alerte : hypoglycaemia"}


def test_an_alert_on_last_value_reads_the_latest_measurement(monitored: Scene):
    raised = ingest(monitored.patient, item(HEART_RATE, 130, "/min", T0))

    assert [a.name for a in raised] == ["fast-heart"]
    assert raised[0].observation_id is None


def test_a_repeat_within_the_debounce_window_opens_no_new_task(monitored: Scene):
    ingest(monitored.patient, item(SPO2, 88, "%", T0))

    raised = ingest(monitored.patient, item(SPO2, 87, "%", T0 + 2 * HOUR), now=T0 + 2 * HOUR)

    assert raised == []
    assert Task.objects.filter(code="alert-low-spo2").count() == 1
    record = AlertRecord.objects.get()
    assert (record.repeats, record.last_seen_at) == (1, T0 + 2 * HOUR)


def test_a_repeat_while_the_work_is_still_open_opens_nothing_even_after_the_window(
    monitored: Scene, settings
):
    # Debounce follows the work, not the clock: the nurse has not dealt with the first alert.
    settings.PARCOURS_ALERT_DEBOUNCE = "PT12H"
    ingest(monitored.patient, item(SPO2, 88, "%", T0))
    later = T0 + 13 * HOUR

    raised = ingest(monitored.patient, item(SPO2, 88, "%", later), now=later)

    assert raised == []
    assert AlertRecord.objects.get().repeats == 1
    statuses = Task.objects.filter(code="alert-low-spo2").values_list("status", flat=True)
    assert list(statuses) == ["ready"]


def test_a_batch_of_triggering_values_raises_the_alert_once(monitored: Scene):
    items = [item(SPO2, 85 + i % 3, "%", T0 - i * HOUR) for i in range(20)]

    raised = ingest(monitored.patient, items)

    assert [a.name for a in raised] == ["low-spo2"]
    record = AlertRecord.objects.get()
    assert record.repeats == 19
    assert Task.objects.filter(code="alert-low-spo2").count() == 1


def test_a_batch_evaluates_later_rows_against_the_state_an_alert_moved_to(monitored: Scene):
    items = [
        item(WEIGHT, "80.0", "kg", T0 - 2 * DAY),
        item(WEIGHT, "82.5", "kg", T0 - DAY),
        item(SPO2, 85, "%", T0),  # nurse_review has no alerts
    ]

    raised = ingest(monitored.patient, items)

    assert [a.name for a in raised] == ["weight-gain"]
    assert state_of(monitored.pathway) == "nurse_review"


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (item(WEIGHT, -3, "kg", T0), "value"),
        (item(SPO2, 85, "mmHg", T0), "unit"),
        (item("0000-0", 1, "kg", T0), "code"),
        (item(SPO2, "NaN", "%", T0), "value"),
    ],
)
def test_nonsensical_values_are_refused_and_never_raise_an_alert(monitored: Scene, bad, field):
    with pytest.raises(InvalidObservation) as refused:
        ingest(monitored.patient, [item(SPO2, 80, "%", T0), bad])

    assert [p.location for p in refused.value.problems] == [f"items.1.{field}"]
    assert not Observation.objects.exists()
    assert not AlertRecord.objects.exists()
    assert state_of(monitored.pathway) == "monitoring"
    assert open_tasks(monitored.pathway) == []


def test_a_pathway_in_another_patient_is_not_alerted(monitored: Scene):
    other = make_patient()

    raised = ingest(other, item(SPO2, 80, "%", T0))

    assert raised == []
    assert not AlertRecord.objects.exists()


# --- missing measurements ----------------------------------------------------------------


def test_no_weight_for_three_days_opens_a_task_once(monitored: Scene):
    later = T0 + 3 * DAY + HOUR

    first = missing_measurements_check(now=later)
    second = missing_measurements_check(now=later + HOUR)

    assert [(a.name, a.kind) for a in first] == [("missing-29463-7", "missing")]
    assert second == []
    assert open_tasks(monitored.pathway) == [("missing-29463-7", "nurse", "urgent")]


def test_a_recent_weight_means_nothing_is_missing(monitored: Scene):
    ingest(monitored.patient, item(WEIGHT, "80", "kg", T0 + 2 * DAY), now=T0 + 2 * DAY)

    raised = missing_measurements_check(now=T0 + 3 * DAY + HOUR)

    assert raised == []
    assert open_tasks(monitored.pathway) == []


def test_a_new_gap_after_a_measurement_opens_a_new_task(monitored: Scene):
    missing_measurements_check(now=T0 + 3 * DAY + HOUR)
    ingest(monitored.patient, item(WEIGHT, "80", "kg", T0 + 4 * DAY), now=T0 + 4 * DAY)

    raised = missing_measurements_check(now=T0 + 7 * DAY + HOUR)

    assert [a.name for a in raised] == ["missing-29463-7"]
    assert AlertRecord.objects.filter(kind="missing").count() == 2


def test_the_missing_measurement_job_runs_the_check(monitored: Scene, frozen):
    frozen.shift(3 * DAY + HOUR)

    assert jobs.missing_measurements_run.apply().get() == 1


# --- the series cache agrees with the selectors --------------------------------------------


def test_series_cache_answers_like_the_selectors(db: None):
    patient = make_patient()
    values = ["80", "80.5", "81.4", "79.9", "82.6", "83"]
    ingest(patient, [item(WEIGHT, v, "kg", T0 - i * 13 * HOUR) for i, v in enumerate(values)])
    cache = SeriesCache(patient.pk, T0 - 10 * DAY, T0)

    moments = [T0 - i * 7 * HOUR for i in range(12)]

    for at in moments:
        expected_delta = delta(patient.pk, WEIGHT, "P2D", at)
        expected_last = last_value(patient.pk, WEIGHT, at)
        assert cache.delta(WEIGHT, "P2D", at) == (
            float(expected_delta) if expected_delta is not None else None
        )
        assert cache.last(WEIGHT, at) == (
            float(expected_last.value) if expected_last is not None else None
        )
