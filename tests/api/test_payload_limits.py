"""Through the REST API: a payload or a context past the bounds guards may read is a 400 that
names what is too large and changes nothing; a definition whose guard could stall the server
is refused at upload, located."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from coordination.models import CarePathway
from patients.models import AuditEvent
from tests.coordination.conftest import CARE_TEST, Scene, make_practitioner
from workflows.models import HistoryEntry, PathwayDefinition, PathwayInstance


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def fire(scene: Scene, body: str) -> Any:
    return client_for(scene.gp.user).generic(
        "POST",
        f"/api/v1/pathways/{scene.pathway.pk}/events/",
        body,
        content_type="application/json",
    )


def trace(scene: Scene) -> tuple[object, ...]:
    assert scene.pathway.instance_id is not None
    instance = PathwayInstance.objects.get(pk=scene.pathway.instance_id)
    return (
        instance.state,
        instance.revision,
        HistoryEntry.objects.filter(instance_id=instance.pk).count(),
        AuditEvent.objects.filter(action=AuditEvent.Action.UPDATE).count(),
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            json.dumps({"reason": "x", "items": list(range(501))}),
            "payload.items: 501 items; payload holds at most 500 values in all",
        ),
        (
            json.dumps({"items": [{"code": i} for i in range(300)]}),
            "payload.items[249]: payload holds more than 500 values (every object, list, text, "
            "number, true, false and null counts one)",
        ),
        (
            '{"a": ' + nested(11) + "}",
            "payload.a[0][0][0][0][0][0][0][0][0]: nested more than 10 levels deep in payload",
        ),
        (
            json.dumps({"note": "x" * 70_000}),
            "payload is larger than 65536 bytes of JSON (70012)",
        ),
    ],
)
def test_an_event_with_a_payload_past_the_bounds_is_a_400_naming_it_and_changes_nothing(
    scene: Scene, payload, message
):
    before = trace(scene)

    response = fire(scene, '{"event": "stop", "payload": ' + payload + "}")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"] == [{"field": "payload", "message": message}]
    assert trace(scene) == before


def test_a_payload_nested_past_what_json_can_decode_is_a_400_not_a_crash(scene: Scene):
    before = trace(scene)

    response = fire(scene, '{"event": "stop", "payload": {"a": ' + nested(100_000) + "}}")

    assert response.status_code == 400
    assert response.json()["detail"] == "the JSON body is nested more than 32 levels deep"
    assert trace(scene) == before


def test_a_payload_at_the_bounds_is_accepted(scene: Scene):
    payload = {"items": [{"code": f"c{i}"} for i in range(249)]}  # 1 + 1 + 249 * 2 = 500

    response = fire(scene, json.dumps({"event": "stop", "payload": payload}))

    assert response.status_code == 200
    assert response.json()["state"] == "closed"


def test_starting_with_a_context_past_the_bounds_is_a_400_and_starts_nothing(scene: Scene):
    before = CarePathway.objects.count()

    response = client_for(scene.gp.user).post(
        "/api/v1/pathways/",
        {"patient": scene.patient.pk, "pathway": "care-test", "context": {"a": nested_list(11)}},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "context",
            "message": "context.a[0][0][0][0][0][0][0][0][0]: nested more than 10 levels deep "
            "in context",
        }
    ]
    assert CarePathway.objects.count() == before


def nested_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.fixture
def manager(db):
    practitioner = make_practitioner("coordinator")
    practitioner.user.user_permissions.add(Permission.objects.get(codename="add_pathwaydefinition"))
    return practitioner.user


def test_uploading_the_nested_guard_of_the_issue_is_refused_where_it_is_written(manager):
    guarded = CARE_TEST.replace(
        "stop: {to: closed, roles: [gp, coordinator]}",
        'stop: {to: closed, roles: [gp, coordinator], guard: "payload.a.all(x, payload.a.all('
        'y, x != y || x == y))"}',
    )

    response = client_for(manager).post(
        "/api/v1/pathway-definitions/", guarded, content_type="application/yaml"
    )

    assert response.status_code == 400
    assert [(e["field"], e["line"], e["message"]) for e in response.json()["errors"]] == [
        (
            "states.assessment.on.stop.guard",
            14,
            "all() inside all(): comprehensions cannot be nested (the inner one would run once "
            "per item of the outer one)",
        ),
        (
            "states.assessment.on.stop.guard",
            14,
            "inside all(), only 'x' and constants may be used: 'payload' would be copied once "
            "per item",
        ),
    ]
    assert not PathwayDefinition.objects.filter(key="care-test", version=2).exists()
