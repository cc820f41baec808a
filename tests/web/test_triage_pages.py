"""Triage through the real entry points: a nurse logged in with the login form sees her
alert inbox and worklist, in the web pages and through the API, in triage order (the
patient's band, then score, then priority, then due time), and the patient's risk in words."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from coordination.models import CarePathway
from tests.coordination.conftest import Scene
from tests.coordination.triage_scene import TriageScene, build_triage_scene

PASSWORD = "synthetic-pass-1"


@pytest.fixture
def triage(care_test: None) -> TriageScene:
    return build_triage_scene()


def form_login(triage: TriageScene, language: str = "en") -> APIClient:
    """The nurse logged in through the login form (an APIClient: the same session then
    reads the API)."""
    user = triage.nurse.user
    user.set_password(PASSWORD)
    user.save()
    client = APIClient()
    client.post("/i18n/setlang/", {"language": language, "next": "/login/"})
    response = client.post("/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302, response.content[:300]
    return client


def _ids(body: str, attribute: str) -> list[int]:
    return [int(i) for i in re.findall(rf'data-{attribute}="(\d+)"', body)]


def _api_ids(client: APIClient, url: str) -> list[int]:
    ids: list[int] = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content[:300]
        ids += [row["id"] for row in response.json()["results"]]
        url = response.json()["next"]
    return ids


def test_the_inbox_is_in_triage_order_on_the_page_and_through_the_api(triage: TriageScene):
    client = form_login(triage)

    page = client.get("/alerts/")
    listed = _api_ids(client, "/api/v1/alerts/")
    paged = _api_ids(client, "/api/v1/alerts/?page_size=2")

    assert page.status_code == 200
    assert _ids(page.content.decode(), "alert") == triage.alert_order()
    assert listed == triage.alert_order()
    assert paged == triage.alert_order()


def test_the_worklist_is_in_triage_order_on_the_page_and_through_the_api(triage: TriageScene):
    client = form_login(triage)

    page = client.get("/worklist/").content.decode()
    mine_section = page[page.index('id="list-mine"') : page.index('id="list-unclaimed"')]
    listed = _api_ids(client, "/api/v1/tasks/?view=mine")
    paged = _api_ids(client, "/api/v1/tasks/?view=mine&page_size=2")

    assert _ids(mine_section, "task") == triage.task_order()
    assert listed == triage.task_order()
    assert paged == triage.task_order()


def test_the_api_previous_links_walk_the_inbox_back_in_the_same_order(triage: TriageScene):
    client = form_login(triage)
    url = "/api/v1/alerts/?page_size=3"
    while True:
        body = client.get(url).json()
        if body["next"] is None:
            break
        url = body["next"]
    ids = [row["id"] for row in body["results"]]

    while body["previous"]:
        body = client.get(body["previous"]).json()
        ids = [row["id"] for row in body["results"]] + ids

    assert ids == triage.alert_order()


@pytest.mark.parametrize(
    ("language", "high", "medium", "low"),
    [
        ("en", "High risk", "Moderate risk", "Low risk"),
        ("fr", "Risque élevé", "Risque modéré", "Risque faible"),
    ],
)
def test_the_inbox_says_the_patients_risk_in_words_and_the_measured_value(
    triage: TriageScene, language: str, high: str, medium: str, low: str
):
    client = form_login(triage, language)

    body = client.get("/alerts/").content.decode()

    row = re.search(rf'<tr data-alert="{triage.alerts["a5"].pk}">(.*?)</tr>', body, re.S)
    assert row is not None
    assert medium in row.group(1)
    assert 'data-risk-band="medium" data-risk-score="3"' in row.group(1)
    assert "85 %" in row.group(1)
    taken = timezone.localtime(triage.observation.effective_at).isoformat()
    assert f'datetime="{taken}"' in row.group(1)
    assert high in body
    assert low in body


def test_the_worklist_rows_show_the_patients_risk(triage: TriageScene):
    client = form_login(triage, "fr")

    body = client.get("/worklist/").content.decode()

    row = re.search(rf'data-task="{triage.tasks["D.visit"].pk}">(.*?)</tr>', body, re.S)
    assert row is not None
    assert "Risque élevé" in row.group(1)
    assert 'data-risk-score="8"' in row.group(1)


def test_the_patient_page_shows_the_current_risk_in_its_header(triage: TriageScene):
    client = form_login(triage, "fr")

    body = client.get(f"/patients/{triage.patients['B'].pk}/").content.decode()

    header = body[body.index("<h1>") : body.index('id="consent-title"')]
    assert '<p id="patient-risk"><span class="risk risk-high"' in header
    assert "Risque élevé" in header
    assert "(score 6)" in header


def test_the_api_gives_the_risk_of_pathways_patients_tasks_and_alerts(triage: TriageScene):
    client = form_login(triage)
    b = triage.patients["B"]

    pathway = client.get(f"/api/v1/pathways/{triage.pathways['B'].pk}/").json()
    patient = client.get(f"/api/v1/patients/{b.pk}/").json()
    patients = {p["id"]: p for p in client.get("/api/v1/patients/").json()["results"]}
    task = client.get(f"/api/v1/tasks/{triage.tasks['B.visit'].pk}/").json()
    alert = next(
        a
        for a in client.get("/api/v1/alerts/").json()["results"]
        if a["id"] == triage.alerts["a5"].pk
    )

    assert (pathway["risk_band"], pathway["risk_score"]) == ("high", 6)
    assert pathway["risk_updated_at"] is not None
    assert (patient["risk_band"], patient["risk_score"]) == ("high", 6)
    assert (patients[b.pk]["risk_band"], patients[b.pk]["risk_score"]) == ("high", 6)
    assert (patients[triage.patients["A"].pk]["risk_band"]) == "low"
    assert (task["risk_band"], task["risk_score"]) == ("high", 6)
    assert (alert["band"], alert["score"]) == ("medium", 3)
    assert alert["patient_risk"] == {"band": "medium", "score": 3}
    assert alert["task"] == triage.tasks["C.visit"].pk
    assert alert["observation"]["id"] == triage.observation.pk
    assert (alert["observation"]["code"], alert["observation"]["value"]) == ("59408-5", 85.0)


def test_the_alert_list_is_empty_for_a_practitioner_outside_the_care_teams(
    triage: TriageScene, scene: Scene
):
    client = APIClient()
    client.force_authenticate(scene.outsider.user)

    response = client.get("/api/v1/alerts/")

    assert response.status_code == 200
    assert response.json()["results"] == []


def test_the_alert_list_filters_by_patient_and_refuses_a_bad_one(triage: TriageScene):
    client = form_login(triage)
    b = triage.patients["B"]

    mine = client.get(f"/api/v1/alerts/?patient={b.pk}").json()["results"]
    bad = client.get("/api/v1/alerts/?patient=abc")

    assert [a["id"] for a in mine] == [triage.alerts["a3"].pk, triage.alerts["a2"].pk]
    assert bad.status_code == 400
    assert "patient" in bad.content.decode()


def test_a_pathway_without_alerts_reads_as_low_risk(scene: Scene):
    client = APIClient()
    client.force_authenticate(scene.nurse.user)

    pathway = client.get(f"/api/v1/pathways/{scene.pathway.pk}/").json()

    assert CarePathway.objects.get(pk=scene.pathway.pk).risk_band == "low"
    assert (pathway["risk_band"], pathway["risk_score"]) == ("low", 0)
