"""What the library, pathway and patient pages say about monitoring: the guidance a pathway
cites, its validation warnings, and the alerts a step suspends with the pathway's reason."""

from __future__ import annotations

import json
import textwrap

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from coordination.models import CarePathway
from coordination.services import care_pathway_fire, care_pathway_start
from coordination.services.observations import observations_ingest
from coordination.services.parameters import parameter_set
from directory.models import Practitioner
from directory.services import care_team_member_add
from tests.coordination.conftest import make_patient, make_practitioner
from workflows.actors import Actor
from workflows.services import definition_publish
from workflows.shipped import library_files

PASSWORD = "synthetic-pass-1"

UNWATCHED = textwrap.dedent(
    """\
    key: unwatched-test
    version: 1
    title: Unwatched
    roles: [nurse]
    initial: watching
    references:
      - title: A cited guide
        publisher: Test authority
        year: 2024
        url: "javascript:alert(1)"
        used_for: {en: the SpO2 floor, fr: le seuil de SpO2}
    states:
      watching:
        alerts:
          - name: low-spo2
            when: "observation.code == '59408-5' && observation.value < 90.0"
            event: low
            role: nurse
        on: {low: review}
      review:
        on: {done: closed}
      closed: {final: true}
    """
)


def logged_in(profession: str = "gp", language: str = "fr") -> Client:
    """A practitioner logged in through the login form, the page language chosen."""
    return log_in(make_practitioner(profession), language)


def log_in(practitioner: Practitioner, language: str = "fr") -> Client:
    user = practitioner.user
    user.set_password(PASSWORD)
    user.save()
    client = Client()
    client.post("/i18n/setlang/", {"language": language, "next": "/login/"})
    response = client.post("/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    return client


@pytest.fixture
def library(db: None) -> None:
    call_command("load_pathway", *[str(p) for p in library_files()], stdout=None)


def test_library_page_cites_the_guidance_of_the_shipped_pathways(library: None):
    page = logged_in().get("/pathways/").content.decode()

    assert "Télésurveillance médicale du patient insuffisant cardiaque chronique" in page
    assert 'href="https://doi.org/10.1093/eurheartj/ehab368"' in page
    assert "Seuils d&#x27;hypoglycémie : niveau 1 &lt; 3,9 mmol/L (0,70 g/L)" in page
    assert "Utilisé pour :" in page
    assert 'class="warnings"' not in page  # the shipped pathways leave nothing unwatched


def test_library_page_shows_a_pathways_monitoring_warnings_in_english(db: None):
    definition_publish(source=UNWATCHED, actor=Actor(id="test"), fmt="yaml")

    page = logged_in(language="en").get("/pathways/").content.decode()

    assert "1 monitoring warning" in page
    assert "states.review: measurement 59408-5 monitored by this pathway" in page
    assert "Used for: the SpO2 floor" in page


def test_a_reference_link_that_is_not_http_is_shown_as_text_only(db: None):
    definition_publish(source=UNWATCHED, actor=Actor(id="test"), fmt="yaml")
    client = logged_in()

    pages = [client.get("/pathways/"), client.get("/pathways/unwatched-test/1/")]

    for response in pages:
        assert "A cited guide" in response.content.decode()
        assert "javascript:" not in response.content.decode()


def test_pathway_page_says_what_each_step_suspends_and_why(library: None):
    page = logged_in().get("/pathways/hf-telemonitoring/2/").content.decode()

    assert (
        "Surveillance suspendue : Prise de poids — hospitalisé, le service hospitalier surveille"
        in page
    )
    assert "Surveillance suspendue : Aucun poids transmis depuis 3 jours — balance pas" in page
    assert "Recommandations citées" in page


def test_pathway_page_in_english(library: None):
    page = logged_in(language="en").get("/pathways/hf-telemonitoring/2/").content.decode()

    assert (
        "Monitoring suspended: SpO2 below the floor — in hospital, the ward watches the patient"
        in page
    )


def _heart_failure_patient(nurse: Practitioner) -> CarePathway:
    patient = make_patient()
    care_team_member_add(patient=patient, role="nurse", practitioner=nurse, actor=None)
    for role in ("cardiologist", "gp", "coordinator", "device_supplier"):
        care_team_member_add(
            patient=patient, role=role, practitioner=make_practitioner("other"), actor=None
        )
    return care_pathway_start(patient=patient, key="hf-telemonitoring", user=None)


def test_patient_page_says_what_the_current_step_suspends_and_why(library: None):
    nurse = make_practitioner("nurse")
    client = log_in(nurse)
    pathway = _heart_failure_patient(nurse)
    enrolment = client.get(f"/patients/{pathway.patient_id}/").content.decode()

    care_pathway_fire(pathway=pathway, event="tasks_completed", user=None, payload={})
    care_pathway_fire(pathway=pathway, event="hospitalised", user=None, payload={})
    hospital = client.get(f"/patients/{pathway.patient_id}/").content.decode()

    assert (
        "Surveillance suspendue : Aucun poids transmis depuis 3 jours — balance pas encore "
        "installée" in enrolment
    )
    assert "— hospitalisé, le service hospitalier surveille" not in enrolment
    assert (
        "Surveillance suspendue : Fréquence cardiaque hors limites — hospitalisé, le service "
        "hospitalier surveille" in hospital
    )
    assert "Surveillance suspendue : Aucun poids transmis depuis 3 jours — hospitalisé" in hospital
    assert "balance pas encore installée" not in hospital


def test_uploading_a_pathway_that_leaves_a_step_unwatched_stores_it_and_warns(db: None):
    coordinator = make_practitioner("coordinator")
    permission = Permission.objects.get(codename="add_pathwaydefinition")
    coordinator.user.user_permissions.add(permission)
    client = log_in(coordinator, language="en")

    response = client.post("/pathways/upload/", {"source": UNWATCHED}, follow=True)

    page = response.content.decode()
    assert response.redirect_chain[-1] == ("/pathways/unwatched-test/1/", 302)
    assert "unwatched-test version 1 is stored as a draft." in page
    assert "Monitoring warning: states.review: measurement 59408-5" in page


def test_patient_chart_draws_the_pathway_alert_thresholds_at_their_defaults(library: None):
    nurse = make_practitioner("nurse")
    client = log_in(nurse)
    pathway = _heart_failure_patient(nurse)
    observations_ingest(
        patient=pathway.patient,
        observations=[
            {"code": "59408-5", "value": 95, "unit": "%", "effective_at": timezone.now()},
            {"code": "8867-4", "value": 70, "unit": "/min", "effective_at": timezone.now()},
        ],
        actor=None,
        source="device",
    )

    page = client.get(f"/patients/{pathway.patient_id}/").content.decode()

    assert chart_thresholds(page) == {
        "59408-5": [("<", 90.0)],
        "8867-4": [(">", 120.0), ("<", 50.0)],
    }


def test_patient_chart_draws_the_patients_own_threshold(library: None):
    nurse = make_practitioner("nurse")
    client = log_in(nurse)
    pathway = _heart_failure_patient(nurse)
    observations_ingest(
        patient=pathway.patient,
        observations=[
            {"code": "59408-5", "value": 95, "unit": "%", "effective_at": timezone.now()}
        ],
        actor=None,
        source="device",
    )
    parameter_set(
        user=nurse.user,
        care_pathway_id=pathway.pk,
        name="spo2_floor",
        value=88,
        reason="BPCO, SpO2 habituelle 89-91 %",
    )

    page = client.get(f"/patients/{pathway.patient_id}/").content.decode()

    assert chart_thresholds(page) == {"59408-5": [("<", 88.0)]}


def chart_thresholds(page: str) -> dict[str, list[tuple[str, float]]]:
    data = json.loads(
        page.partition('id="chart-data" type="application/json">')[2].partition("<")[0]
    )
    return {c["code"]: [(t["op"], t["value"]) for t in c["thresholds"]] for c in data}
