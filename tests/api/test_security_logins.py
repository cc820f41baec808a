"""Logging in can be neither guessed at nor hidden: repeated failures lock a username (or
a platform's client id) out for a while from that address, on the web login, the admin's and
the OAuth2 token endpoint; every login and every failed attempt is in the audit trail; and
the token endpoint takes as long for an unknown client id as for a known one."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.contrib.auth.hashers import MD5PasswordHasher
from django.test import Client
from django.utils import timezone

from patients.models import AuditEvent
from tests.api.test_security_oauth import basic, make_platform, organization  # noqa: F401
from tests.coordination.conftest import make_practitioner

PASSWORD = "synthetic-login-pass-42"
LIMIT = 5


@pytest.fixture
def gp(db: None):
    return make_practitioner("gp", password=PASSWORD).user


def log_in(client: Client, url: str, username: str, password: str):
    return client.post(url, {"username": username, "password": password})


def logins(outcome: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="login", outcome=outcome).order_by("pk"))


@pytest.mark.parametrize("url", ["/login/", "/admin/login/"])
def test_repeated_failures_lock_the_username_out_even_with_the_right_password(gp, url: str):
    client = Client()
    for _ in range(LIMIT - 1):
        assert log_in(client, url, gp.username, "wrong").status_code == 200  # the form again

    fifth = log_in(client, url, gp.username, "wrong")
    right = log_in(client, url, gp.username, PASSWORD)

    for locked in (fifth, right):
        assert locked.status_code == 429
        assert locked["Retry-After"] == "900"
        assert "Trop de tentatives de connexion" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    denied = logins("denied")
    assert len(denied) == LIMIT + 1
    assert {e.detail["username"] for e in denied} == {gp.username}
    assert [e.detail["locked_out"] for e in denied][-2:] == [True, True]
    assert {e.entry_point for e in denied} == {"admin" if "admin" in url else "web"}
    assert logins("success") == []


def test_the_lockout_ends_after_its_time_and_a_login_is_recorded(gp):
    client = Client()
    for _ in range(LIMIT):
        log_in(client, "/login/", gp.username, "wrong")

    with time_machine.travel(timezone.now() + dt.timedelta(minutes=16)):
        response = log_in(client, "/login/", gp.username, PASSWORD)

    assert response.status_code == 302
    success = logins("success")
    assert [(e.actor_id, e.entry_point, e.detail["username"]) for e in success] == [
        (gp.pk, "web", gp.username)
    ]


def test_another_username_from_the_same_address_is_not_locked_out(gp, db):
    other = make_practitioner("nurse", password=PASSWORD).user
    client = Client()
    for _ in range(LIMIT):
        log_in(client, "/login/", gp.username, "wrong")

    assert log_in(client, "/login/", other.username, PASSWORD).status_code == 302


def token_request(client_id: str, secret: str):
    return Client().post(
        "/o/token/", {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic(client_id, secret),
    )  # fmt: skip


def test_a_platform_client_is_locked_out_of_the_token_endpoint_after_repeated_failures(
    organization,  # noqa: F811
):
    platform = make_platform(organization)
    for _ in range(LIMIT - 1):
        assert token_request(platform.client_id, "wrong").status_code == 401

    fifth = token_request(platform.client_id, "wrong")
    right = token_request(platform.client_id, platform.client_secret)

    for locked in (fifth, right):
        assert locked.status_code == 429
        assert locked["Retry-After"] == "900"
        assert locked.json()["error"] == "invalid_client"
    denied = logins("denied")
    assert len(denied) == LIMIT
    assert {(e.entry_point, e.detail["username"]) for e in denied} == {("rest", platform.client_id)}


def test_an_issued_token_is_a_platform_login_in_the_audit_trail(organization):  # noqa: F811
    platform = make_platform(organization)

    assert token_request(platform.client_id, platform.client_secret).status_code == 200

    [record] = logins("success")
    assert (record.actor_id, record.resource_type, record.resource_id, record.entry_point) == (
        platform.practitioner.user_id, "OAuthClient", platform.client_id, "rest",
    )  # fmt: skip


def test_an_unknown_client_id_costs_a_secret_check_as_a_known_one_does(
    organization,  # noqa: F811
    monkeypatch,
):
    platform = make_platform(organization)
    checks: list[str] = []
    verify = MD5PasswordHasher.verify

    def counted(self, password, encoded):
        checks.append(password)
        return verify(self, password, encoded)

    monkeypatch.setattr(MD5PasswordHasher, "verify", counted)

    known = token_request(platform.client_id, "wrong")
    known_checks = len(checks)
    unknown = token_request("no-such-client-id", "wrong")

    assert known.status_code == unknown.status_code == 401
    assert known.json() == unknown.json()
    assert known_checks > 0
    assert len(checks) - known_checks == known_checks
