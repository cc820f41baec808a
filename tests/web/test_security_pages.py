"""What the web UI shows to whom, and the browser-side protections of every page."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client, RequestFactory, override_settings
from django.views.debug import technical_500_response

from coordination.models import Task
from tests.coordination.conftest import Scene

ROOT_DIR = Path(__file__).resolve().parents[2]
PASSWORDS = ("db-password-123", "redis-password-456", "broker-password-789")
CONNECTION_URLS = {
    "DATABASE_URL": f"postgres://parcours:{PASSWORDS[0]}@db.internal/parcours",
    "REDIS_URL": f"redis://:{PASSWORDS[1]}@cache.internal:6379/0",
    "CELERY_BROKER_URL": f"amqp://parcours:{PASSWORDS[2]}@mq.internal//",
}
# A script without src, except data blocks (json_script), which CSP does not run.
INLINE_SCRIPT = re.compile(
    r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.IGNORECASE
)
INLINE_STYLE = re.compile(r"<style\b|\sstyle=\"", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"\son[a-z]+=\"", re.IGNORECASE)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def care_pages(scene: Scene) -> list[str]:
    task = Task.objects.filter(care_pathway=scene.pathway).first()
    assert task is not None
    return [
        "/worklist/", "/alerts/", f"/tasks/{task.pk}/", f"/patients/{scene.patient.pk}/",
        "/pathways/", "/pathways/care-test/1/", "/pathways/upload/",
    ]  # fmt: skip


def test_every_page_carries_a_content_security_policy_without_inline_code(scene: Scene):
    coordinator = scene.coordinator.user
    coordinator.user_permissions.add(Permission.objects.get(codename="add_pathwaydefinition"))
    client = logged_in(coordinator)
    anonymous = Client()

    pages = [(client, url) for url in care_pages(scene)]
    pages += [(anonymous, "/login/"), (anonymous, "/no-such-page/"), (client, "/api/v1/tasks/")]
    for who, url in pages:
        response = who.get(url)
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy, url
        assert "style-src 'self'" in policy, url
        assert "unsafe-inline" not in policy, url
        assert "frame-ancestors 'none'" in policy, url
        body = response.content.decode()
        assert INLINE_SCRIPT.findall(body) == [], url
        assert INLINE_STYLE.findall(body) == [], url
        assert INLINE_HANDLER.findall(body) == [], url


@pytest.mark.parametrize(
    "url", ["/pathways/", "/pathways/care-test/1/", "/pathways/care-test/1/diagram.svg"]
)
def test_an_anonymous_visitor_is_sent_to_log_in_before_the_library(scene: Scene, url: str):
    response = Client().get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


@override_settings(PARCOURS_PUBLIC_LIBRARY=True)
def test_a_public_library_is_open_to_anonymous_visitors(scene: Scene):
    assert Client().get("/pathways/care-test/1/").status_code == 200


@pytest.mark.parametrize("url", ["/api/schema/", "/api/docs/"])
def test_the_api_schema_and_docs_are_for_api_callers_only(scene: Scene, url: str):
    anonymous = Client().get(url)
    member = logged_in(scene.nurse.user).get(url)

    assert anonymous.status_code in (401, 403)
    assert member.status_code == 200


@pytest.mark.parametrize("url", ["/pathways/", "/pathways/care-test/1/", "/pathways/upload/"])
def test_a_patient_account_gets_404_on_the_library(scene: Scene, url: str):
    account = get_user_model().objects.create_user(username="portal-library")
    scene.patient.user = account
    scene.patient.save(update_fields=["user"])

    assert logged_in(account).get(url).status_code == 404


def debug_page() -> str:
    """Django's debug page for an error raised here (no secret in this frame's source or
    variables: the page shows both)."""
    try:
        raise RuntimeError("failing on purpose")
    except RuntimeError:
        request = RequestFactory().get("/failing/")
        return technical_500_response(request, *sys.exc_info()).content.decode()


def test_the_debug_page_hides_connection_urls_and_their_passwords(db):
    with override_settings(DEBUG=True, **CONNECTION_URLS):
        page = debug_page()

    assert "failing on purpose" in page  # it is the debug page
    assert "DATABASE_URL" in page  # listed, with its value hidden
    for password in PASSWORDS:
        assert password not in page


def test_production_answers_json_only_no_browsable_api():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.production",
           "SECRET_KEY": "x" * 50, "AUDIT_CHAIN_KEY": "k" * 40,
           "AUDIT_CHECKPOINT_DIR": "/tmp/parcours-checkpoints",
           "EMAIL_URL": "smtp://smtp.example.org",
           "DEFAULT_FROM_EMAIL": "no-reply@example.org"}  # fmt: skip
    script = textwrap.dedent(
        """
        import django; django.setup()
        from django.conf import settings
        print(settings.REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"])
        """
    )

    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT_DIR, env=env, capture_output=True, text=True,
        check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['rest_framework.renderers.JSONRenderer']"
