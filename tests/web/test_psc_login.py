"""Logging in with Pro Santé Connect, against a real OpenID provider started here
(oidc-provider-mock, in a thread, on a free local port) that answers with PSC-shaped claims:
the browser's part is the Django test client (Parcours) and `requests` (the provider's
login form); Parcours talks to the provider over real HTTP."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
import requests
import time_machine
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from django.test import Client, override_settings
from django.utils import timezone

from directory.identifiers import luhn_valid
from directory.models import Practitioner
from directory.services.accounts import account_deactivate
from directory.services.psc import psc_identity_from_claims, vouched_profession
from patients.models import AuditEvent
from tests.coordination.conftest import make_practitioner
from tests.web.test_security_pages import INLINE_HANDLER, INLINE_SCRIPT, INLINE_STYLE
from web import psc
from web.psc import PscClient

oidc_provider_mock = pytest.importorskip("oidc_provider_mock")

ROOT_DIR = Path(__file__).resolve().parents[2]
CLIENT_ID = "parcours-tests"
CLIENT_SECRET = "synthetic-client-secret"  # the test provider accepts any


@dataclass
class Recorder:
    """WSGI middleware in front of the provider: every request it gets, with its form."""

    app: Callable[..., Any]
    seen: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        self.seen.append({
            "path": environ["PATH_INFO"],
            "query": parse_qs(environ.get("QUERY_STRING", "")),
            "form": parse_qs(body.decode("latin-1")),
            "authorization": environ.get("HTTP_AUTHORIZATION", ""),
        })  # fmt: skip
        return self.app(environ, start_response)

    def token_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.seen if r["path"] == "/oauth2/token"]


@dataclass
class Provider:
    url: str
    recorder: Recorder

    def put_user(self, sub: str, claims: dict[str, Any]) -> None:
        response = requests.put(f"{self.url}/users/{sub}", json=claims, timeout=10)
        assert response.status_code == 204, response.text


@pytest.fixture(scope="module")
def provider_server() -> Iterator[Provider]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # plain http on localhost
        with oidc_provider_mock.run_server_in_thread(require_nonce=True) as server:
            recorder = Recorder(server.app)
            server.app = recorder
            yield Provider(f"http://localhost:{server.server_port}", recorder)


@pytest.fixture
def provider(provider_server: Provider, db: None) -> Iterator[Provider]:
    provider_server.recorder.seen.clear()
    # The test provider releases the standard names only under `profile`; PSC releases
    # every claim under scope_all.
    with override_settings(
        PSC_ENABLED=True,
        PSC_CLIENT_ID=CLIENT_ID,
        PSC_CLIENT_SECRET=CLIENT_SECRET,
        PSC_ISSUER=provider_server.url,
        PSC_SCOPES="openid scope_all profile",
    ):
        yield provider_server


def psc_claims(national_id: str, *, profession: str = "60", **extra: Any) -> dict[str, Any]:
    """Userinfo claims shaped as Pro Santé Connect's (synthetic person)."""
    return {
        "SubjectNameID": national_id,
        "preferred_username": national_id,
        "given_name": "Camille",
        "family_name": "Synthetique",
        "SubjectRefPro": {
            "codeCivilite": "",
            "exercices": [
                {
                    "codeProfession": profession,
                    "codeCategorieProfessionnelle": "C",
                    "nomDexercice": "Synthetique",
                    "prenomDexercice": "Camille",
                    "activities": [],
                }
            ],
        },
        **extra,
    }


def unregistered_rpps() -> str:
    base = "9990999999"
    return next(base + d for d in "0123456789" if luhn_valid(base + d))


@dataclass
class Flow:
    client: Client
    authorize: dict[str, str]
    callback: Any = None


def start(client: Client, next_url: str = "") -> tuple[str, dict[str, str]]:
    response = client.get("/psc/login/" + (f"?{urlencode({'next': next_url})}" if next_url else ""))
    assert response.status_code == 302, response.content
    location = response["Location"]
    return location, {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def at_provider(authorize_url: str, sub: str) -> str:
    """The user authenticates at the provider: the callback address it sends them to."""
    response = requests.post(authorize_url, data={"sub": sub}, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return str(response.headers["Location"])


def back_to_parcours(client: Client, callback_url: str) -> Any:
    parts = urlsplit(callback_url)
    assert (parts.netloc, parts.path) == ("testserver", "/psc/callback/")
    return client.get(f"{parts.path}?{parts.query}")


def psc_login(provider: Provider, national_id: str, **claims: Any) -> Flow:
    sub = f"f:synthetic:{national_id}"
    provider.put_user(sub, psc_claims(national_id, **claims))
    client = Client()
    authorize_url, params = start(client)
    flow = Flow(client, params)
    flow.callback = back_to_parcours(client, at_provider(authorize_url, sub))
    return flow


def logins(outcome: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="login", outcome=outcome).order_by("pk"))


def signed_in_user_id(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


def test_a_registered_practitioner_logs_in_and_lands_on_the_worklist(provider: Provider):
    nurse = make_practitioner("nurse")

    flow = psc_login(provider, "8" + nurse.rpps)

    assert flow.callback.status_code == 302
    assert flow.callback["Location"] == "/"
    home = flow.client.get("/")
    assert home["Location"] == "/worklist/"
    assert flow.client.get("/worklist/").status_code == 200
    assert signed_in_user_id(flow.client) == str(nurse.user.pk)
    success = logins("success")
    assert [(e.actor_id, e.entry_point, e.detail) for e in success] == [
        (nurse.user.pk, "web", {"username": nurse.user.username, "method": "psc"})
    ]
    nurse.user.refresh_from_db()
    assert (nurse.user.first_name, nurse.user.last_name) == ("Camille", "Synthetique")


def test_the_login_opens_a_new_session_with_its_time_limits(provider: Provider):
    nurse = make_practitioner("nurse")
    sub = f"f:synthetic:8{nurse.rpps}"
    provider.put_user(sub, psc_claims("8" + nurse.rpps))
    client = Client()
    authorize_url, _ = start(client)
    key_before = client.session.session_key

    back_to_parcours(client, at_provider(authorize_url, sub))

    assert key_before
    assert client.session.session_key != key_before
    assert isinstance(client.session["parcours_login_at"], float)
    assert isinstance(client.session["parcours_active_at"], float)


def test_a_login_that_comes_back_too_late_is_refused(provider: Provider):
    nurse = make_practitioner("nurse")
    sub = f"f:synthetic:8{nurse.rpps}"
    provider.put_user(sub, psc_claims("8" + nurse.rpps))
    client = Client()
    authorize_url, _ = start(client)
    callback = at_provider(authorize_url, sub)

    with time_machine.travel(timezone.now() + dt.timedelta(minutes=11)):
        response = back_to_parcours(client, callback)

    assert response.status_code == 400
    assert signed_in_user_id(client) is None
    assert provider.recorder.token_requests() == []  # the code was not even redeemed


def test_a_password_lockout_does_not_block_the_psc_login(provider: Provider):
    nurse = make_practitioner("nurse", password="synthetic-Passw0rd-one")
    sub = f"f:synthetic:8{nurse.rpps}"
    provider.put_user(sub, psc_claims("8" + nurse.rpps))
    client = Client()
    for _ in range(5):
        client.post("/login/", {"username": nurse.user.username, "password": "wrong"})
    locked = client.post(
        "/login/", {"username": nurse.user.username, "password": "synthetic-Passw0rd-one"}
    )

    authorize_url, _ = start(client)
    response = back_to_parcours(client, at_provider(authorize_url, sub))

    assert locked.status_code == 429
    assert response.status_code == 302
    assert signed_in_user_id(client) == str(nurse.user.pk)


def test_the_login_comes_back_to_the_page_asked_for(provider: Provider):
    nurse = make_practitioner("nurse")
    sub = f"f:synthetic:8{nurse.rpps}"
    provider.put_user(sub, psc_claims("8" + nurse.rpps))
    client = Client()

    authorize_url, _ = start(client, next_url="/alerts/")
    response = back_to_parcours(client, at_provider(authorize_url, sub))

    assert response["Location"] == "/alerts/"


def test_the_authorization_request_carries_pkce_nonce_and_the_psc_parameters(
    provider: Provider,
):
    nurse = make_practitioner("nurse")

    flow = psc_login(provider, "8" + nurse.rpps)

    params = flow.authorize
    assert params["response_type"] == "code"
    assert params["client_id"] == CLIENT_ID
    assert params["scope"] == "openid scope_all profile"
    assert params["acr_values"] == "eidas1"
    assert params["redirect_uri"] == "http://testserver/psc/callback/"
    assert params["code_challenge_method"] == "S256"
    assert len(params["state"]) >= 32
    assert len(params["nonce"]) >= 32
    # The token request proves the challenge: SHA-256 of the verifier, base64url.
    [token_request] = provider.recorder.token_requests()
    verifier = token_request["form"]["code_verifier"][0]
    digest = hashlib.sha256(verifier.encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == params["code_challenge"]
    assert token_request["authorization"].startswith("Basic ")  # client_secret_basic
    assert "client_secret" not in token_request["form"]
    # The ID token kept for the logout carries the nonce sent.
    id_token = flow.client.session["parcours_psc_id_token"]
    assert jwt.decode(id_token, options={"verify_signature": False})["nonce"] == params["nonce"]


def test_an_unknown_identifier_is_refused_with_whom_to_ask_and_nothing_is_created(
    provider: Provider,
):
    national_id = "8" + unregistered_rpps()
    users_before = get_user_model().objects.count()

    flow = psc_login(provider, national_id)

    assert flow.callback.status_code == 403
    page = flow.callback.content.decode()
    assert "Identifiant non enregistré dans Parcours" in page
    assert "coordinateur Parcours de votre organisation" in page
    assert national_id in page
    assert signed_in_user_id(flow.client) is None
    assert get_user_model().objects.count() == users_before
    assert Practitioner.objects.filter(rpps=national_id[1:]).count() == 0
    [denied] = logins("denied")
    assert denied.detail == {
        "username": f"psc:{national_id}",
        "locked_out": False,
        "method": "psc",
        "reason": "unknown_identifier",
    }
    assert logins("success") == []


def test_the_refusal_page_speaks_english_to_an_english_browser(provider: Provider):
    national_id = "8" + unregistered_rpps()
    sub = f"f:synthetic:{national_id}"
    provider.put_user(sub, psc_claims(national_id))
    client = Client(HTTP_ACCEPT_LANGUAGE="en")

    authorize_url, _ = start(client)
    response = back_to_parcours(client, at_provider(authorize_url, sub))

    assert response.status_code == 403
    assert "Identifier not registered in Parcours" in response.content.decode()


def test_an_identifier_without_an_rpps_number_is_refused(provider: Provider):
    make_practitioner("nurse")

    flow = psc_login(provider, "ANS20231122132732")

    assert flow.callback.status_code == 403
    assert signed_in_user_id(flow.client) is None
    assert [e.detail["reason"] for e in logins("denied")] == ["unknown_identifier"]


def test_a_deactivated_account_is_refused(provider: Provider):
    nurse = make_practitioner("nurse")
    account_deactivate(user_id=nurse.user.pk, actor=None)

    flow = psc_login(provider, "8" + nurse.rpps)

    assert flow.callback.status_code == 403
    assert "Compte désactivé" in flow.callback.content.decode()
    assert signed_in_user_id(flow.client) is None
    assert [e.detail["reason"] for e in logins("denied")] == ["inactive_account"]


def test_the_profession_psc_vouches_for_is_recorded(provider: Provider):
    practitioner = make_practitioner("other")

    flow = psc_login(provider, "8" + practitioner.rpps, profession="21")

    assert flow.callback.status_code == 302
    practitioner.refresh_from_db()
    assert (practitioner.profession, practitioner.version) == ("pharmacist", 2)


@pytest.mark.parametrize(
    ("recorded", "codes", "kept"),
    [
        ("gp", ("10",), "gp"),
        ("specialist", ("10",), "specialist"),
        ("other", ("10",), "gp"),
        ("nurse", ("60",), "nurse"),
        ("coordinator", ("60",), "coordinator"),
        ("other", ("99",), "other"),
        ("other", (), "other"),
        ("nurse", ("99", "21"), "pharmacist"),
        ("pharmacist", ("60", "21"), "pharmacist"),
    ],
)
def test_the_recorded_profession_changes_only_when_psc_contradicts_it(recorded, codes, kept):
    assert vouched_profession(recorded, codes) == kept


def test_the_claims_are_read_as_psc_sends_them():
    national_id = "8" + unregistered_rpps()
    claims = psc_claims(national_id, profession="10", given_name="", family_name="")
    claims["SubjectRefPro"]["exercices"].append({"codeProfession": "60"})

    identity = psc_identity_from_claims(claims)

    assert identity.national_id == national_id
    assert identity.rpps == national_id[1:]
    assert (identity.given_name, identity.family_name) == ("Camille", "Synthetique")
    assert identity.profession_codes == ("10", "60")


def test_a_forged_nonce_is_refused(provider: Provider):
    nurse = make_practitioner("nurse")
    sub = f"f:synthetic:8{nurse.rpps}"
    provider.put_user(sub, psc_claims("8" + nurse.rpps))
    client = Client()
    authorize_url, params = start(client)
    # A code obtained for another authorisation request (an injected code): its ID token
    # carries that request's nonce, not the one this session sent.
    forged = authorize_url.replace(params["nonce"], "a-nonce-this-session-never-sent")

    response = back_to_parcours(client, at_provider(forged, sub))

    assert response.status_code == 400
    assert "pas abouti" in response.content.decode()
    assert signed_in_user_id(client) is None
    assert [e.detail["reason"] for e in logins("denied")] == ["invalid_response"]
    assert "parcours_psc_id_token" not in client.session


def test_a_tampered_or_replayed_state_is_refused(provider: Provider):
    nurse = make_practitioner("nurse")
    sub = f"f:synthetic:8{nurse.rpps}"
    provider.put_user(sub, psc_claims("8" + nurse.rpps))
    client = Client()
    authorize_url, params = start(client)
    callback = at_provider(authorize_url, sub)

    tampered = back_to_parcours(client, callback.replace(params["state"], "x" * 32))
    first = back_to_parcours(client, callback)
    client.logout()
    replayed = back_to_parcours(client, callback)

    assert tampered.status_code == 400
    assert first.status_code == 302  # the real state still works, once
    assert replayed.status_code == 400
    assert signed_in_user_id(client) is None
    assert [e.detail["reason"] for e in logins("denied")] == [
        "invalid_response", "invalid_response"
    ]  # fmt: skip


def test_a_login_another_browser_started_is_refused(provider: Provider):
    nurse = make_practitioner("nurse")
    sub = f"f:synthetic:8{nurse.rpps}"
    provider.put_user(sub, psc_claims("8" + nurse.rpps))
    victim, attacker = Client(), Client()
    authorize_url, _ = start(attacker)

    response = back_to_parcours(victim, at_provider(authorize_url, sub))

    assert response.status_code == 400
    assert signed_in_user_id(victim) is None


def test_a_login_cancelled_at_the_provider_is_refused(provider: Provider):
    client = Client()
    authorize_url, _ = start(client)
    denied = requests.post(
        authorize_url, data={"action": "deny"}, allow_redirects=False, timeout=10
    )

    response = back_to_parcours(client, denied.headers["Location"])

    assert response.status_code == 400
    assert [e.detail["reason"] for e in logins("denied")] == ["provider_error"]


def test_logout_of_a_psc_session_ends_it_at_the_provider(provider: Provider):
    nurse = make_practitioner("nurse")
    flow = psc_login(provider, "8" + nurse.rpps)
    id_token = flow.client.session["parcours_psc_id_token"]

    response = flow.client.post("/logout/")

    location = urlsplit(response["Location"])
    assert response.status_code == 302
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        f"{provider.url}/oauth2/end_session"
    )
    assert parse_qs(location.query) == {
        "id_token_hint": [id_token],
        "post_logout_redirect_uri": ["http://testserver/login/"],
    }
    assert requests.get(response["Location"], timeout=10).status_code == 200
    assert signed_in_user_id(flow.client) is None
    assert flow.client.get("/worklist/")["Location"].startswith("/login/")


def test_logout_of_a_password_session_stays_here(provider: Provider):
    nurse = make_practitioner("nurse")
    client = Client()
    client.force_login(nurse.user)

    response = client.post("/logout/")

    assert response["Location"] == "/login/"


def test_endpoints_set_one_by_one_need_no_discovery(provider: Provider):
    nurse = make_practitioner("nurse")
    url = provider.url
    with override_settings(
        PSC_AUTHORIZATION_ENDPOINT=f"{url}/oauth2/authorize",
        PSC_TOKEN_ENDPOINT=f"{url}/oauth2/token",
        PSC_USERINFO_ENDPOINT=f"{url}/userinfo",
        PSC_JWKS_ENDPOINT=f"{url}/jwks",
        PSC_END_SESSION_ENDPOINT=f"{url}/oauth2/end_session",
    ):
        flow = psc_login(provider, "8" + nurse.rpps)

    assert flow.callback.status_code == 302
    assert signed_in_user_id(flow.client) == str(nurse.user.pk)
    assert not [r for r in provider.recorder.seen if "well-known" in r["path"]]


def test_a_code_issued_to_another_client_is_refused(provider: Provider):
    nurse = make_practitioner("nurse")
    sub = f"f:synthetic:8{nurse.rpps}"
    provider.put_user(sub, psc_claims("8" + nurse.rpps))
    client = Client()
    authorize_url, _ = start(client)
    other = authorize_url.replace(f"client_id={CLIENT_ID}", "client_id=another-service")

    response = back_to_parcours(client, at_provider(other, sub))

    assert response.status_code == 400
    assert signed_in_user_id(client) is None


@pytest.mark.parametrize(
    "claims",
    [
        {"iss": "http://elsewhere.test", "aud": CLIENT_ID},
        {"aud": "another-service"},
        {"aud": [CLIENT_ID, "another-service"], "azp": "another-service"},
        {},
    ],
)
def test_an_id_token_from_another_issuer_or_for_another_client_is_refused(
    provider: Provider, claims: dict[str, Any]
):
    client = PscClient(psc.provider())

    with pytest.raises(SuspiciousOperation):
        client.check_issuer_and_audience({"iss": provider.url, **claims})
    client.check_issuer_and_audience({"iss": provider.url, "aud": [CLIENT_ID]})  # fine


def test_an_unreachable_provider_is_said_so(provider: Provider):
    with override_settings(PSC_ISSUER="http://127.0.0.1:9"):
        response = Client().get("/psc/login/")

    assert response.status_code == 502
    assert "Pro Santé Connect" in response.content.decode()


def test_the_login_page_offers_psc_without_inline_code(provider: Provider):
    response = Client().get("/login/?next=/alerts/")

    body = response.content.decode()
    assert 'href="/psc/login/?next=/alerts/"' in body
    assert "Se connecter avec Pro Santé Connect" in body
    assert INLINE_SCRIPT.findall(body) == []
    assert INLINE_STYLE.findall(body) == []
    assert INLINE_HANDLER.findall(body) == []


def test_psc_is_off_unless_configured(db):
    login_page = Client().get("/login/").content.decode()

    assert "Pro Santé Connect" not in login_page
    assert "/psc/" not in login_page
    assert Client().get("/psc/login/").status_code == 404
    assert Client().get("/psc/callback/?code=x&state=y").status_code == 404


def configured(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(
        """
        import django; django.setup()
        from django.conf import settings
        print(settings.PSC_ENABLED)
        """
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PSC_")}
    environment.update(env, DJANGO_SETTINGS_MODULE="config.settings.test")
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT_DIR, env=environment, capture_output=True,
        text=True, check=False,
    )  # fmt: skip


def test_the_environment_turns_psc_on_and_names_what_is_missing():
    on = configured({"PSC_CLIENT_ID": "x", "PSC_CLIENT_SECRET": "y",
                     "PSC_ISSUER": "https://psc.example.test/realm"})  # fmt: skip
    off = configured({})
    incomplete = configured({"PSC_CLIENT_ID": "x", "PSC_CLIENT_SECRET": "y"})

    assert on.stdout.strip() == "True"
    assert off.stdout.strip() == "False"
    assert incomplete.returncode != 0
    assert "set PSC_ISSUER too" in incomplete.stderr
