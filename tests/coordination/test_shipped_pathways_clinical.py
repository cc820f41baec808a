"""The clinical behaviour of the shipped pathways (version 2): what an alert, a missing
reading or the passing of time does, through the real ingestion, expectation check, timer
sweep and escalation job."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command

from coordination import task_states
from coordination.models import AlertRecord, CarePathway, Task
from coordination.services import care_pathway_fire
from coordination.services.alerts import missing_measurements_check
from coordination.services.jobs import due_timers_sweep, overdue_tasks_escalate
from coordination.services.observations import observations_ingest
from tests.coordination.test_shipped_monitoring import DEFINITIONS, T0, _pathway_in_state
from workflows.definition import validate_source
from workflows.definition.compiled import compile_document
from workflows.selectors import instance_timers

pytestmark = pytest.mark.django_db
DAY = dt.timedelta(days=1)
LIBRARY = {path.stem: path for path in DEFINITIONS}


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def pathway_in(key: str, state: str) -> CarePathway:
    path: Path = LIBRARY[key]
    return _pathway_in_state(path, DEFINITIONS[path], state)


def ingest(pathway: CarePathway, code: str, value: str, unit: str, at: dt.datetime = T0):
    item = {"code": code, "value": Decimal(value), "unit": unit, "effective_at": at}
    return observations_ingest(
        patient=pathway.patient, observations=[item], actor=None, source="device", now=T0
    ).alerts


def state_of(pathway: CarePathway) -> str:
    assert pathway.instance is not None
    pathway.instance.refresh_from_db()
    return pathway.instance.state


def open_tasks(pathway: CarePathway) -> dict[str, tuple[str, str]]:
    return {
        code: (role, priority)
        for code, role, priority in Task.objects.filter(
            care_pathway=pathway, status__in=task_states.OPEN
        ).values_list("code", "offered_role", "priority")
    }


# --- heart failure --------------------------------------------------------------------------


def test_a_heart_failure_alert_leaves_the_monthly_reviews_and_the_prescription_running():
    pathway = pathway_in("hf-telemonitoring", "monitoring")
    reviews = {f"monthly-review-{n}" for n in range(1, 12)}

    [alert] = ingest(pathway, "59408-5", "80", "%")

    tasks = open_tasks(pathway)
    assert state_of(pathway) == "monitoring"
    assert reviews <= set(tasks)
    assert tasks["alert-low-spo2"] == ("nurse", "asap")
    assert alert.score == 3
    assert pathway.instance is not None
    [timer] = instance_timers(instance_id=pathway.instance.pk, status="scheduled")
    assert timer.event == "programme_end"
    assert timer.due_at.date() == dt.date(2027, 3, 2)  # one year after entering monitoring


@pytest.mark.parametrize(("gain", "points"), [("2.0", 2), ("2.9", 2), ("3.0", 3), ("4.0", 3)])
def test_a_weight_gain_in_three_days_scores_two_then_three_from_three_kilograms(gain, points):
    pathway = pathway_in("hf-telemonitoring", "monitoring")
    ingest(pathway, "29463-7", "80.0", "kg", T0 - 2 * DAY)

    [alert] = ingest(pathway, "29463-7", str(Decimal("80.0") + Decimal(gain)), "kg")

    assert (alert.name, alert.score) == ("weight-gain", points)
    assert open_tasks(pathway)["alert-weight-gain"] == ("nurse", "urgent")


def test_a_weight_gain_after_a_dip_is_seen():
    pathway = pathway_in("hf-telemonitoring", "monitoring")
    ingest(pathway, "29463-7", "80.0", "kg", T0 - 2 * DAY)
    ingest(pathway, "29463-7", "79.0", "kg", T0 - DAY)

    [alert] = ingest(pathway, "29463-7", "81.2", "kg")  # +1.2 on the first, +2.2 on the dip

    assert alert.name == "weight-gain"


@pytest.mark.parametrize(
    ("code", "value", "unit", "raised"),
    [
        ("8867-4", "121", "/min", ["abnormal-heart-rate"]),
        ("8867-4", "49", "/min", ["abnormal-heart-rate"]),
        ("8867-4", "120", "/min", []),
        ("hf-orthopnoea", "2", "{score}", ["worsening-symptoms"]),
        ("hf-oedema", "1", "{score}", []),
        ("59408-5", "90", "%", []),
    ],
)
def test_heart_failure_thresholds_at_their_defaults(code, value, unit, raised):
    pathway = pathway_in("hf-telemonitoring", "monitoring")

    alerts = ingest(pathway, code, value, unit)

    assert [a.name for a in alerts] == raised


def test_no_weight_for_three_days_opens_a_nurse_task_scored_two():
    pathway = pathway_in("hf-telemonitoring", "monitoring")

    [record] = missing_measurements_check(now=T0 + 3 * DAY + dt.timedelta(hours=1))

    assert (record.name, record.score, record.care_pathway_id) == ("no-weight", 2, pathway.pk)
    assert record.task is not None
    assert (record.task.offered_role, record.task.priority) == ("nurse", "urgent")


@pytest.mark.parametrize("state", ["enrolment", "hospitalisation", "closure"])
def test_no_daily_weight_is_expected_before_the_scale_in_hospital_or_once_stopped(state):
    pathway_in("hf-telemonitoring", state)

    assert missing_measurements_check(now=T0 + 10 * DAY) == []


def test_the_prescription_ends_after_one_year_with_the_renewal_decision():
    pathway = pathway_in("hf-telemonitoring", "monitoring")

    due_timers_sweep(now=T0 + dt.timedelta(days=366))

    assert state_of(pathway) == "renewal_decision"
    assert {"period-summary", "renewal-review"} <= set(open_tasks(pathway))


def fire(pathway: CarePathway, event: str, at: dt.datetime, **payload: object) -> None:
    with time_machine.travel(at, tick=False):
        care_pathway_fire(pathway=pathway, event=event, user=None, payload=payload)


def test_a_hospital_stay_does_not_move_the_end_of_the_prescription():
    pathway = pathway_in("hf-telemonitoring", "monitoring")
    fire(pathway, "hospitalised", T0 + 300 * DAY)
    fire(pathway, "back_home", T0 + 310 * DAY)

    due_timers_sweep(now=T0 + 366 * DAY)

    assert state_of(pathway) == "renewal_decision"


def test_a_prescription_ending_in_hospital_comes_up_on_the_return_home():
    pathway = pathway_in("hf-telemonitoring", "monitoring")
    fire(pathway, "hospitalised", T0 + 360 * DAY)

    due_timers_sweep(now=T0 + 366 * DAY)
    assert state_of(pathway) == "hospitalisation"
    fire(pathway, "back_home", T0 + 370 * DAY)
    due_timers_sweep(now=T0 + 370 * DAY + dt.timedelta(hours=2))

    assert state_of(pathway) == "renewal_decision"


def test_renewing_starts_a_new_year_of_prescription():
    pathway = pathway_in("hf-telemonitoring", "monitoring")
    due_timers_sweep(now=T0 + 366 * DAY)
    fire(pathway, "renew", T0 + 370 * DAY)

    due_timers_sweep(now=T0 + 700 * DAY)
    assert state_of(pathway) == "monitoring"
    due_timers_sweep(now=T0 + 736 * DAY)

    assert state_of(pathway) == "renewal_decision"


# --- type 2 diabetes ------------------------------------------------------------------------


def test_a_hypoglycaemia_during_the_quarterly_visit_leaves_the_visit_under_way():
    pathway = pathway_in("t2d-follow-up", "quarterly_visit")

    [alert] = ingest(pathway, "14743-9", "3.5", "mmol/L")

    tasks = open_tasks(pathway)
    assert state_of(pathway) == "quarterly_visit"
    assert {"hba1c-test", "quarterly-visit"} <= set(tasks)
    assert (alert.name, tasks["alert-hypoglycaemia"]) == ("hypoglycaemia", ("nurse", "urgent"))


@pytest.mark.parametrize(
    ("value", "unit", "name"),
    [
        ("0.60", "g/L", "hypoglycaemia"),
        ("60", "mg/dL", "hypoglycaemia"),
        ("3.5", "mmol/L", "hypoglycaemia"),
        ("0.50", "g/L", "severe-hypoglycaemia"),
        ("50", "mg/dL", "severe-hypoglycaemia"),
        ("2.9", "mmol/L", "severe-hypoglycaemia"),
    ],
)
def test_between_visits_a_hypoglycaemia_in_any_unit_starts_the_review(value, unit, name):
    pathway = pathway_in("t2d-follow-up", "follow_up")
    code = "14743-9" if unit == "mmol/L" else "41653-7"

    [alert] = ingest(pathway, code, value, unit)

    assert alert.name == name
    assert state_of(pathway) == "hypoglycaemia_review"
    assert open_tasks(pathway)["call-patient"][0] == "nurse"


@pytest.mark.parametrize(("value", "unit"), [("0.70", "g/L"), ("70", "mg/dL"), ("3.9", "mmol/L")])
def test_a_glucose_at_the_threshold_raises_nothing(value, unit):
    pathway = pathway_in("t2d-follow-up", "follow_up")
    code = "14743-9" if unit == "mmol/L" else "41653-7"

    assert ingest(pathway, code, value, unit) == []


# --- return home ----------------------------------------------------------------------------


def test_a_discharge_not_recorded_in_a_week_is_planned_again():
    pathway = pathway_in("return-home", "ready_for_discharge")

    due_timers_sweep(now=T0 + 7 * DAY + dt.timedelta(minutes=1))

    assert state_of(pathway) == "discharge_planning"


def test_an_overdue_discharge_record_goes_to_the_hospital_physician():
    pathway = pathway_in("return-home", "ready_for_discharge")

    overdue_tasks_escalate(now=T0 + 3 * DAY)

    assert open_tasks(pathway)["escalation-record-discharge"] == ("hospital_physician", "urgent")


def test_a_readmission_closes_the_programme_after_thirty_days_in_hospital():
    pathway = pathway_in("return-home", "readmission")

    due_timers_sweep(now=T0 + 30 * DAY + dt.timedelta(minutes=1))

    assert state_of(pathway) == "closure"
    assert set(open_tasks(pathway)) == {"closing-summary"}


def test_a_readmission_asks_the_coordinator_what_next_and_escalates_when_overdue():
    pathway = pathway_in("return-home", "readmission")

    overdue_tasks_escalate(now=T0 + 15 * DAY)

    tasks = open_tasks(pathway)
    assert tasks["decide-next-step"][0] == "coordinator"
    assert tasks["escalation-decide-next-step"] == ("hospital_physician", "urgent")


def test_alert_records_are_tied_to_their_pathway():
    pathway = pathway_in("hf-telemonitoring", "renewal_decision")

    ingest(pathway, "59408-5", "85", "%")

    assert list(AlertRecord.objects.values_list("care_pathway_id", "name", "state")) == [
        (pathway.pk, "low-spo2", "renewal_decision")
    ]


# --- upgrading running pathways -------------------------------------------------------------

VERSION_1 = Path(__file__).resolve().parent / "fixtures" / "hf-telemonitoring-v1.yaml"


def test_a_running_version_1_heart_failure_pathway_migrates_in_place_and_is_watched():
    v1 = compile_document(validate_source(VERSION_1.read_text(encoding="utf-8")).document)
    pathway = _pathway_in_state(VERSION_1, v1, "monitoring")
    assert pathway.instance is not None
    call_command("load_pathway", str(LIBRARY["hf-telemonitoring"]), stdout=io.StringIO())

    call_command("migrate_pathway", "hf-telemonitoring", "1", "2", "--apply", stdout=io.StringIO())
    [alert] = ingest(pathway, "59408-5", "80", "%")

    pathway.instance.refresh_from_db()
    assert (pathway.instance.definition.version, pathway.instance.state) == (2, "monitoring")
    [timer] = instance_timers(instance_id=pathway.instance.pk, status="scheduled")
    assert (timer.event, timer.due_at.date()) == ("programme_end", dt.date(2026, 9, 2))
    assert {f"monthly-review-{n}" for n in range(1, 6)} | {"alert-low-spo2"} == set(
        open_tasks(pathway)
    )
    assert alert.name == "low-spo2"
