"""Unknown fields in a request body are refused with 400 naming them, on every write of the
API, and nothing is written; `api.serializers.StrictSerializer` does it, nested items too.

The write routes are read from the URL configuration (tests/api/test_bola.py's walker), so a
new route is checked without anyone adding it. Callers authenticate with real personal API
tokens (`Authorization: Token ...`).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.base_user import AbstractBaseUser
from django.urls import get_resolver
from django.utils import timezone, translation
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.test import APIClient

from api.serializers import StrictSerializer, refuse_unknown_fields
from api.services.api_tokens import api_token_create
from coordination.services import care_pathway_cancel
from tests.api.test_bola import (
    API_PREFIX,
    Route,
    World,
    _methods,
    _slug,
    _walk,
    body_for,
    build_url,
    snapshot,
    world,
)

__all__ = ["world"]  # the module-scoped fixture of test_bola, shared

UNKNOWN = "zzz_unknown"
WRITES = ("post", "put", "patch")


def write_routes() -> list[tuple[Route, str]]:
    cases: list[tuple[Route, str]] = []
    for pattern, names, entry in _walk(get_resolver().url_patterns, "", ()):
        if not pattern.startswith(API_PREFIX):
            continue
        route = Route(pattern, names, _methods(entry))
        cases.extend((route, method) for method in route.methods if method in WRITES)
    return sorted(cases, key=lambda case: (case[0].pattern, case[1]))


WRITE_ROUTES = write_routes()


def token_client(user: AbstractBaseUser) -> APIClient:
    secret = api_token_create(user=user, name="strict", actor=user, lifetime=None).secret
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def caller(route: Route, world: World) -> AbstractBaseUser:
    """Someone the route lets through to its body: the nurse owns the task acted on; the GP,
    made superuser, passes the directory's and the definitions' permission checks."""
    if route.path.startswith("tasks/"):
        return world.nurse
    world.gp.is_superuser = True  # type: ignore[attr-defined]
    world.gp.save()
    return world.gp


def valid_body(route: Route, world: World) -> dict[str, Any]:
    """Bodies that succeed without the unknown field, for the writes whose success the
    test checks afterwards (the others may be refused for other reasons too)."""
    if route.path == "patients/":
        return {"family_name": "Martin", "given_names": "Claire", "birth_date": "1985-05-12",
                "sex": "female"}  # fmt: skip
    if route.path == "pathways/":
        return {"patient": world.p.patient.pk, "pathway": "care-test"}
    if route.path.startswith(("patients/<int:pk>/break-glass/", "webhooks/")) or route.path in (
        "live/tokens/",
    ):
        return body_for(route, world) if route.path.endswith("break-glass/") else {}
    if route.path.startswith("pathway-definitions/<"):
        return {}
    return body_for(route, world)


def test_every_write_route_is_walked() -> None:
    paths = {(route.path, method) for route, method in WRITE_ROUTES}

    assert {
        ("patients/", "post"),
        ("patients/<int:pk>/", "patch"),
        ("pathways/", "post"),
        ("pathways/<int:pk>/events/", "post"),
        ("tasks/<int:pk>/complete/", "post"),
        ("patients/<int:pk>/observations/", "post"),
    } <= paths


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("route", "method"),
    [pytest.param(r, m, id=f"{m}-{_slug(r.path)}") for r, m in WRITE_ROUTES],
)
def test_an_unknown_field_is_refused_and_nothing_is_written(
    world: World, route: Route, method: str
) -> None:
    client = token_client(caller(route, world))
    url = build_url(route, world, world.p) if route.parameters else "/" + route.pattern
    before = snapshot()

    response = getattr(client, method)(url, {**valid_body(route, world), UNKNOWN: 1}, format="json")

    where = f"{method.upper()} {url}"
    assert response.status_code == 400, f"{where}: {response.status_code} {response.content!r}"
    body = response.json()
    assert body["type"].endswith("/invalid-input"), where
    unknown = [e for e in body["errors"] if e["field"] == UNKNOWN]
    assert len(unknown) == 1, f"{where}: {body['errors']}"
    assert unknown[0]["message"].startswith("unknown field; the fields accepted here are: ")
    assert snapshot() == before, f"{where}: refused but wrote"


# The refusal is the unknown field's: without it, the same request succeeds.
SUCCEEDS_WITHOUT = [
    ("patients/", "post", 201),
    ("patients/<int:pk>/", "patch", 200),
    ("pathways/", "post", 201),
    ("tasks/<int:pk>/complete/", "post", 200),
    ("alerts/<int:pk>/acknowledge/", "post", 200),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "method", "status"), SUCCEEDS_WITHOUT)
def test_the_same_request_without_the_unknown_field_succeeds(
    world: World, path: str, method: str, status: int
) -> None:
    route = next(r for r, m in WRITE_ROUTES if r.path == path and m == method)
    client = token_client(caller(route, world))
    url = build_url(route, world, world.p) if route.parameters else "/" + route.pattern
    extra: dict[str, Any] = {}
    if method == "patch":
        extra["HTTP_IF_MATCH"] = f'"p{world.p.patient.version}"'
    if path == "pathways/":  # one care-test at a time for a patient
        care_pathway_cancel(pathway=world.p.pathway, user=None)
    before = snapshot()

    response = getattr(client, method)(url, valid_body(route, world), format="json", **extra)

    assert response.status_code == status, response.content
    assert snapshot() != before


@pytest.mark.django_db
def test_an_unknown_field_of_one_observation_of_a_batch_is_named_with_its_index(
    world: World,
) -> None:
    client = token_client(caller(Route("api/v1/patients/<int:pk>/", ("pk",), ()), world))
    item = {"code": "29463-7", "value": "80", "unit": "kg",
            "effective_at": timezone.now().isoformat()}  # fmt: skip
    before = snapshot()

    response = client.post(
        f"/api/v1/patients/{world.p.patient.pk}/observations/",
        {"items": [item, item, {**item, UNKNOWN: 1}]},
        format="json",
    )

    assert response.status_code == 400, response.content
    assert [e["field"] for e in response.json()["errors"]] == [f"items.2.{UNKNOWN}"]
    assert snapshot() == before


# --- the serializer itself ---------------------------------------------------------------


class Item(StrictSerializer):
    code = serializers.CharField()
    id = serializers.IntegerField(read_only=True)


class Batch(StrictSerializer):
    name = serializers.CharField(required=False)
    items = serializers.ListField(child=Item())
    one = Item(required=False)
    several = Item(many=True, required=False)


def errors_of(serializer: StrictSerializer) -> dict[str, Any]:
    # Outside a request no language is chosen: the API's own default, English.
    with translation.override("en"):
        assert not serializer.is_valid()
        return dict(serializer.errors)


def test_known_fields_pass() -> None:
    serializer = Batch(data={"name": "n", "items": [{"code": "a"}], "one": {"code": "b"}})

    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data["items"] == [{"code": "a"}]


def test_each_unknown_field_is_one_error_keyed_by_its_name() -> None:
    errors = errors_of(Batch(data={"items": [], "foo": 1, "bar": 2}))

    assert set(errors) == {"foo", "bar"}
    assert errors["foo"] == [
        "unknown field; the fields accepted here are: name, items, one, several"
    ]


def test_unknown_fields_are_reported_with_the_other_errors() -> None:
    errors = errors_of(Batch(data={"foo": 1}))

    assert set(errors) == {"foo", "items"}


def test_a_read_only_field_is_unknown() -> None:
    errors = errors_of(Item(data={"code": "a", "id": 3}))

    assert errors == {"id": ["unknown field; the fields accepted here are: code"]}


def test_items_of_a_list_field_are_strict() -> None:
    errors = errors_of(Batch(data={"items": [{"code": "a"}, {"code": "b", "foo": 1}]}))

    assert errors == {"items": {1: {"foo": ["unknown field; the fields accepted here are: code"]}}}


def test_nested_serializers_are_strict() -> None:
    errors = errors_of(
        Batch(data={"items": [], "one": {"code": "a", "x": 1}, "several": [{"code": "b", "y": 2}]})
    )

    assert set(errors["one"]) == {"x"}
    assert set(errors["several"][0]) == {"y"}


def test_a_bodiless_action_refuses_any_field() -> None:
    refuse_unknown_fields({})
    with pytest.raises(ValidationError) as raised:
        refuse_unknown_fields({"note": "x"})

    assert set(raised.value.detail) == {"note"}
