"""OAuth2 serves platforms and nothing else: only the token, revocation and introspection
endpoints exist under /o/, only the client-credentials grant of an active platform's
application gives a token, only such a token (bound to no user) authenticates, and
introspection answers a platform about its own tokens only."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, Grant
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from api.authentication import PlatformOAuth2Authentication
from api.oauth2 import access_token_load
from api.services.platforms import PlatformClient, platform_client_create, platform_client_disable
from directory.models import Organization
from directory.services import care_team_member_add, organization_create
from patients.services import patient_portal_account_create
from tests.coordination.conftest import Scene

SECRET = "synthetic-client-secret-0123456789"


@pytest.fixture
def organization(db: None) -> Organization:
    return organization_create(
        name="Synthetic regional platform", kind=Organization.Kind.PLATFORM, actor=None
    )


def make_platform(organization: Organization, slug: str = "synth") -> PlatformClient:
    return platform_client_create(
        slug=slug, name=f"Synthetic platform {slug}", organization=organization,
        scopes=["patients:read"], actor=None,
    )  # fmt: skip


@pytest.fixture
def platform(scene: Scene, organization: Organization) -> PlatformClient:
    client = make_platform(organization)
    care_team_member_add(
        patient=scene.patient, role="platform", practitioner=client.practitioner, actor=None
    )
    return client


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def token_request(client_id: str, secret: str, **data: str) -> tuple[int, dict[str, object]]:
    body = {"grant_type": "client_credentials", **data}
    response = APIClient().post("/o/token/", body, HTTP_AUTHORIZATION=basic(client_id, secret))
    return response.status_code, response.json()


def token_of(platform: PlatformClient) -> str:
    status, body = token_request(platform.client_id, platform.client_secret)
    assert status == 200, body
    return str(body["access_token"])


def bearer(token: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api


def stored_token(application: Application, user, raw: str) -> AccessToken:
    """A token row as a flow other than client credentials would have stored it."""
    token = AccessToken.objects.create(
        application=application, user=user, token=raw, scope="patients:read",
        expires=timezone.now() + dt.timedelta(hours=1),
    )  # fmt: skip
    assert access_token_load(raw) is not None  # found: refused for what it is, not missing
    return token


def application_of(user, grant_type: str = Application.GRANT_AUTHORIZATION_CODE) -> Application:
    return Application.objects.create(
        name="synthetic application", user=user, client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=grant_type, client_secret=SECRET,
        redirect_uris="https://attacker.example/callback",
    )  # fmt: skip


# --- only the token, revocation and introspection endpoints -------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/o/authorize/",
        "/o/applications/",
        "/o/applications/register/",
        "/o/authorized_tokens/",
        "/o/device-authorization/",
        "/o/device/",
        "/o/userinfo/",
        "/o/register/",
        "/o/.well-known/openid-configuration",
        "/o/.well-known/oauth-authorization-server",
        "/o/.well-known/jwks.json",
    ],
)
def test_no_toolkit_page_but_token_revocation_and_introspection_is_served(scene: Scene, path):
    user = patient_portal_account_create(
        patient=scene.patient, email="patient@example.invalid", actor=None
    )
    client = Client()
    client.force_login(get_user_model().objects.get(pk=user.pk))

    got = client.get(path)
    posted = client.post(
        path,
        {"name": "mine", "client_type": "confidential",
         "authorization_grant_type": "authorization-code",
         "redirect_uris": "https://attacker.example/callback"},
    )  # fmt: skip

    assert (got.status_code, posted.status_code) == (404, 404)
    assert Application.objects.count() == 0


def test_an_authorization_code_is_not_exchanged_for_tokens(scene: Scene):
    # What /o/authorize/ used to hand out: an application registered by a patient, a code
    # the GP approved with PKCE.
    patient_user = patient_portal_account_create(
        patient=scene.patient, email="patient@example.invalid", actor=None
    )
    application = application_of(patient_user)
    verifier = "synthetic-code-verifier-" + "x" * 40
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    )
    Grant.objects.create(
        application=application, user=scene.gp.user, code="synthetic-authorization-code",
        expires=timezone.now() + dt.timedelta(minutes=5),
        redirect_uri="https://attacker.example/callback", scope="patients:read",
        code_challenge=challenge, code_challenge_method="S256",
    )  # fmt: skip

    status, body = token_request(
        application.client_id, SECRET, grant_type="authorization_code",
        code="synthetic-authorization-code", redirect_uri="https://attacker.example/callback",
        code_verifier=verifier,
    )  # fmt: skip

    assert (status, body["error"]) == (400, "unsupported_grant_type")
    assert AccessToken.objects.count() == 0


@pytest.mark.parametrize(
    "grant",
    [
        {"grant_type": "authorization_code", "code": "x", "redirect_uri": "https://a.example/"},
        {"grant_type": "password", "username": "someone", "password": "x"},
        {"grant_type": "refresh_token", "refresh_token": "x"},
        {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": "x"},
        {"grant_type": "urn:ietf:params:oauth:grant-type:device_code"},
        {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "x"},
        {"grant_type": "implicit"},
    ],
)
def test_every_grant_but_client_credentials_is_unsupported(platform: PlatformClient, grant):
    status, body = token_request(platform.client_id, platform.client_secret, **grant)

    assert (status, body["error"]) == (400, "unsupported_grant_type")
    assert AccessToken.objects.count() == 0


def test_a_platform_obtains_a_token_with_client_credentials(platform: PlatformClient):
    status, body = token_request(platform.client_id, platform.client_secret)

    assert status == 200
    assert (body["token_type"], body["scope"]) == ("Bearer", "patients:read")
    assert "refresh_token" not in body


@pytest.mark.parametrize(
    "kind", ["no owner", "a practitioner's", "a patient's", "authorization code", "disabled"]
)
def test_only_an_active_platform_s_client_credentials_application_obtains_a_token(
    scene: Scene, platform: PlatformClient, kind: str
):
    secret = SECRET
    if kind == "no owner":
        application = application_of(None, Application.GRANT_CLIENT_CREDENTIALS)
    elif kind == "a practitioner's":
        application = application_of(scene.gp.user, Application.GRANT_CLIENT_CREDENTIALS)
    elif kind == "a patient's":
        user = patient_portal_account_create(
            patient=scene.patient, email="patient@example.invalid", actor=None
        )
        application = application_of(user, Application.GRANT_CLIENT_CREDENTIALS)
    elif kind == "authorization code":
        # A platform's own account, given an application of another kind.
        application = application_of(platform.account.user, Application.GRANT_AUTHORIZATION_CODE)
    else:
        application = Application.objects.get(client_id=platform.client_id)
        secret = platform.client_secret
        platform_client_disable(account=platform.account, actor=None)

    status, body = token_request(application.client_id, secret)

    assert (status, body["error"]) == (401, "invalid_client")
    assert AccessToken.objects.count() == 0


# --- only a platform's client-credentials token authenticates ---------------------------


def test_a_token_bound_to_a_user_authenticates_nobody(scene: Scene, platform: PlatformClient):
    # What an authorization code would have given: the GP's own token, through the
    # platform's application or through one a patient registered.
    patient_user = patient_portal_account_create(
        patient=scene.patient, email="patient@example.invalid", actor=None
    )
    through_platform = Application.objects.get(client_id=platform.client_id)
    stored_token(through_platform, scene.gp.user, "synthetic-gp-token-1")
    stored_token(application_of(patient_user), scene.gp.user, "synthetic-gp-token-2")

    via_platform = bearer("synthetic-gp-token-1").get("/api/v1/patients/")
    via_patient_app = bearer("synthetic-gp-token-2").get(f"/api/v1/patients/{scene.patient.pk}/")
    platform_itself = bearer(token_of(platform)).get("/api/v1/patients/")

    assert (via_platform.status_code, via_patient_app.status_code) == (401, 401)
    assert via_platform["Content-Type"] == "application/problem+json"
    assert platform_itself.status_code == 200


def test_checking_a_platform_s_token_costs_one_statement(platform: PlatformClient):
    token = token_of(platform)
    request = Request(
        APIRequestFactory().get("/api/v1/patients/", HTTP_AUTHORIZATION=f"Bearer {token}")
    )

    with CaptureQueriesContext(connection) as queries:
        result = PlatformOAuth2Authentication().authenticate(request)

    assert result is not None
    assert result[0].pk == platform.account.user_id
    assert len(queries) == 1


def test_a_token_of_an_application_that_is_no_platform_authenticates_nobody(scene: Scene):
    application = application_of(scene.gp.user, Application.GRANT_CLIENT_CREDENTIALS)
    stored_token(application, None, "synthetic-practitioner-client-token")

    response = bearer("synthetic-practitioner-client-token").get("/api/v1/patients/")

    assert response.status_code == 401


# --- introspection ----------------------------------------------------------------------


def introspect(token: str, authorization: str | None) -> tuple[int, dict[str, object]]:
    extra: dict[str, Any] = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = APIClient().post("/o/introspect/", {"token": token}, **extra)
    return response.status_code, response.json()


def test_a_platform_learns_about_its_own_token(platform: PlatformClient):
    token = token_of(platform)
    stored = AccessToken.objects.get()

    status, body = introspect(token, basic(platform.client_id, platform.client_secret))

    assert status == 200
    assert body == {
        "active": True,
        "scope": "patients:read",
        "client_id": platform.client_id,
        "token_type": "Bearer",
        "exp": int(stored.expires.timestamp()),
        "iat": int(stored.created.timestamp()),
    }


def test_a_platform_learns_nothing_about_another_platform_s_token(
    platform: PlatformClient, organization: Organization
):
    other = make_platform(organization, slug="other")
    theirs = token_of(other)

    status, body = introspect(theirs, basic(platform.client_id, platform.client_secret))

    assert (status, body) == (200, {"active": False})


@pytest.mark.parametrize("raw", ["no-such-token", "synthetic-gp-token"])
def test_an_unknown_or_user_bound_token_is_inactive(scene: Scene, platform: PlatformClient, raw):
    stored_token(
        Application.objects.get(client_id=platform.client_id), scene.gp.user, "synthetic-gp-token"
    )

    status, body = introspect(raw, basic(platform.client_id, platform.client_secret))

    assert (status, body) == (200, {"active": False})


def test_introspection_needs_a_platform_client(scene: Scene, platform: PlatformClient):
    token = token_of(platform)
    practitioner_app = application_of(scene.gp.user, Application.GRANT_CLIENT_CREDENTIALS)

    anonymous = introspect(token, None)
    wrong_secret = introspect(token, basic(platform.client_id, "not-the-secret"))
    not_a_platform = introspect(token, basic(practitioner_app.client_id, SECRET))
    with_its_own_bearer = introspect(token, f"Bearer {token}")

    for status, body in (anonymous, wrong_secret, not_a_platform, with_its_own_bearer):
        assert (status, body) == (401, {"error": "invalid_client"})


def test_introspection_takes_no_token_in_the_query_string(platform: PlatformClient):
    token = token_of(platform)

    response = APIClient().get(
        f"/o/introspect/?token={token}",
        HTTP_AUTHORIZATION=basic(platform.client_id, platform.client_secret),
    )

    assert response.status_code == 405


# --- revocation -------------------------------------------------------------------------


def test_a_platform_revokes_its_own_token_only(
    scene: Scene, platform: PlatformClient, organization: Organization
):
    other = make_platform(organization, slug="other")
    mine, theirs = token_of(platform), token_of(other)
    auth = basic(platform.client_id, platform.client_secret)

    revoked_theirs = APIClient().post(
        "/o/revoke_token/", {"token": theirs}, HTTP_AUTHORIZATION=auth
    )
    revoked_mine = APIClient().post("/o/revoke_token/", {"token": mine}, HTTP_AUTHORIZATION=auth)

    assert (revoked_theirs.status_code, revoked_mine.status_code) == (200, 200)
    assert bearer(mine).get("/api/v1/patients/").status_code == 401
    assert access_token_load(theirs) is not None


def test_revocation_needs_a_platform_client(scene: Scene, platform: PlatformClient):
    token = token_of(platform)
    practitioner_app = application_of(scene.gp.user, Application.GRANT_CLIENT_CREDENTIALS)

    response = APIClient().post(
        "/o/revoke_token/", {"token": token},
        HTTP_AUTHORIZATION=basic(practitioner_app.client_id, SECRET),
    )  # fmt: skip

    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
    assert access_token_load(token) is not None
