"""Refusals written by the services reach an API client in its language: English unless
Accept-Language asks for French, whatever language the process happens to be in."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.utils import translation
from rest_framework.test import APIClient

from coordination.models import CarePathway, Task
from tests.coordination.conftest import Scene, make_practitioner


def token_client(user: Any, **headers: Any) -> APIClient:
    """A client holding a personal token made through the tokens endpoint, as a script
    would get one."""
    session = APIClient()
    session.force_authenticate(user)
    created = session.post("/api/v1/tokens/", {"name": "language test"}, format="json")
    assert created.status_code == 201, created.content
    client = APIClient(**headers)
    client.credentials(HTTP_AUTHORIZATION=f"Token {created.json()['token']}")
    return client


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "only the task's owner may do this; claim it first"),
        ({"HTTP_ACCEPT_LANGUAGE": "en-GB"}, "only the task's owner may do this; claim it first"),
        (
            {"HTTP_ACCEPT_LANGUAGE": "fr-FR,fr;q=0.9"},
            "seul le responsable de la tâche peut faire cela ; prenez-la d'abord",
        ),
    ],
)
def test_working_on_a_task_someone_else_owns_is_refused_in_the_clients_language(
    scene: Scene, headers: dict[str, str], detail: str
):
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")  # the nurse's
    client = token_client(scene.gp.user, **headers)

    # The server's own default language is French: the answer must not follow it.
    with translation.override("fr"):
        response = client.post(f"/api/v1/tasks/{visit.pk}/start/", {}, format="json")

    assert response.status_code == 403
    assert response.json()["type"].endswith("/not-allowed")
    assert response.json()["detail"] == detail
    visit.refresh_from_db()
    assert (visit.status, visit.version) == ("ready", 1)


@pytest.mark.parametrize(
    ("language", "detail"),
    [
        (
            "",
            "the patient already follows this pathway: care pathway {pk} (care-test version 1, "
            "active, in state assessment); it must end before another starts",
        ),
        (
            "fr",
            "le patient suit déjà ce parcours : parcours de soins {pk} (care-test version 1, "
            "active, à l'état assessment) ; il doit se terminer avant qu'un autre ne démarre",
        ),
    ],
)
def test_starting_a_pathway_twice_is_refused_in_the_clients_language(
    scene: Scene, language: str, detail: str
):
    client = token_client(scene.gp.user, HTTP_ACCEPT_LANGUAGE=language)

    with translation.override("fr"):
        response = client.post(
            "/api/v1/pathways/",
            {"patient": scene.patient.pk, "pathway": "care-test"},
            format="json",
        )

    assert response.status_code == 409
    assert response.json()["detail"] == detail.format(pk=scene.pathway.pk)
    assert CarePathway.objects.filter(patient=scene.patient).count() == 1


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("", "unknown target state 'nowhere'"),
        ("fr", "état cible inconnu 'nowhere'"),
    ],
)
def test_a_broken_definition_upload_lists_its_problems_in_the_clients_language(
    db: None, language: str, message: str
):
    manager = make_practitioner("coordinator").user
    manager.user_permissions.add(Permission.objects.get(codename="add_pathwaydefinition"))
    broken = (
        "key: broken-test\nversion: 1\ntitle: Broken\nroles: [gp]\ninitial: start\n"
        "states:\n  start:\n    on:\n      go: nowhere\n  done: {final: true}\n"
    )

    response = token_client(manager, HTTP_ACCEPT_LANGUAGE=language).post(
        "/api/v1/pathway-definitions/", broken, content_type="application/yaml"
    )

    assert response.status_code == 400
    assert {"field": "states.start.on.go", "message": message} in [
        {"field": e["field"], "message": e["message"]} for e in response.json()["errors"]
    ]
