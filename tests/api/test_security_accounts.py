"""Accounts and their credentials: a deactivated account is refused everywhere at once and
its tokens are revoked; a new password ends the other sessions and revokes every token; a
personal token creates tokens only if made for it, none outliving it; and the README's
"personal tokens for scripts" flow works from the real login form."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application
from rest_framework.test import APIClient

from api.models import ApiToken
from directory.models import Practitioner
from directory.services import care_team_member_add
from directory.services.accounts import account_deactivate
from tests.coordination.conftest import Scene, make_practitioner

PASSWORD = "synthetic-Passw0rd-one"
NEW_PASSWORD = "synthetic-Passw0rd-two"


def web_login(user, password: str = PASSWORD) -> Client:
    """Log in through the login form, as a browser does (CSRF checks on)."""
    client = Client(enforce_csrf_checks=True)
    assert client.get("/login/").status_code == 200
    response = client.post(
        "/login/",
        {"username": user.get_username(), "password": password,
         "csrfmiddlewaretoken": client.cookies["csrftoken"].value},
    )  # fmt: skip
    assert response.status_code == 302, response.content
    assert response["Location"] == "/"
    return client


def csrf(client: Client) -> dict[str, str]:
    return {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value}


def post_json(client: Client, path: str, body: dict[str, Any], **extra: Any) -> Any:
    return client.post(path, json.dumps(body), content_type="application/json", **extra)


def with_token(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def session(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def create_token(user, **body: Any) -> dict[str, Any]:
    response = session(user).post(
        "/api/v1/tokens/", {"name": "nightly export", **body}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def oauth_token_of(user, raw: str) -> AccessToken:
    """An OAuth2 access token bound to the user, as an authorization code used to give."""
    application = Application.objects.create(
        name="synthetic", user=user, client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="https://app.example/callback",
    )  # fmt: skip
    return AccessToken.objects.create(
        application=application, user=user, token=raw, scope="patients:read",
        expires=timezone.now() + dt.timedelta(hours=1),
    )  # fmt: skip


@pytest.fixture
def nurse(scene: Scene) -> Practitioner:
    """A nurse of the scene patient's care team, with a password."""
    nurse = make_practitioner("nurse", password=PASSWORD)
    care_team_member_add(patient=scene.patient, role="nurse", practitioner=nurse, actor=None)
    return nurse


# --- personal tokens for scripts, from the web login ------------------------------------


def test_a_script_token_is_created_from_a_web_login_and_then_used(scene: Scene, nurse):
    browser = web_login(nurse.user)

    without_csrf = post_json(browser, "/api/v1/tokens/", {"name": "export"})
    created = post_json(browser, "/api/v1/tokens/", {"name": "export"}, **csrf(browser))
    secret = created.json()["token"]
    used = with_token(secret).get("/api/v1/patients/")

    assert without_csrf.status_code == 403
    assert created.status_code == 201, created.content
    assert secret.startswith("pct_")
    assert used.status_code == 200
    assert [p["id"] for p in used.json()["results"]] == [scene.patient.pk]
    assert ApiToken.objects.get().user_id == nurse.user.pk


# --- tokens creating tokens -------------------------------------------------------------


def test_a_personal_token_creates_no_token_unless_made_for_it(scene: Scene):
    user = scene.nurse.user
    made = create_token(user, lifetime_days=1)

    response = with_token(made["token"]).post(
        "/api/v1/tokens/", {"name": "offspring", "lifetime_days": 366}, format="json"
    )

    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert made["can_create_tokens"] is False
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["nightly export"]


def test_a_token_made_to_create_tokens_creates_none_that_outlives_it(scene: Scene):
    user = scene.nurse.user
    parent = create_token(user, lifetime_days=1, can_create_tokens=True)
    parent_expiry = ApiToken.objects.get(name="nightly export").expiry
    api = with_token(parent["token"])

    too_long = api.post("/api/v1/tokens/", {"name": "year", "lifetime_days": 366}, format="json")
    default = api.post("/api/v1/tokens/", {"name": "default"}, format="json")

    assert parent["can_create_tokens"] is True
    assert too_long.status_code == 400
    assert [e["field"] for e in too_long.json()["errors"]] == ["lifetime"]
    assert not ApiToken.objects.filter(name="year").exists()
    assert default.status_code == 201, default.content
    child = ApiToken.objects.get(name="default")
    assert child.expiry <= parent_expiry
    assert parent_expiry - child.expiry < dt.timedelta(seconds=5)
    assert child.can_create_tokens is False
    assert with_token(default.json()["token"]).get("/api/v1/tasks/").status_code == 200


def test_a_web_session_creates_a_token_for_a_year(scene: Scene):
    created = create_token(scene.nurse.user, lifetime_days=366)

    expiry = ApiToken.objects.get().expiry

    assert created["can_create_tokens"] is False
    assert expiry - timezone.now() > dt.timedelta(days=365)


# --- deactivating an account ------------------------------------------------------------


def test_deactivating_an_account_ends_its_access_everywhere_at_once(
    scene: Scene, nurse, admin_client
):
    browser = web_login(nurse.user)
    secret = create_token(nurse.user)["token"]
    oauth_token_of(nurse.user, "synthetic-nurse-oauth-token")
    assert browser.get("/worklist/").status_code == 200

    response = admin_client.post(
        reverse("admin:auth_user_changelist"),
        {"action": "deactivate", "_selected_action": [nurse.user.pk]},
    )

    page = browser.get("/worklist/")
    api_session = browser.get("/api/v1/tasks/")
    api_token = with_token(secret).get("/api/v1/tasks/")
    oauth = APIClient()
    oauth.credentials(HTTP_AUTHORIZATION="Bearer synthetic-nurse-oauth-token")
    api_oauth = oauth.get("/api/v1/tasks/")
    assert response.status_code == 302
    assert (page.status_code, page["Location"]) == (302, "/login/?next=/worklist/")
    assert (api_session.status_code, api_token.status_code, api_oauth.status_code) == (401,) * 3
    assert not get_user_model().objects.get(pk=nurse.user.pk).is_active
    assert not Practitioner.objects.get(pk=nurse.pk).active
    assert not ApiToken.objects.filter(user=nurse.user).exists()
    assert not AccessToken.objects.filter(user=nurse.user).exists()


def test_the_admin_form_does_not_deactivate_an_account(nurse, admin_client):
    url = reverse("admin:auth_user_change", args=[nurse.user.pk])
    form = {
        "username": nurse.user.username, "first_name": "", "last_name": "", "email": "",
        "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2026-01-01", "initial-date_joined_1": "00:00:00",
    }  # fmt: skip
    secret = create_token(nurse.user)["token"]

    admin_client.post(url, form)  # "is_active" left unticked

    assert get_user_model().objects.get(pk=nurse.user.pk).is_active
    assert with_token(secret).get("/api/v1/tasks/").status_code == 200


def test_a_reactivated_account_signs_in_again_without_its_old_tokens(nurse, admin_client):
    secret = create_token(nurse.user)["token"]
    url = reverse("admin:auth_user_changelist")
    admin_client.post(url, {"action": "deactivate", "_selected_action": [nurse.user.pk]})

    admin_client.post(url, {"action": "reactivate", "_selected_action": [nurse.user.pk]})

    assert web_login(nurse.user).get("/worklist/").status_code == 200
    assert Practitioner.objects.get(pk=nurse.pk).active
    assert with_token(secret).get("/api/v1/tasks/").status_code == 401


def test_the_deactivation_service_revokes_every_credential_and_is_idempotent(nurse):
    create_token(nurse.user)
    oauth_token_of(nurse.user, "synthetic-nurse-oauth-token")

    first = account_deactivate(user_id=nurse.user.pk, actor=None)
    again = account_deactivate(user_id=nurse.user.pk, actor=None)

    assert (first, again) == (True, False)
    assert ApiToken.objects.count() == 0
    assert AccessToken.objects.count() == 0
    assert Application.objects.filter(user=nurse.user).exists()  # the application stays


# --- changing one's password ------------------------------------------------------------


def change_password(client: Client, old: str, new: str) -> Any:
    assert client.get("/password/").status_code == 200
    return client.post(
        "/password/",
        {"old_password": old, "new_password1": new, "new_password2": new,
         "csrfmiddlewaretoken": client.cookies["csrftoken"].value},
    )  # fmt: skip


def test_a_new_password_ends_the_other_sessions_and_revokes_every_token(scene: Scene, nurse):
    laptop, phone = web_login(nurse.user), web_login(nurse.user)
    secret = create_token(nurse.user)["token"]
    oauth_token_of(nurse.user, "synthetic-nurse-oauth-token")

    response = change_password(laptop, PASSWORD, NEW_PASSWORD)

    assert (response.status_code, response["Location"]) == (302, "/")
    assert laptop.get("/worklist/").status_code == 200
    assert phone.get("/worklist/").status_code == 302
    assert phone.get("/api/v1/tasks/").status_code == 401
    assert with_token(secret).get("/api/v1/tasks/").status_code == 401
    assert ApiToken.objects.count() == AccessToken.objects.count() == 0
    assert web_login(nurse.user, NEW_PASSWORD).get("/worklist/").status_code == 200


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [(PASSWORD, "1234", "new_password2"), ("not-the-password", NEW_PASSWORD, "old_password")],
)
def test_a_refused_password_change_changes_nothing(scene: Scene, nurse, old, new, field):
    laptop, phone = web_login(nurse.user), web_login(nurse.user)
    secret = create_token(nurse.user)["token"]

    response = change_password(laptop, old, new)

    assert response.status_code == 200
    assert response.context["form"].errors[field]
    assert phone.get("/worklist/").status_code == 200
    assert with_token(secret).get("/api/v1/tasks/").status_code == 200
    assert get_user_model().objects.get(pk=nurse.user.pk).check_password(PASSWORD)


def test_the_password_page_is_for_signed_in_users(db):
    response = Client().get("/password/")

    assert (response.status_code, response["Location"]) == (302, "/login/?next=/password/")


def test_a_password_set_in_the_admin_revokes_the_account_s_tokens(nurse, admin_client):
    phone = web_login(nurse.user)
    secret = create_token(nurse.user)["token"]

    response = admin_client.post(
        reverse("admin:auth_user_password_change", args=[nurse.user.pk]),
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )

    assert response.status_code == 302
    assert get_user_model().objects.get(pk=nurse.user.pk).check_password(NEW_PASSWORD)
    assert with_token(secret).get("/api/v1/tasks/").status_code == 401
    assert phone.get("/worklist/").status_code == 302
