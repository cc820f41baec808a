"""Pathway-level monitoring: alerts watched in every non-final state, declared suspensions,
priority carried to the alert's work, debounce only while that work is open, escalation of a
worse repeat, trends (`rise`), per-patient parameters' defaults, and the risk score and band."""

from __future__ import annotations

import datetime as dt
import textwrap
import threading
from typing import Any

import pytest
import time_machine
from django.db import connections

from coordination.models import AlertRecord, CarePathway, Task, TaskEvent
from coordination.services import care_pathway_fire, care_pathway_start
from coordination.services.alerts import missing_measurements_check
from coordination.services.jobs import overdue_tasks_escalate
from coordination.services.observations import observations_ingest
from coordination.services.parameters import parameter_set
from coordination.services.tasks import TaskActionInput, task_act
from directory.services import care_team_member_add
from live.models import OutboxEvent
from patients.models import Patient
from tests.coordination.conftest import Scene, make_patient, make_practitioner
from workflows.actors import Actor
from workflows.definition import validate_source
from workflows.services import definition_publish

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)
WEIGHT, SPO2, HEART_RATE = "29463-7", "59408-5", "8867-4"

WATCHED = textwrap.dedent(
    """
    key: watched
    version: 1
    title: Watched everywhere
    roles: [gp, nurse, coordinator, cardiologist, patient]
    initial: monitoring
    monitoring:
      parameters:
        spo2_floor: {default: 90, minimum: 80, maximum: 95, unit: '%', roles: [gp]}
      alerts:
        - name: weight-gain
          when: "observation.code == '29463-7' && rise('29463-7', 'P3D') >= 2.0"
          event: decompensation_risk
          role: nurse
          priority: urgent
          score: [{when: "rise('29463-7', 'P3D') >= 3.0", points: 3}, {points: 2}]
        - name: low-spo2
          when: "observation.code == '59408-5' && observation.value < params.spo2_floor"
          role: nurse
          priority: urgent
          score: 3
          description: {en: Call the patient and repeat the measurement, fr: Appeler le patient}
          escalate_to: cardiologist
        - name: fast-heart
          when: "observation.code == '8867-4' && observation.value > 120.0"
          event: tachycardia
          role: cardiologist
          priority: stat
          score: 2
      expects:
        - {name: no-weight, code: '29463-7', every: P3D, role: nurse, score: 2}
      triage:
        bands: {medium: 3, high: 5}
    states:
      monitoring:
        on:
          decompensation_risk: review
          tachycardia: review
          admitted: {to: hospital, roles: [gp]}
          stop: {to: closed, roles: [gp]}
      review:
        on_enter:
          - task: {code: assess, title: Assess, role: gp, due: P1D}
        on:
          resolved: {to: monitoring, roles: [gp]}
          admitted: {to: hospital, roles: [gp]}
      hospital:
        suspends:
          - {name: weight-gain, reason: {en: The ward weighs the patient, fr: Le service pèse}}
          - {name: no-weight, reason: {en: No scale at hospital, fr: Pas de balance}}
        on:
          home: {to: monitoring, roles: [gp]}
      closed: {final: true}
    """
)


@pytest.fixture
def frozen():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def watched(db: None, frozen) -> Scene:
    definition_publish(source=WATCHED, actor=Actor(id="test"), fmt="yaml")
    patient = make_patient()
    gp, nurse = make_practitioner("gp"), make_practitioner("nurse")
    coordinator, cardiologist = (
        make_practitioner("coordinator"),
        make_practitioner("specialist", specialty="cardiology"),
    )
    for role, who in (
        ("gp", gp),
        ("nurse", nurse),
        ("coordinator", coordinator),
        ("cardiologist", cardiologist),
    ):
        care_team_member_add(patient=patient, role=role, practitioner=who, actor=None)
    pathway = care_pathway_start(patient=patient, key="watched", user=gp.user)
    return Scene(patient, gp, nurse, coordinator, cardiologist, pathway)


def item(code: str, value: Any, unit: str, at: dt.datetime) -> dict[str, Any]:
    return {"code": code, "value": value, "unit": unit, "effective_at": at}


def ingest(patient: Patient, items: Any, now: dt.datetime = T0) -> list[AlertRecord]:
    if isinstance(items, dict):
        items = [items]
    return observations_ingest(
        patient=patient, observations=items, actor=None, source="device", now=now
    ).alerts


def move(scene: Scene, event: str, *, system: bool = False) -> None:
    user = None if system else scene.gp.user
    care_pathway_fire(pathway=scene.pathway, event=event, user=user)


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


def task_of(alert: AlertRecord) -> int:
    assert alert.task_id is not None
    return alert.task_id


def risk(pathway: CarePathway) -> tuple[int, str]:
    pathway.refresh_from_db()
    return pathway.risk_score, pathway.risk_band


def test_a_pathway_alert_is_watched_in_a_state_that_declares_no_alert(watched: Scene):
    move(watched, "decompensation_risk", system=True)  # into `review`, which declares nothing
    assert state_of(watched.pathway) == "review"

    [alert] = ingest(watched.patient, item(SPO2, 80, "%", T0))

    assert alert.name == "low-spo2"
    assert ("alert-low-spo2", "nurse", "urgent") in open_tasks(watched.pathway)
    task = Task.objects.get(code="alert-low-spo2")
    assert task.due_at is not None
    assert task.due_at <= T0 + 4 * HOUR


def test_a_suspended_alert_opens_nothing_and_the_others_still_watch(watched: Scene):
    move(watched, "admitted")
    ingest(watched.patient, item(WEIGHT, "80.0", "kg", T0 - 2 * DAY), now=T0 - 2 * DAY)

    raised = ingest(watched.patient, item(WEIGHT, "84.0", "kg", T0))
    assert raised == []

    [alert] = ingest(watched.patient, item(SPO2, 82, "%", T0 + HOUR), now=T0 + HOUR)
    assert alert.name == "low-spo2"


def test_a_final_state_watches_nothing(watched: Scene):
    move(watched, "stop")

    assert ingest(watched.patient, item(SPO2, 70, "%", T0)) == []
    assert AlertRecord.objects.count() == 0


def test_a_stat_alert_carries_its_priority_and_due_time_to_the_tasks_its_event_opens(
    watched: Scene,
):
    [alert] = ingest(watched.patient, item(HEART_RATE, 150, "/min", T0))

    assert state_of(watched.pathway) == "review"
    assess = Task.objects.get(code="assess")  # routine, due P1D in the definition
    assert (assess.priority, assess.due_at) == ("stat", T0 + HOUR)
    entry = TaskEvent.objects.get(task=assess, action="escalate")
    assert entry.detail["alert"] == "fast-heart"
    # The event opened no task for the alert's own role: the cardiologist gets one too.
    own = Task.objects.get(code="alert-fast-heart")
    assert (own.offered_role, own.priority, own.due_at) == ("cardiologist", "stat", T0 + HOUR)
    assert alert.task_id == own.pk


def test_rise_sees_a_gain_that_follows_a_dip(watched: Scene):
    ingest(watched.patient, item(WEIGHT, "80.0", "kg", T0 - 2 * DAY), now=T0 - 2 * DAY)
    ingest(watched.patient, item(WEIGHT, "78.5", "kg", T0 - DAY), now=T0 - DAY)

    # last - first = 0.6 kg (delta would miss it); last - lowest = 2.1 kg.
    [alert] = ingest(watched.patient, item(WEIGHT, "80.6", "kg", T0))

    assert alert.name == "weight-gain"
    assert alert.score == 2


def test_a_repeat_is_absorbed_only_while_the_alerts_work_is_open(watched: Scene):
    [first] = ingest(watched.patient, item(SPO2, 85, "%", T0))
    assert ingest(watched.patient, item(SPO2, 86, "%", T0 + HOUR), now=T0 + HOUR) == []
    first.refresh_from_db()
    assert first.repeats == 1

    # The nurse deals with it; 190 minutes later the same reading is a new alert.
    task_act(
        task_id=task_of(first),
        user=watched.nurse.user,
        data=TaskActionInput(action="complete"),
        now=T0 + 2 * HOUR,
    )
    later = T0 + 2 * HOUR + dt.timedelta(minutes=190)
    [second] = ingest(watched.patient, item(SPO2, 85, "%", later), now=later)

    assert second.pk != first.pk
    assert Task.objects.filter(code="alert-low-spo2", status="ready").count() == 1


def test_a_cancelled_alert_task_lets_the_next_reading_raise_again(watched: Scene):
    [first] = ingest(watched.patient, item(SPO2, 85, "%", T0))
    task_act(
        task_id=task_of(first),
        user=watched.coordinator.user,
        data=TaskActionInput(action="cancel", note="duplicate device"),
        now=T0 + HOUR,
    )

    [second] = ingest(watched.patient, item(SPO2, 85, "%", T0 + 2 * HOUR), now=T0 + 2 * HOUR)

    assert second.pk != first.pk


def test_a_worse_repeat_escalates_the_open_work(watched: Scene):
    ingest(watched.patient, item(WEIGHT, "80.0", "kg", T0 - 2 * DAY), now=T0 - 2 * DAY)
    [alert] = ingest(watched.patient, item(WEIGHT, "82.2", "kg", T0 - DAY), now=T0 - DAY)
    assert (alert.score, alert.band) == (2, "low")
    work = Task.objects.get(pk=task_of(alert))
    assert work.code == "alert-weight-gain"  # `assess` is the GP's: the nurse gets her own
    [spo2] = ingest(watched.patient, item(SPO2, 85, "%", T0 - DAY), now=T0 - DAY)
    assert risk(watched.pathway) == (5, "high")  # weight 2 + SpO2 3
    task_act(
        task_id=task_of(spo2),
        user=watched.nurse.user,
        data=TaskActionInput(action="complete"),
        now=T0 - DAY + HOUR,
    )
    assert risk(watched.pathway) == (2, "low")
    before = OutboxEvent.objects.filter(type="alert.escalated").count()

    # +3.5 kg: the score rule now gives 3 points; the band goes to medium.
    raised = ingest(watched.patient, item(WEIGHT, "83.5", "kg", T0))

    assert raised == []
    alert.refresh_from_db()
    assert (alert.score, alert.band, alert.repeats) == (3, "medium", 1)
    assert alert.escalated_at == T0
    assert risk(watched.pathway) == (3, "medium")
    assert OutboxEvent.objects.filter(type="alert.escalated").count() == before + 1
    work.refresh_from_db()
    assert work.priority == "urgent"
    assert work.due_at is not None
    assert work.due_at <= T0 + 4 * HOUR


def test_a_high_band_raises_the_open_work_to_asap(watched: Scene):
    ingest(watched.patient, item(WEIGHT, "80.0", "kg", T0 - 2 * DAY), now=T0 - 2 * DAY)
    [weight] = ingest(watched.patient, item(WEIGHT, "82.2", "kg", T0 - HOUR), now=T0 - HOUR)
    ingest(watched.patient, item(SPO2, 85, "%", T0 - HOUR), now=T0 - HOUR)  # 2 + 3: high
    assert Task.objects.get(pk=task_of(weight)).due_at == T0 + 3 * HOUR

    ingest(watched.patient, item(WEIGHT, "83.5", "kg", T0))  # 3 + 3: still high, worse score

    work = Task.objects.get(pk=task_of(weight))
    assert work.priority == "asap"
    assert work.due_at == T0 + 2 * HOUR


def test_a_missing_weight_is_checked_in_every_state_but_where_suspended(watched: Scene):
    move(watched, "decompensation_risk", system=True)
    [missing] = missing_measurements_check(now=T0 + 3 * DAY + HOUR)
    assert (missing.name, missing.score) == ("no-weight", 2)
    assert ("missing-29463-7", "nurse", "urgent") in open_tasks(watched.pathway)


def test_no_missing_weight_task_while_in_hospital(watched: Scene):
    move(watched, "admitted")

    assert missing_measurements_check(now=T0 + 5 * DAY) == []


def test_the_default_parameter_is_read_by_the_condition(watched: Scene):
    assert ingest(watched.patient, item(SPO2, 90, "%", T0)) == []
    [alert] = ingest(watched.patient, item(SPO2, 89, "%", T0 + HOUR), now=T0 + HOUR)
    assert alert.name == "low-spo2"


SMALL = textwrap.dedent(
    """
    key: small
    version: 1
    title: Small
    roles: [gp, nurse]
    initial: watching
    monitoring:
      parameters:
        spo2_floor: {default: 90, minimum: 80, maximum: 95}
      alerts:
        - name: low-spo2
          when: "observation.code == '59408-5' && observation.value < params.spo2_floor"
          role: nurse
    states:
      watching:
        alerts:
          - name: weight-gain
            when: "observation.code == '29463-7' && rise('29463-7', 'P3D') >= 2.0"
            role: nurse
        on:
          call: {to: calling, roles: [gp]}
      calling:
        on:
          done: {to: closed, roles: [gp]}
      closed: {final: true}
    """
)


def test_validation_warns_about_a_state_that_leaves_a_measurement_unwatched():
    result = validate_source(SMALL, filename="small.yaml")

    assert result.problems == []
    # `calling` watches SpO2 (the pathway alert) but not the weight `watching` watches.
    assert [(w.location, w.message.split(" monitored")[0]) for w in result.warnings] == [
        ("states.calling", "measurement 29463-7")
    ]
    assert validate_source(WATCHED, filename="watched.yaml").warnings == []


def test_suspending_an_unknown_alert_is_a_problem():
    source = WATCHED.replace("{name: no-weight, reason", "{name: no-wieght, reason")

    problems = validate_source(source, filename="watched.yaml").problems

    assert [(p.location, p.message) for p in problems] == [
        (
            "states.hospital.suspends.1.name",
            "'no-wieght' is not a pathway alert or expectation under 'monitoring'; "
            "did you mean 'no-weight'?",
        )
    ]


def test_a_pathway_alert_without_a_role_or_with_an_unknown_parameter_is_refused():
    source = SMALL.replace("params.spo2_floor", "params.spo2_flor").replace(
        "      role: nurse\nstates:", "states:"
    )

    problems = {(p.location, p.message) for p in validate_source(source).problems}

    assert problems == {
        (
            "monitoring.alerts.0",
            "a pathway alert needs a 'role': who is told when the current state does not "
            "handle its event",
        ),
        (
            "monitoring.alerts.0.when",
            "unknown parameter params.spo2_flor (declared under monitoring.parameters: spo2_floor)",
        ),
    }


EARLY_WARNING = textwrap.dedent(
    """
    key: early-warning
    version: 1
    title: Early warning
    roles: [gp, nurse]
    initial: watching
    monitoring:
      alerts:
        - name: news2-high
          when: "news2('PT4H') >= 7"
          role: nurse
          priority: stat
        - name: news2-partial-high
          when: "news2('PT4H') == null && news2_partial('PT4H') >= 5"
          role: nurse
          priority: urgent
    states:
      watching:
        on:
          stop: {to: closed, roles: [gp]}
      closed: {final: true}
    """
)
VITALS = {  # RCP NEWS2 chart: 3 + 0 + 2 + 0 + 1 + 0 + 1 = 7 when complete
    "9279-1": (26, "/min"),  # respiration >= 25: 3
    "59408-5": (96, "%"),  # scale 1, >= 96: 0
    "3151-8": (2, "L/min"),  # on oxygen: 2
    "8480-6": (120, "mm[Hg]"),  # 111-219: 0
    "8867-4": (95, "/min"),  # 91-110: 1
    "67775-7": (0, "{ACVPU}"),  # alert: 0
    "8310-5": ("38.5", "Cel"),  # 38.1-39.0: 1
}


@pytest.fixture
def early(db: None, frozen) -> Scene:
    definition_publish(source=EARLY_WARNING, actor=Actor(id="test"), fmt="yaml")
    patient = make_patient()
    gp, nurse = make_practitioner("gp"), make_practitioner("nurse")
    care_team_member_add(patient=patient, role="gp", practitioner=gp, actor=None)
    care_team_member_add(patient=patient, role="nurse", practitioner=nurse, actor=None)
    pathway = care_pathway_start(patient=patient, key="early-warning", user=gp.user)
    return Scene(patient, gp, nurse, gp, nurse, pathway)


def test_news2_with_every_vital_sign_raises_the_complete_score_alert(early: Scene):
    items = [item(code, value, unit, T0) for code, (value, unit) in VITALS.items()]

    raised = ingest(early.patient, items)

    assert [a.name for a in raised] == ["news2-high"]
    assert Task.objects.get(code="alert-news2-high").priority == "stat"


def test_news2_without_every_vital_sign_is_partial(early: Scene):
    present = {c: v for c, v in VITALS.items() if c not in ("3151-8", "67775-7")}
    items = [item(code, value, unit, T0) for code, (value, unit) in present.items()]

    raised = ingest(early.patient, items)  # partial total: 3 + 0 + 0 + 1 + 1 = 5

    assert [a.name for a in raised] == ["news2-partial-high"]


def test_a_patients_own_parameter_is_read_by_the_condition(watched: Scene):
    # A COPD patient: SpO2 floor 88 % for this patient, same pathway version.
    parameter_set(
        user=watched.gp.user,
        care_pathway_id=watched.pathway.pk,
        name="spo2_floor",
        value=88,
        reason="COPD: chronic hypoxaemia, target 88-92 %",
    )

    assert ingest(watched.patient, item(SPO2, 89, "%", T0)) == []
    [alert] = ingest(watched.patient, item(SPO2, 87, "%", T0 + HOUR), now=T0 + HOUR)
    assert alert.name == "low-spo2"


def test_concurrent_critical_readings_raise_one_alert_and_count_the_repeats(
    postgres_transactional, frozen
):
    definition_publish(source=WATCHED, actor=Actor(id="test"), fmt="yaml")
    patient = make_patient()
    gp, nurse = make_practitioner("gp"), make_practitioner("nurse")
    care_team_member_add(patient=patient, role="gp", practitioner=gp, actor=None)
    care_team_member_add(patient=patient, role="nurse", practitioner=nurse, actor=None)
    pathway = care_pathway_start(patient=patient, key="watched", user=gp.user)
    workers = 4
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def post(minute: int) -> None:
        try:
            barrier.wait()
            at = T0 + dt.timedelta(minutes=minute)
            ingest(patient, item(SPO2, 85, "%", at), now=at)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    record = AlertRecord.objects.get()
    assert record.repeats == workers - 1
    assert Task.objects.filter(code="alert-low-spo2").count() == 1
    assert risk(pathway) == (3, "medium")


def test_an_overdue_alert_task_escalates_to_the_alerts_role(watched: Scene):
    [alert] = ingest(watched.patient, item(SPO2, 85, "%", T0))
    task = Task.objects.get(pk=task_of(alert))
    assert task.description == {
        "en": "Call the patient and repeat the measurement",
        "fr": "Appeler le patient",
    }

    escalated = overdue_tasks_escalate(now=T0 + 5 * HOUR)

    assert escalated == [task.pk]
    assert ("escalation-alert-low-spo2", "cardiologist", "urgent") in open_tasks(watched.pathway)
