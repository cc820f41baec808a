"""Publishing a draft and retiring a version from the library, each after a confirmation
page: the API's services and permission, CSRF-protected forms. Logged in through the login
form."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from directory.models import Practitioner
from tests.coordination.conftest import CARE_TEST, Scene
from workflows.actors import Actor
from workflows.models import PathwayDefinition
from workflows.services import definition_upload

PASSWORD = "synthetic-pass-library"


def login(practitioner: Practitioner, *, manager: bool, csrf: bool = False) -> Client:
    user = practitioner.user
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    if manager:
        user.user_permissions.add(Permission.objects.get(codename="add_pathwaydefinition"))
    client = Client(enforce_csrf_checks=csrf)
    if csrf:
        client.get("/login/")
        token = client.cookies["csrftoken"].value
        data = {"username": user.username, "password": PASSWORD, "csrfmiddlewaretoken": token}
    else:
        data = {"username": user.username, "password": PASSWORD}
    assert client.post("/login/", data).status_code == 302
    return client


@pytest.fixture
def draft(scene: Scene) -> PathwayDefinition:
    source = CARE_TEST.replace("version: 1", "version: 2")
    return definition_upload(source=source, actor=Actor(id="test")).definition


def status(key: str, version: int) -> str:
    return PathwayDefinition.objects.get(key=key, version=version).status


def test_a_manager_publishes_a_draft_after_confirming(scene: Scene, draft: PathwayDefinition):
    client = login(scene.coordinator, manager=True, csrf=True)

    detail = client.get("/pathways/care-test/2/").content.decode()
    confirm = client.get("/pathways/care-test/2/publish/")
    token = client.cookies["csrftoken"].value
    unchanged_until_confirmed = status("care-test", 2)
    done = client.post("/pathways/care-test/2/publish/", {"csrfmiddlewaretoken": token})

    assert 'href="/pathways/care-test/2/publish/"' in detail
    assert confirm.status_code == 200
    assert 'data-confirm="publish"' in confirm.content.decode()
    assert "Confirmer : publier" in confirm.content.decode()
    assert unchanged_until_confirmed == "draft"
    assert done.status_code == 302
    assert done["Location"] == "/pathways/care-test/2/"
    assert status("care-test", 2) == "active"
    page = client.get(done["Location"]).content.decode()
    assert "care-test version 2 est publiée" in page
    assert 'href="/pathways/care-test/2/retire/"' in page


def test_a_manager_retires_an_active_version_after_confirming(scene: Scene):
    client = login(scene.coordinator, manager=True)

    confirm = client.get("/pathways/care-test/1/retire/")
    done = client.post("/pathways/care-test/1/retire/")

    assert 'data-confirm="retire"' in confirm.content.decode()
    assert done.status_code == 302
    assert status("care-test", 1) == "retired"
    definition = PathwayDefinition.objects.get(key="care-test", version=1)
    assert definition.retired_at is not None


def test_the_form_needs_its_csrf_token(scene: Scene, draft: PathwayDefinition):
    client = login(scene.coordinator, manager=True, csrf=True)

    response = client.post("/pathways/care-test/2/publish/")

    assert response.status_code == 403
    assert status("care-test", 2) == "draft"


@pytest.mark.parametrize("method", ["get", "post"])
def test_without_the_permission_nothing_is_offered_or_changed(
    scene: Scene, draft: PathwayDefinition, method: str
):
    client = login(scene.nurse, manager=False)

    detail = client.get("/pathways/care-test/2/").content.decode()
    response = getattr(client, method)("/pathways/care-test/2/publish/")

    assert "/publish/" not in detail
    assert response.status_code == 403
    assert 'name="csrfmiddlewaretoken"' not in response.content.decode().split("<main")[1]
    assert status("care-test", 2) == "draft"


def test_a_version_whose_status_does_not_allow_it_is_not_offered_nor_changed(scene: Scene):
    client = login(scene.coordinator, manager=True)

    confirm = client.get("/pathways/care-test/1/publish/")
    sent = client.post("/pathways/care-test/1/retire/")
    again = client.post("/pathways/care-test/1/publish/")  # retired: cannot be reactivated

    assert 'data-confirm="publish"' not in confirm.content.decode()
    assert "Seul un brouillon peut être publié." in confirm.content.decode()
    assert sent.status_code == 302
    assert again.status_code == 409
    assert status("care-test", 1) == "retired"


def test_a_missing_version_is_not_found(scene: Scene):
    client = login(scene.coordinator, manager=True)

    assert client.get("/pathways/care-test/9/publish/").status_code == 404
    assert client.post("/pathways/care-test/9/retire/").status_code == 404
