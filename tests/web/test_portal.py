from __future__ import annotations

from django.contrib.auth import get_user_model
from django.test import Client

from coordination.models import Task
from coordination.services import TaskActionInput, task_act
from tests.coordination.conftest import Scene, make_patient


def portal_client(patient, username: str) -> Client:
    account = get_user_model().objects.create_user(username=username)
    patient.user = account
    patient.save(update_fields=["user"])
    client = Client()
    client.force_login(account)
    return client


def test_patient_sees_the_current_step_of_their_pathway(scene: Scene):
    client = portal_client(scene.patient, "portal-a")

    response = client.get("/portal/")

    body = response.content.decode()
    assert response.status_code == 200
    assert 'class="current-state"' in body
    assert scene.gp.user.get_full_name() in body


def test_portal_shows_nothing_of_another_patient(scene: Scene):
    other = make_patient()
    client = portal_client(other, "portal-b")

    response = client.get("/portal/")

    body = response.content.decode()
    assert response.status_code == 200
    assert scene.patient.family_name not in body
    assert 'class="current-state"' not in body


def test_a_practitioner_gets_not_found_on_the_portal(scene: Scene):
    client = Client()
    client.force_login(scene.gp.user)

    assert client.get("/portal/").status_code == 404


def test_home_sends_a_patient_to_the_portal(scene: Scene):
    client = portal_client(scene.patient, "portal-c")

    response = client.get("/")

    assert response["Location"] == "/portal/"


def test_portal_lists_the_patients_own_next_task(scene: Scene):
    client = portal_client(scene.patient, "portal-d")
    for task in Task.objects.filter(care_pathway=scene.pathway):
        owner = scene.nurse if task.code == "visit" else scene.gp
        task_act(task_id=task.pk, user=owner.user, data=TaskActionInput(action="complete"))

    response = client.get("/portal/")

    assert "Fill in the diary" in response.content.decode()


def test_every_portal_page_says_it_is_not_an_emergency_service_and_what_to_call(scene: Scene):
    client = portal_client(scene.patient, "portal-notice")

    french = client.get("/portal/").content.decode()
    client.cookies["django_language"] = "en"
    english = client.get("/portal/").content.decode()

    assert "Parcours n’est pas un service d’urgence." in french
    assert "appelez le 15 (SAMU), ou le 112" in french
    assert "Parcours is not an emergency service." in english
    assert "call 15 (SAMU), or 112" in english
    # before the page's own content
    assert french.index("service d’urgence") < french.index("<main")
