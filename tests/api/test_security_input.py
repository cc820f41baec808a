"""Hostile request bodies answer 400 naming what is wrong, never a 500, and store nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from patients.models import Patient
from tests.coordination.conftest import CARE_TEST, Scene, make_practitioner
from workflows.models import PathwayDefinition


@pytest.fixture
def manager_client(db) -> Client:
    practitioner = make_practitioner("coordinator")
    practitioner.user.user_permissions.add(Permission.objects.get(codename="add_pathwaydefinition"))
    practitioner.user.user_permissions.add(Permission.objects.get(codename="add_patient"))
    client = Client(raise_request_exception=False)
    client.force_login(practitioner.user)
    return client


def deeply_nested(levels: int) -> str:
    return '{"a": ' * levels + "1" + "}" * levels


def test_a_yaml_upload_that_is_not_utf8_is_refused_naming_the_byte(manager_client: Client):
    body = CARE_TEST.encode() + b"\n# caf\xe9 au lait\n"

    response = manager_client.post(
        "/api/v1/pathway-definitions/", body, content_type="application/yaml"
    )

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    detail = response.json()["detail"]
    assert "not UTF-8" in detail
    assert "0xe9" in detail
    assert PathwayDefinition.objects.count() == 0


@pytest.mark.parametrize("levels", [100_000, 33])
@pytest.mark.parametrize(
    "url", ["/api/v1/patients/", "/api/v1/pathway-definitions/", "/api/v1/pathways/"]
)
def test_a_json_body_nested_too_deeply_is_refused_naming_the_limit(
    manager_client: Client, url: str, levels: int
):
    response = manager_client.post(url, deeply_nested(levels), content_type="application/json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == "the JSON body is nested more than 32 levels deep"
    assert Patient.objects.count() == 0
    assert PathwayDefinition.objects.count() == 0


def test_a_json_body_within_the_depth_limit_is_read(manager_client: Client):
    response = manager_client.post(
        "/api/v1/pathways/", deeply_nested(31), content_type="application/json"
    )

    assert response.status_code == 400  # parsed, then refused for its fields, not its depth
    assert "nested" not in response.json()["detail"]


def test_a_deep_event_payload_is_refused_and_the_pathway_does_not_move(scene: Scene):
    client = Client(raise_request_exception=False)
    client.force_login(scene.gp.user)
    instance = scene.pathway.instance
    assert instance is not None
    revision = instance.revision
    body = '{"event": "stop", "payload": ' + deeply_nested(5_000) + "}"

    response = client.post(
        f"/api/v1/pathways/{scene.pathway.pk}/events/", body, content_type="application/json"
    )

    assert response.status_code == 400
    instance.refresh_from_db()
    assert (instance.state, instance.revision) == ("assessment", revision)
