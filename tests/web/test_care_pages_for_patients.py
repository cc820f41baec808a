"""A patient's portal account, logged in through the login form, gets 404 on every care-team
page: the list of pages is read from web/urls.py, so a page added later is walked too."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import URLPattern, reverse

from coordination.models import Task
from patients.services import patient_portal_account_create
from tests.coordination.conftest import Scene
from web import urls

PASSWORD = "synthetic-portal-pass-1"
# Pages that are not the care team's: the portal itself, signing in and out, the password
# forms every account has, invitations, the home page that sends each kind of account to its
# own place.
NOT_CARE_TEAM = {
    "health",
    "home",
    "login",
    "logout",
    "psc-login",
    "psc-callback",
    "password-change",
    "password-reset",
    "password-reset-done",
    "password-reset-confirm",
    "password-reset-complete",
    "invitation",
    "portal",
}


def care_team_patterns() -> list[URLPattern]:
    return [
        p
        for p in urls.urlpatterns
        if isinstance(p, URLPattern) and p.name and p.name not in NOT_CARE_TEAM
    ]


def address(pattern: URLPattern, scene: Scene, task: Task) -> str:
    """The page's address for the patient's own records: the hardest case to refuse."""
    values = {
        "patient_id": scene.patient.pk,
        "task_id": task.pk,
        "pathway_id": scene.pathway.pk,
        "alert_id": 1,  # the scene raises none: any id, refused before it is looked up
        "key": "care-test",
        "version": 1,
    }
    converters = pattern.pattern.converters
    return reverse(f"web:{pattern.name}", kwargs={name: values[name] for name in converters})


def portal_login(scene: Scene) -> Client:
    account = patient_portal_account_create(
        patient=scene.patient,
        email="portal-walk@example.invalid",
        username="portal-walk",
        password=PASSWORD,
        actor=None,
    )
    client = Client()
    response = client.post("/login/", {"username": account.get_username(), "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").headers["Location"] == "/portal/"
    return client


def test_the_walk_covers_every_care_team_page():
    names = {p.name for p in care_team_patterns()}

    assert {"worklist", "pathway-library", "pathway-upload", "break-glass"} <= names
    assert len(names) == len(urls.urlpatterns) - len(NOT_CARE_TEAM)


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_patient_gets_404_on_every_care_team_page(scene: Scene, method: str):
    client = portal_login(scene)
    task = Task.objects.filter(care_pathway=scene.pathway).first()
    assert task is not None

    answers = {
        pattern.name: getattr(client, method)(address(pattern, scene, task)).status_code
        for pattern in care_team_patterns()
    }

    assert answers == dict.fromkeys(answers, 404)


def test_a_patient_sees_no_library_link_or_upload_on_the_not_found_page(scene: Scene):
    client = portal_login(scene)

    body = client.get("/pathways/").content.decode()

    assert "/pathways/upload/" not in body
    assert "Déposer un parcours" not in body
    assert 'href="/portal/"' in body or 'href="/"' in body


def test_a_public_library_offers_a_patient_no_upload(scene: Scene, settings):
    settings.PARCOURS_PUBLIC_LIBRARY = True
    client = portal_login(scene)

    body = client.get("/pathways/").content.decode()

    assert 'data-pathway="care-test"' in body
    assert "/pathways/upload/" not in body
    assert client.get("/pathways/upload/").status_code == 404
