"""The OpenAPI schema as an integrator reads it: every operation summarised and described for
them (not for the developers), the headers and problem fields the API uses documented where
they apply, the same number types both ways, the page-size limits the README gives. And the
API's language: Accept-Language, English by default, the web UI French as before."""

from __future__ import annotations

import ast
import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from api.schema import ACCESS_PREFIX
from api.services.api_tokens import api_token_create
from coordination.models import Task
from tests.coordination.conftest import Scene, make_practitioner

README = Path(__file__).resolve().parents[2] / "README.md"
METHODS = ("get", "post", "put", "patch", "delete")

# What a description written for developers gives away: a module path, a Django permission
# codename, a note to self.
CODE_COMMENT = [
    re.compile(r"`[^`]*\b[a-z_]+\.[a-z_]+[^`]*`"),  # `services.foo`, `api.problems`
    re.compile(
        r"\b(?:api|core|patients|coordination|workflows|directory|live|web|config)\."
        r"(?:services|selectors|models|errors|problems|schema|scopes|v1)\b"
    ),
    re.compile(r"\b(?:add|change|view|delete)_[a-z]+\b"),  # change_patient
    re.compile(r"\b(?:TODO|FIXME|XXX)\b"),
    re.compile(r"\bself\.|\bdef |\bNone\b|\bquery_?set\b|\bserializer\b"),
]


def token_client(user: Any, **headers: Any) -> Client:
    secret = api_token_create(user=user, name="contract", actor=user, lifetime=None).secret
    return Client(HTTP_AUTHORIZATION=f"Token {secret}", **headers)


@pytest.fixture
def schema(db: None) -> dict[str, Any]:
    response = token_client(make_practitioner("nurse").user).get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def own_description(operation: dict[str, Any]) -> str:
    """The operation's description without the access paragraph every one ends with."""
    return operation.get("description", "").split("\n\n" + ACCESS_PREFIX)[0].strip()


def test_every_operation_has_a_summary_and_a_description(schema: dict[str, Any]):
    missing = [
        f"{method} {path}"
        for method, path, operation in operations(schema)
        if not operation.get("summary", "").strip()
        or not own_description(operation)
        or own_description(operation).startswith(ACCESS_PREFIX)
    ]

    assert len(operations(schema)) > 60
    assert missing == []


def test_no_description_reads_like_a_code_comment(schema: dict[str, Any]):
    suspicious = [
        f"{method} {path}: {pattern.search(text)[0]!r}"  # type: ignore[index]
        for method, path, operation in operations(schema)
        for text in (operation.get("summary", ""), operation.get("description", ""))
        for pattern in CODE_COMMENT
        if pattern.search(text)
    ]

    assert suspicious == []


@pytest.mark.parametrize(
    "text",
    [
        "Base of the API views; see api.services.idempotency",
        "Needs change_patient on the patient.",
        "Validated by `observations_record.items`.",
        "TODO: document",
    ],
)
def test_the_code_comment_check_catches_developer_notes(text: str):
    assert any(pattern.search(text) for pattern in CODE_COMMENT)


def test_every_description_says_which_oauth2_scope_the_operation_needs(schema: dict[str, Any]):
    notes = {
        (method, path): operation["description"].rsplit(ACCESS_PREFIX, 1)[-1]
        for method, path, operation in operations(schema)
    }

    assert "patients:write" in notes[("POST", "/api/v1/patients/")]
    assert "observations:read" in notes[("GET", "/api/v1/patients/{id}/observations/")]
    assert "tasks:write" in notes[("POST", "/api/v1/tasks/{id}/claim/")]
    assert "platform OAuth2 tokens are refused" in notes[("POST", "/api/v1/tokens/")]


def test_idempotent_posts_document_the_key_and_the_replayed_header(schema: dict[str, Any]):
    posts = [(path, op) for method, path, op in operations(schema) if method == "POST"]
    keyed = {
        path: op
        for path, op in posts
        if any(
            p["name"] == "Idempotency-Key" and p["in"] == "header" for p in op.get("parameters", [])
        )
    }
    unreplayed = [
        f"{path} {code}"
        for path, op in keyed.items()
        for code, response in op["responses"].items()
        if code.startswith("2") and "Idempotent-Replayed" not in response.get("headers", {})
    ]

    assert {"/api/v1/patients/", "/api/v1/pathways/", "/api/v1/tasks/{id}/complete/"} <= set(keyed)
    assert unreplayed == []


def test_errors_document_their_headers(schema: dict[str, Any]):
    missing = []
    for method, path, operation in operations(schema):
        responses = operation["responses"]
        for code, header in (("401", "WWW-Authenticate"), ("429", "Retry-After")):
            if header not in responses.get(code, {}).get("headers", {}):
                missing.append(f"{method} {path} {code} {header}")

    assert missing == []


def test_etag_and_if_match_are_documented_where_the_api_uses_them(schema: dict[str, Any]):
    paths = schema["paths"]

    def header_names(operation: dict[str, Any]) -> set[str]:
        return {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}

    for path, method, code in [
        ("/api/v1/patients/{id}/", "get", "200"),
        ("/api/v1/patients/{id}/", "patch", "200"),
        ("/api/v1/patients/", "post", "201"),
        ("/api/v1/pathways/{id}/", "get", "200"),
        ("/api/v1/pathways/{id}/events/", "post", "200"),
        ("/api/v1/tasks/{id}/", "get", "200"),
        ("/api/v1/tasks/{id}/complete/", "post", "200"),
    ]:
        assert "ETag" in paths[path][method]["responses"][code]["headers"], (path, method)
    for path, method in [
        ("/api/v1/patients/{id}/", "patch"),
        ("/api/v1/pathways/{id}/events/", "post"),
        ("/api/v1/tasks/{id}/complete/", "post"),
    ]:
        assert "If-Match" in header_names(paths[path][method]), (path, method)
        assert "412" in paths[path][method]["responses"], (path, method)


def test_the_problem_component_holds_every_field_the_api_writes(schema: dict[str, Any]):
    components = schema["components"]["schemas"]
    problem = components["Problem"]["properties"]
    item = components["ProblemField"]["properties"]

    assert {"type", "title", "status", "detail", "reason", "required_scopes", "errors"} <= set(
        problem
    )
    assert problem["errors"]["items"] == {"$ref": "#/components/schemas/ProblemField"}
    assert {"field", "message", "line", "column", "expected_key"} <= set(item)
    assert problem["required_scopes"]["type"] == "array"
    for kind in ("precondition-failed", "idempotency-conflict", "conflict", "throttled"):
        assert kind in problem["type"]["description"]


def emitted_problem_kinds() -> set[str]:
    """Every problem `type` the code can answer: the `kind` argument of each `problem(...)`
    and `_plain_problem(...)` call, and the kinds of DRF's own errors (api/problems.py)."""
    kinds: set[str] = set()
    root = Path(__file__).resolve().parents[2]
    for package in ("api", "config", "web"):
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "id", getattr(node.func, "attr", None))
                if name not in ("problem", "_plain_problem"):
                    continue
                kind = node.args[3] if len(node.args) >= 4 else None
                kind = next((k.value for k in node.keywords if k.arg == "kind"), kind)
                if isinstance(kind, ast.Constant) and isinstance(kind.value, str):
                    kinds.add(kind.value)
    drf_kinds = re.findall(r'\("([a-z-]+)", _\(', (root / "api" / "problems.py").read_text())
    return kinds | set(drf_kinds)


def test_every_problem_type_the_code_answers_is_documented(schema: dict[str, Any]):
    kinds = emitted_problem_kinds()
    described = schema["components"]["schemas"]["Problem"]["properties"]["type"]["description"]
    readme = README.read_text()

    assert {"consent-withdrawn", "email-not-sent", "throttled", "not-found"} <= kinds
    assert sorted(k for k in kinds if not re.search(rf"\b{k}\b", described)) == []
    assert sorted(k for k in kinds if f"`{k}`" not in readme) == []


def test_an_observation_value_is_a_number_in_requests_and_answers(schema: dict[str, Any]):
    components = schema["components"]["schemas"]

    assert components["ObservationInRequest"]["properties"]["value"]["type"] == "number"
    assert components["Observation"]["properties"]["value"]["type"] == "number"
    assert components["AlertObservation"]["properties"]["value"]["type"] == "number"
    assert components["ParameterSetRequest"]["properties"]["value"]["type"] == "number"
    assert "format: decimal" not in str(schema).replace("'format': 'decimal'", "format: decimal")


def test_page_size_limits_in_the_schema_are_the_readme_s(schema: dict[str, Any]):
    readme = README.read_text()
    lists = re.search(r"at most `page_size` \(default (\d+), at most\s+(\d+)\)", readme)
    long = re.search(r"observations and audit events: default (\d+), at most (\d+)", readme)
    assert lists is not None
    assert long is not None
    default, most = map(int, lists.groups())
    long_default, long_most = map(int, long.groups())
    sizes = {
        path: next(p["schema"] for p in item["get"]["parameters"] if p["name"] == "page_size")
        for path, item in schema["paths"].items()
        if any(p["name"] == "page_size" for p in item.get("get", {}).get("parameters", []))
    }
    long_lists = {"/api/v1/patients/{id}/observations/", "/api/v1/patients/{id}/audit-events/"}

    assert len(sizes) > 10
    for path, size in sizes.items():
        expected = (long_default, long_most) if path in long_lists else (default, most)
        assert (size["default"], size["maximum"], size["minimum"]) == (*expected, 1), path


def _weight(kg: object) -> dict[str, object]:
    moment = timezone.now() - dt.timedelta(hours=1)
    return {"code": "29463-7", "value": kg, "unit": "kg", "effective_at": moment.isoformat()}


def test_an_observation_is_answered_with_its_value_as_a_number_also_on_replay(scene: Scene):
    client = token_client(scene.nurse.user)
    url = f"/api/v1/patients/{scene.patient.pk}/observations/"

    body = _weight(70.25)

    first = client.post(url, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="w-1")
    replay = client.post(url, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="w-1")
    listed = client.get(url)

    assert first.status_code == 201, first.content
    assert first.json()["value"] == 70.25
    assert "Idempotent-Replayed" not in first
    assert (replay.status_code, replay["Idempotent-Replayed"]) == (201, "true")
    assert replay.json() == first.json()
    assert [o["value"] for o in listed.json()["results"]] == [70.25]


# The language of the answers.


def test_api_problems_are_in_english_by_default_even_for_a_french_browser_cookie(db):
    client = Client()
    client.cookies["django_language"] = "fr"

    response = client.get("/api/v1/tasks/")

    assert response.status_code == 401
    assert response["Content-Language"] == "en"
    assert response.json()["title"] == "Not authenticated"
    assert response.json()["detail"] == "Authentication credentials were not provided."


def test_api_problems_follow_accept_language_french(db):
    response = Client(HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9,en;q=0.5").get("/api/v1/tasks/")

    assert response.status_code == 401
    assert response["Content-Language"] == "fr"
    assert response.json()["title"] == "Non authentifié"
    assert response.json()["detail"] == ("Informations d'authentification non fournies.")


def test_accept_language_preferences_are_weighed(db):
    weighed = Client(HTTP_ACCEPT_LANGUAGE="de;q=1, en;q=0.4, fr;q=0.8").get("/api/v1/tasks/")
    unknown = Client(HTTP_ACCEPT_LANGUAGE="de, es").get("/api/v1/tasks/")

    assert weighed.json()["title"] == "Non authentifié"
    assert unknown.json()["title"] == "Not authenticated"


@pytest.mark.parametrize(
    ("language", "title", "message"),
    [
        ("", "Invalid input", "This field is required."),
        ("fr", "Données invalides", "Ce champ est obligatoire."),
    ],
)
def test_validation_messages_follow_accept_language(
    scene: Scene, language: str, title: str, message: str
):
    client = token_client(scene.nurse.user, HTTP_ACCEPT_LANGUAGE=language)

    response = client.post(
        f"/api/v1/patients/{scene.patient.pk}/consents/",
        {"given": True},
        content_type="application/json",
    )

    assert response.status_code == 400
    assert response.json()["title"] == title
    assert response.json()["errors"] == [{"field": "scope", "message": message}]


@pytest.mark.parametrize(
    ("language", "title"), [("en", "Precondition failed"), ("fr", "Échec de la précondition")]
)
def test_a_stale_if_match_is_a_precondition_failed_problem_in_the_asked_language(
    scene: Scene, language: str, title: str
):
    client = token_client(scene.nurse.user, HTTP_ACCEPT_LANGUAGE=language)
    task = Task.objects.filter(patient=scene.patient).first()
    assert task is not None

    response = client.post(
        f"/api/v1/tasks/{task.pk}/claim/",
        {},
        content_type="application/json",
        HTTP_IF_MATCH='"task999"',
    )

    assert response.status_code == 412
    assert response.json()["type"].endswith("/precondition-failed")
    assert response.json()["title"] == title


def test_an_oversized_body_is_refused_in_the_asked_language(db, settings):
    settings.API_MAX_BODY_BYTES = 10
    client = Client(HTTP_ACCEPT_LANGUAGE="fr")

    response = client.post("/api/v1/tasks/", "x" * 50, content_type="application/json")

    assert response.status_code == 413
    assert response.json()["title"] == "Corps de requête trop volumineux"
    assert response.json()["detail"] == "le corps fait 50 octets ; la limite est de 10 octets"


def test_the_web_ui_stays_french_by_default(db):
    response = Client().get("/login/")

    assert response.status_code == 200
    assert response["Content-Language"] == "fr"


def test_the_web_ui_follows_its_language_cookie(db):
    client = Client()
    client.cookies["django_language"] = "en"

    response = client.get("/login/")

    assert response["Content-Language"] == "en"
