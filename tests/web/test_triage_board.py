"""The triage board through the real login: a nurse's patients on an active pathway, the most
at risk first, each with the trend of what the pathway watches, the pending alert and one
click to its task; nobody else's patients, a fixed number of queries, one audit record per
patient shown, and patients answered as not found."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from coordination.models import AlertRecord, CarePathway
from coordination.selectors.triage import monitored_codes, triage_board
from coordination.services import care_pathway_fire, care_pathway_start
from coordination.services.observations import observations_ingest
from directory.models import Practitioner
from directory.services import care_team_member_add
from patients.models import AuditEvent, Observation
from tests.coordination.conftest import make_patient, make_practitioner
from tests.web.test_pathway_monitoring_pages import PASSWORD, log_in
from web.triage import sparkline
from workflows.selectors import compiled_definition, definition_get
from workflows.shipped import library_files


@pytest.fixture
def library(db: None) -> None:
    call_command("load_pathway", *[str(p) for p in library_files()], stdout=None)


def heart_failure_patient(nurse: Practitioner, given_names: str) -> CarePathway:
    patient = make_patient()
    patient.given_names = given_names
    patient.save(update_fields=["given_names"])
    care_team_member_add(patient=patient, role="nurse", practitioner=nurse, actor=None)
    for role in ("cardiologist", "gp", "coordinator", "device_supplier"):
        care_team_member_add(
            patient=patient, role=role, practitioner=make_practitioner("other"), actor=None
        )
    pathway = care_pathway_start(patient=patient, key="hf-telemonitoring", user=None)
    care_pathway_fire(pathway=pathway, event="tasks_completed", user=None, payload={})
    return pathway


def readings(pathway: CarePathway, code: str, unit: str, values: list[float]) -> None:
    """One reading a day, the last one an hour ago."""
    now = timezone.now()
    count = len(values)
    observations_ingest(
        patient=pathway.patient,
        observations=[
            {
                "code": code,
                "value": value,
                "unit": unit,
                "effective_at": now - dt.timedelta(days=count - 1 - i, hours=1),
            }
            for i, value in enumerate(values)
        ],
        actor=None,
        source="device",
    )


def rows(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-patient="(\d+)"', page)]


@pytest.fixture
def board(library: None) -> dict[str, object]:
    nurse = make_practitioner("nurse")
    calm = heart_failure_patient(nurse, "Calm")
    readings(calm, "29463-7", "kg", [80.0, 80.2, 80.1, 80.0])
    readings(calm, "59408-5", "%", [96, 97, 96])
    low = heart_failure_patient(nurse, "Hypoxic")
    readings(low, "59408-5", "%", [95, 93, 86])
    gaining = heart_failure_patient(nurse, "Gaining")
    readings(gaining, "29463-7", "kg", [70.0, 71.0, 73.5])
    stranger = heart_failure_patient(make_practitioner("nurse"), "Elsewhere")
    return {"nurse": nurse, "calm": calm, "low": low, "gaining": gaining, "stranger": stranger}


def test_the_board_ranks_the_nurses_patients_most_at_risk_first(board):
    client = log_in(board["nurse"])

    page = client.get("/triage/").content.decode()

    low, gaining, calm = board["low"], board["gaining"], board["calm"]
    # SpO2 under the floor scores 3, +3.5 kg in 3 days scores 3 too: both are medium; the
    # calm patient, without alert, comes last. Nobody else's patient is on the board.
    assert set(rows(page)) == {low.patient_id, gaining.patient_id, calm.patient_id}
    assert rows(page)[-1] == calm.patient_id
    expected = sorted(
        (low, gaining),
        key=lambda p: (CarePathway.objects.get(pk=p.pk).risk_band != "high", p.patient.family_name),
    )
    assert rows(page)[:2] == [p.patient_id for p in expected]
    assert "Elsewhere" not in page
    assert "Triage" in page
    assert "Tendances" in page


def test_each_row_shows_the_trends_the_pending_alert_and_a_link_to_its_task(board):
    client = log_in(board["nurse"])
    low = board["low"]
    alert = AlertRecord.objects.get(care_pathway=low, name="low-spo2")

    page = client.get("/triage/").content.decode()
    row = page.split(f'<tr data-patient="{low.patient_id}">')[1].split("</tr>")[0]

    assert "SpO2 sous le seuil" in row  # the alert's French title, not `low-spo2`
    assert alert.task_id is not None
    assert f'href="/tasks/{alert.task_id}/"' in row
    # The SpO2 trend: three readings drawn, the newest (86 %) flagged as abnormal in words.
    spo2 = row.split('data-code="59408-5"')[1].split("</li>")[0]
    assert "<polyline" in spo2
    assert "86&nbsp;%" in spo2
    assert "valeur anormale" in spo2
    assert 'aria-label="' in spo2
    assert "3 mesures" in spo2
    # The weight is watched too, but this patient sent none: said, not drawn.
    weight = row.split('data-code="29463-7"')[1].split("</li>")[0]
    assert '<span class="trend-label">Poids</span>' in weight  # the name in French
    assert "<polyline" not in weight
    assert "aucune mesure depuis 30 jours" in weight


def test_the_board_leaves_an_audit_record_per_patient_shown(board):
    client = log_in(board["nurse"])
    before = AuditEvent.objects.count()

    client.get("/triage/")

    records = AuditEvent.objects.order_by("pk")[before:]
    named = {r.patient_id for r in records if r.resource_type == "Patient"}
    assert named == {board[k].patient_id for k in ("low", "gaining", "calm")}


def test_the_board_reads_a_fixed_number_of_queries(board):
    client = log_in(board["nurse"])
    client.get("/triage/")
    with CaptureQueriesContext(connection) as three:
        client.get("/triage/")
    for n in range(3):
        heart_failure_patient(board["nurse"], f"Synthetic Extra {n}")
    with CaptureQueriesContext(connection) as six:
        client.get("/triage/")

    # The audit writes one row per patient in one INSERT: the count must not grow.
    assert len(six) == len(three), [q["sql"][:80] for q in six.captured_queries]


def test_a_patient_answers_not_found_and_an_outsider_sees_no_patient(board):
    outsider = log_in(make_practitioner("nurse"))
    assert rows(outsider.get("/triage/").content.decode()) == []

    pathway = board["calm"]
    assert isinstance(pathway, CarePathway)
    user = get_user_model().objects.create_user(username="synthetic-portal", password=PASSWORD)
    pathway.patient.user = user
    pathway.patient.save(update_fields=["user"])
    client = Client()
    client.post("/login/", {"username": "synthetic-portal", "password": PASSWORD})
    assert client.get("/triage/").status_code == 404


def test_monitored_codes_put_the_declared_measurements_first(library: None):
    definition = compiled_definition(definition_get(key="hf-telemonitoring", version=2))

    codes = monitored_codes(definition)

    assert codes[:2] == ("29463-7", "59408-5") or codes[0] in definition.monitoring.measurements
    assert {"29463-7", "59408-5", "8867-4"} <= set(codes)
    assert len(codes) == len(set(codes))


def test_the_trend_keeps_the_newest_unit_only(library: None):
    nurse = make_practitioner("nurse")
    pathway = heart_failure_patient(nurse, "Synthetic Units")
    now = timezone.now()
    for value, unit, days in ((81.0, "kg", 2), (80.5, "kg", 1), (177.0, "[lb_av]", 0)):
        Observation.objects.create(
            patient=pathway.patient,
            code="29463-7",
            value=Decimal(str(value)),
            unit=unit,
            effective_at=now - dt.timedelta(days=days),
            source="device",
            received_at=now,
        )

    (row,) = triage_board(nurse.user).rows

    assert [r.unit for r in row.readings["29463-7"]] == ["[lb_av]"]


def test_a_sparkline_runs_oldest_to_newest_and_stays_in_its_box():
    class Reading:
        def __init__(self, value: float) -> None:
            self.value = Decimal(str(value))

    newest_first = [Reading(v) for v in (3.0, 1.0, 2.0)]

    line = sparkline(newest_first)  # type: ignore[arg-type]

    assert line is not None
    points = [tuple(map(float, p.split(","))) for p in line["points"].split()]
    xs = [x for x, _ in points]
    assert xs == sorted(xs)
    assert all(0 <= y <= line["height"] for _, y in points)
    # Oldest (2.0) in the middle, then the lowest (1.0) at the bottom, newest (3.0) on top.
    assert points[1][1] > points[0][1] > points[2][1]
    assert line["last"] == points[2]
    assert sparkline(newest_first[:1]) is None  # type: ignore[arg-type]


def test_the_practitioner_alerts_go_to_lands_on_the_board_others_on_the_worklist(board):
    nurse = board["nurse"]
    assert isinstance(nurse, Practitioner)
    user = nurse.user
    user.set_password(PASSWORD)
    user.save()
    client = Client()
    landed = client.post("/login/", {"username": user.username, "password": PASSWORD}, follow=True)
    assert landed.redirect_chain[-1][0] == "/triage/"

    # A GP of the same patients reviews; the alerts go to the nurse: the worklist first.
    gp = make_practitioner("gp")
    calm = board["calm"]
    assert isinstance(calm, CarePathway)
    care_team_member_add(patient=calm.patient, role="gp", practitioner=gp, actor=None)
    gp.user.set_password(PASSWORD)
    gp.user.save()
    reviewer = Client().post(
        "/login/", {"username": gp.user.username, "password": PASSWORD}, follow=True
    )
    assert reviewer.redirect_chain[-1][0] == "/worklist/"
    assert reviewer.context["user"] == gp.user

    newcomer = make_practitioner("nurse")
    newcomer.user.set_password(PASSWORD)
    newcomer.user.save()
    other = Client().post(
        "/login/", {"username": newcomer.user.username, "password": PASSWORD}, follow=True
    )
    assert other.redirect_chain[-1][0] == "/worklist/"


def test_a_reading_past_the_patients_threshold_is_flagged_though_it_raised_no_new_alert(board):
    """The alert is raised once (86 %); the next reading under the floor repeats it without
    being its reading, and is flagged all the same: by the pathway's threshold."""
    low = board["low"]
    assert isinstance(low, CarePathway)
    observations_ingest(
        patient=low.patient,
        observations=[
            {"code": "59408-5", "value": 88, "unit": "%", "effective_at": timezone.now()}
        ],
        actor=None,
        source="device",
    )
    alert = AlertRecord.objects.get(care_pathway=low, name="low-spo2")
    newest = Observation.objects.filter(patient=low.patient, code="59408-5").latest("effective_at")
    assert alert.observation_id != newest.pk
    client = log_in(board["nurse"])

    page = client.get("/triage/").content.decode()

    row = page.split(f'<tr data-patient="{low.patient_id}">')[1].split("</tr>")[0]
    spo2 = row.split('data-code="59408-5"')[1].split("</li>")[0]
    assert "88&nbsp;%" in spo2
    assert "valeur anormale" in spo2
    calm = page.split(f'<tr data-patient="{board["calm"].patient_id}">')[1].split("</tr>")[0]
    assert "valeur anormale" not in calm
