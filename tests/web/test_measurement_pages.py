"""What the patient page and the portal show of a patient's readings: one chart per measurement
and unit with the alert lines of the patient's pathways whatever the step, readings abnormal for
the patient flagged in words as well as colour, and measurements named in the reader's
language. Through the login form, as the care team and as the patient."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from coordination.models import AlertRecord, CarePathway
from coordination.services.observations import observations_ingest
from directory.models import CareTeamMember, Practitioner
from tests.coordination.test_shipped_monitoring import DEFINITIONS, _pathway_in_state
from tests.web.test_pathway_monitoring_pages import log_in
from workflows.definition import localized

pytestmark = pytest.mark.django_db
PASSWORD = "synthetic-portal-pass-1"
FLAG = '<span aria-hidden="true">⚠</span><span class="visually-hidden">valeur anormale</span>'


def pathway_in(key: str, state: str) -> CarePathway:
    path = next(p for p in DEFINITIONS if p.stem == key)
    return _pathway_in_state(path, DEFINITIONS[path], state)


def nurse_of(pathway: CarePathway) -> Practitioner:
    member = CareTeamMember.objects.get(care_team__patient_id=pathway.patient_id, role="nurse")
    assert member.practitioner is not None
    return member.practitioner


def ingest(pathway: CarePathway, *readings: tuple[str, str, str, int]) -> list[AlertRecord]:
    now = timezone.now()
    items = [
        {
            "code": code,
            "value": Decimal(value),
            "unit": unit,
            "effective_at": now - dt.timedelta(hours=hours_ago),
        }
        for code, value, unit, hours_ago in readings
    ]
    return observations_ingest(
        patient=pathway.patient, observations=items, actor=None, source="device"
    ).alerts


def charts(page: str) -> dict[tuple[str, str], dict[str, Any]]:
    data = json.loads(
        page.partition('id="chart-data" type="application/json">')[2].partition("</script>")[0]
    )
    return {(c["code"], c["unit"]): c for c in data}


def alert_title(key: str, name: str, language: str = "fr") -> str:
    definition = DEFINITIONS[next(p for p in DEFINITIONS if p.stem == key)]
    alert = next(a for a in definition.monitoring.alerts if a.name == name)
    return localized(alert.title, language)


def test_a_low_spo2_read_in_a_step_that_does_not_watch_it_is_flagged_under_its_90_line():
    pathway = pathway_in("hf-telemonitoring", "hospitalisation")
    client = log_in(nurse_of(pathway))
    alerts = ingest(pathway, ("59408-5", "95", "%", 30), ("59408-5", "86", "%", 2))

    page = client.get(f"/patients/{pathway.patient_id}/").content.decode()

    assert alerts == []  # the hospital stay suspends the alert: no alert record flags it
    spo2 = charts(page)[("59408-5", "%")]
    assert spo2["y"] == [95.0, 86.0]
    assert spo2["abnormal"] == [False, True]
    assert [(t["op"], t["value"], t["label"]) for t in spo2["thresholds"]] == [
        ("<", 90.0, f"{alert_title('hf-telemonitoring', 'low-spo2')} : 90 %")
    ]
    assert page.count(FLAG) == 1
    assert '<tr class="abnormal"><td><time' in page


def test_glucose_in_g_per_l_and_in_mg_per_dl_are_two_charts_each_with_its_own_lines():
    pathway = pathway_in("t2d-follow-up", "follow_up")
    client = log_in(nurse_of(pathway))
    ingest(
        pathway,
        ("41653-7", "1.10", "g/L", 50),
        ("41653-7", "110", "mg/dL", 26),
        ("41653-7", "0.62", "g/L", 3),
    )

    page = client.get(f"/patients/{pathway.patient_id}/").content.decode()

    drawn = charts(page)
    assert sorted(drawn) == [("41653-7", "g/L"), ("41653-7", "mg/dL")]
    grams, milligrams = drawn[("41653-7", "g/L")], drawn[("41653-7", "mg/dL")]
    assert (grams["y"], grams["abnormal"]) == ([1.1, 0.62], [False, True])
    assert (milligrams["y"], milligrams["abnormal"]) == ([110.0], [False])
    hypo = alert_title("t2d-follow-up", "hypoglycaemia")
    severe = alert_title("t2d-follow-up", "severe-hypoglycaemia")
    assert [t["label"] for t in grams["thresholds"]] == [
        f"{hypo} : 0,7 g/L",
        f"{severe} : 0,54 g/L",
    ]
    assert [t["label"] for t in milligrams["thresholds"]] == [
        f"{hypo} : 70 mg/dL",
        f"{severe} : 54 mg/dL",
    ]
    assert grams["title"] == "Glycémie capillaire (g/L)"
    assert "<figcaption>Glycémie capillaire (mg/dL)</figcaption>" in page
    assert page.count(FLAG) == 1


def test_the_patient_sees_their_readings_named_in_french_and_the_abnormal_one_flagged():
    pathway = pathway_in("hf-telemonitoring", "monitoring")
    ingest(
        pathway,
        ("29463-7", "81.4", "kg", 30),
        ("8867-4", "72", "/min", 30),
        ("59408-5", "85", "%", 2),
    )
    account = get_user_model().objects.create_user(username="portal-readings", password=PASSWORD)
    pathway.patient.user = account
    pathway.patient.save(update_fields=["user"])
    client = Client()
    logged = client.post("/login/", {"username": "portal-readings", "password": PASSWORD})

    page = client.get("/portal/").content.decode()

    assert logged.status_code == 302
    assert AlertRecord.objects.filter(patient=pathway.patient, name="low-spo2").count() == 1
    assert "<h3>Poids (kg)</h3>" in page
    assert "<h3>Fréquence cardiaque (/min)</h3>" in page
    assert "<h3>SpO2 (%)</h3>" in page
    assert "Body weight" not in page
    assert "Heart rate" not in page
    assert page.count(FLAG) == 1
    assert "85 %" in page


def test_the_care_team_page_names_measurements_in_french():
    pathway = pathway_in("hf-telemonitoring", "monitoring")
    client = log_in(nurse_of(pathway))
    ingest(pathway, ("29463-7", "81.4", "kg", 30), ("8867-4", "72", "/min", 30))

    page = client.get(f"/patients/{pathway.patient_id}/").content.decode()

    assert "<figcaption>Poids (kg)</figcaption>" in page
    assert "<figcaption>Fréquence cardiaque (/min)</figcaption>" in page
    assert "Body weight" not in page
    assert FLAG not in page
    assert json.loads(
        page.partition('id="chart-texts" type="application/json">')[2].partition("</script>")[0]
    ) == {
        "date": "Date",
        "abnormal": "Valeur anormale",
        "no_data": "Aucune mesure ces 90 derniers jours.",
    }


def test_in_english_the_chart_says_the_line_and_the_measurement_in_english():
    pathway = pathway_in("hf-telemonitoring", "monitoring")
    client = log_in(nurse_of(pathway), language="en")
    ingest(pathway, ("29463-7", "81.4", "kg", 30), ("59408-5", "96", "%", 30))

    page = client.get(f"/patients/{pathway.patient_id}/").content.decode()

    spo2 = charts(page)[("59408-5", "%")]
    assert [t["label"] for t in spo2["thresholds"]] == [
        f"{alert_title('hf-telemonitoring', 'low-spo2', 'en')}: 90 %"
    ]
    assert "<figcaption>Weight (kg)</figcaption>" in page
    assert "Abnormal value" in page


def test_an_abnormal_reading_older_than_the_latest_five_is_still_listed_under_them():
    pathway = pathway_in("hf-telemonitoring", "monitoring")
    client = log_in(nurse_of(pathway))
    ingest(
        pathway,
        ("59408-5", "85", "%", 200),
        *[("59408-5", str(94 + n % 3), "%", 150 - 24 * n) for n in range(6)],
    )

    page = client.get(f"/patients/{pathway.patient_id}/").content.decode()

    earlier = page.partition("<caption>Valeurs anormales plus anciennes</caption>")[2]
    assert earlier.partition("</table>")[0].count(FLAG) == 1
    assert "85 %" in earlier.partition("</table>")[0]
    assert page.count(FLAG) == 1
    assert "1 valeur anormale en 90 jours" in page
