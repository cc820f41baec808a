"""With DEBUG off (production, the test settings, `DEBUG=false make run`), a page that fails
answers a plain page in the visitor's language with a way back, never a traceback; the API
answers problem+json."""

from __future__ import annotations

import json

import pytest
from django.test import Client, override_settings

pytestmark = [pytest.mark.urls("tests.web.failing_urls"), pytest.mark.django_db]


@pytest.fixture
def client() -> Client:
    return Client(raise_request_exception=False)


def test_a_failing_page_answers_500_in_french_with_a_way_back(client: Client):
    response = client.get("/failing/")

    assert response.status_code == 500
    assert response["Content-Type"] == "text/html; charset=utf-8"
    page = response.content.decode()
    assert '<html lang="fr">' in page
    assert "Une erreur s’est produite" in page
    assert 'href="/failing/"' in page  # try again
    assert 'href="/"' in page  # back to the home page
    assert "SECRET-DETAIL" not in page
    assert "Traceback" not in page


def test_a_failing_page_answers_in_english_to_an_english_visitor(client: Client):
    client.cookies["django_language"] = "en"

    page = client.get("/failing/").content.decode()

    assert '<html lang="en">' in page
    assert "Something went wrong" in page
    assert "Back to the home page" in page


def test_a_failed_form_submission_offers_no_retry_that_would_post_again(client: Client):
    page = client.post("/failing/").content.decode()

    assert 'href="/failing/"' not in page
    assert 'href="/"' in page


def test_a_failing_api_route_answers_a_problem_without_the_error(client: Client):
    response = client.get("/api/v1/failing/")

    assert response.status_code == 500
    assert response["Content-Type"] == "application/problem+json"
    body = json.loads(response.content)
    assert body["status"] == 500
    assert body["type"].endswith("/server-error")
    assert "SECRET-DETAIL" not in response.content.decode()


def test_a_page_that_does_not_exist_is_a_plain_page_with_a_way_back(client: Client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    page = response.content.decode()
    assert "Page introuvable" in page
    assert 'href="/"' in page


@override_settings(DEBUG=False, STORAGES={
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
})  # fmt: skip
def test_the_error_page_shows_even_without_collected_static_files(client: Client, tmp_path):
    with override_settings(STATIC_ROOT=tmp_path):  # no manifest there
        response = client.get("/failing/")

    assert response.status_code == 500
    assert "Une erreur s’est produite" in response.content.decode()


def test_a_page_not_found_offers_no_retry(client: Client):
    page = client.get("/no-such-page/").content.decode()

    assert 'href="/no-such-page/"' not in page
