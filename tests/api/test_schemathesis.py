"""The API against its own OpenAPI schema: schemathesis generates requests for every
operation of `/api/schema/` and checks each answer.

The schema is loaded from the app itself through its WSGI handler, in-process, so the
requests run in the test's transaction and see its data: a care team, a started pathway
with open tasks. Every request is authenticated as the team's nurse with a personal API
token (no CSRF dance, as a script would call it; OAuth2 tokens are platforms' only, and a
platform cannot act as a nurse). Examples are few per operation and
derandomized: the suite stays fast and gives the same cases on every run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.services.api_tokens import api_token_create
from coordination.models import Task
from tests.coordination.conftest import Scene

EXAMPLES_PER_OPERATION = 5
SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    # The data fixtures are function-scoped on purpose: every example sees the same scene.
    suppress_health_check=list(HealthCheck),
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def authorization(scene: Scene) -> str:
    """The nurse's personal API token, as an Authorization header value."""
    created = api_token_create(
        user=scene.nurse.user, name="schemathesis", actor=scene.nurse.user, lifetime=None
    )
    return f"Token {created.secret}"


@pytest.fixture
def api_schema(scene: Scene, authorization: str) -> Iterator[Any]:
    # As Django's test client does: the handler must not close the test's connection (and
    # its open transaction) at the start or end of each request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi(  # the schema is for authenticated callers
            "/api/schema/?format=json",
            get_wsgi_application(),
            headers={"Authorization": authorization},
        )
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_within_its_schema(
    api_schema: Any, authorization: str, mode: GenerationMode, subtests: pytest.Subtests
) -> None:
    # One subtest per operation rather than schemathesis' own pytest loader, whose lazy
    # (fixture-backed) schemas do not run under pytest 9.2 (it rewrites a private node id).
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 20
    headers = {"Authorization": authorization}
    for operation in operations:
        with subtests.test(msg=operation.label):

            @SETTINGS
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: Any) -> None:
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                check()
            except Unsatisfiable:
                # An operation with no parameters and no body (POST live/tokens/) has no
                # invalid input to generate; its positive run above covers it.
                if mode is not GenerationMode.NEGATIVE:
                    raise
                pytest.skip(f"{operation.label}: nothing to make invalid")


# Regressions for what the run above found, one behaviour each.


def test_a_keyed_post_with_an_api_token_is_served_and_replayed(
    scene: Scene, authorization: str, client: Client
) -> None:
    task = Task.objects.get(care_pathway=scene.pathway, code="visit")
    task_version = task.version
    url = f"/api/v1/tasks/{task.pk}/start/"
    headers = {"Authorization": authorization, "Idempotency-Key": "token-1"}

    first = client.post(
        url, {"note": "on my way"}, content_type="application/json", headers=headers
    )
    retry = client.post(
        url, {"note": "on my way"}, content_type="application/json", headers=headers
    )

    assert (first.status_code, retry.status_code) == (200, 200)
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    task.refresh_from_db()
    assert (task.status, task.version) == ("in-progress", task_version + 1)


def test_an_api_path_no_route_matches_is_a_problem_404(
    scene: Scene, authorization: str, client: Client
) -> None:
    response = client.get("/api/v1/tasks/-1/", headers={"Authorization": authorization})

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json() == {
        "type": "https://parcours.invalid/problems/not-found",
        "title": "Not found",
        "status": 404,
        "detail": "no such resource",
    }


def test_a_patient_without_email_or_ins_conforms_to_the_patient_schema(
    api_schema: Any, scene: Scene, authorization: str
) -> None:
    operation = api_schema["/api/v1/patients/{id}/"]["GET"]

    response = operation.Case(path_parameters={"id": scene.patient.pk}).call(
        headers={"Authorization": authorization}
    )

    assert (response.status_code, response.json()["email"], response.json()["ins_oid"]) == (
        200, "", None,
    )  # fmt: skip
    assert operation.is_valid_response(response)
