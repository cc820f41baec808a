"""Signing in with Pro Santé Connect (PSC): OpenID Connect's authorisation code flow with PKCE
(S256) and a nonce, by mozilla-django-oidc, configured from the PSC_* settings only.

- `psc_login` (URL name `web:psc-login`) sends the browser to the provider with a fresh
  state, nonce and PKCE challenge, kept in the session (mozilla-django-oidc's request view).
- `psc_callback` takes the state back out of the session (once: a replayed or forged state
  finds nothing), exchanges the code with the PKCE verifier, checks the ID token (signature
  against the provider's JWKS, expiry, nonce, issuer, audience), reads the userinfo claims
  (same subject), and hands them to `directory.services.psc`, which names the practitioner by
  RPPS number or refuses. Success logs in as the password form does (new session key, the
  login in the audit trail); the ID token is kept in the session for the logout.
- `LogoutView`: a session that came from PSC ends at the provider too (RP-initiated logout:
  `id_token_hint` and `post_logout_redirect_uri`); a password session as before.

Every refusal is in the audit trail as a failed login (`web.login_audit.login_refused`) with
its reason. django-axes does not count them: the provider authenticates (and locks cards
out), nothing here can be guessed at, and counting would lock a hospital's shared address
out of PSC after a few refused identifiers. A password lockout does not block PSC either.

Everything is off (404) unless `settings.PSC_ENABLED`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jwt
import requests
from django.conf import settings
from django.contrib import auth
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationRequestView

from core.errors import InvalidInput
from directory.services.psc import (
    PscAccountInactive,
    PscIdentifierUnknown,
    practitioner_psc_sign_in,
    psc_identity_from_claims,
)
from web.login_audit import LOGIN_METHOD, login_refused

# The session key of the ID token of a session opened with PSC (sent back at logout).
ID_TOKEN_KEY = "parcours_psc_id_token"  # noqa: S105  # a session key's name
# A login must come back from the provider within this long (seconds) of leaving for it.
STATE_MAX_AGE = 600
DISCOVERY_CACHE_SECONDS = 3600
# Sessions log in through Django's model backend: it loads the user of the session on each
# request and refuses an inactive one, as for a password session.
SESSION_BACKEND = "django.contrib.auth.backends.ModelBackend"


class ProviderUnavailable(Exception):
    """The provider's discovery document could not be read."""


@dataclass(frozen=True)
class Provider:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_endpoint: str
    end_session_endpoint: str  # "" when the provider has none


def _discovery(issuer: str, url: str) -> dict[str, str]:
    """The issuer's endpoints from its discovery document at `url`, cached (shared by the
    processes when the cache is Redis) for DISCOVERY_CACHE_SECONDS."""
    key = f"parcours:psc-discovery:{url}"
    cached = cache.get(key)
    if isinstance(cached, dict):
        return cached
    try:
        response = requests.get(url, timeout=settings.PSC_TIMEOUT_SECONDS)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise ProviderUnavailable(f"discovery document at {url}: {exc}") from exc
    if not isinstance(document, dict) or document.get("issuer", "").rstrip("/") != issuer:
        # OpenID Connect Discovery 1.0, section 4.3: the document names its own issuer.
        raise ProviderUnavailable(f"the discovery document at {url} names another issuer")
    names = ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
             "end_session_endpoint")  # fmt: skip
    endpoints = {name: str(document.get(name) or "") for name in names}
    cache.set(key, endpoints, DISCOVERY_CACHE_SECONDS)
    return endpoints


def provider() -> Provider:
    """The provider's endpoints: those set one by one (PSC_*_ENDPOINT) win over the issuer's
    discovery document (PSC_DISCOVERY_URL), which is read only when one is missing."""
    explicit = Provider(
        issuer=settings.PSC_ISSUER,
        authorization_endpoint=settings.PSC_AUTHORIZATION_ENDPOINT,
        token_endpoint=settings.PSC_TOKEN_ENDPOINT,
        userinfo_endpoint=settings.PSC_USERINFO_ENDPOINT,
        jwks_endpoint=settings.PSC_JWKS_ENDPOINT,
        end_session_endpoint=settings.PSC_END_SESSION_ENDPOINT,
    )
    required = (explicit.authorization_endpoint, explicit.token_endpoint,
                explicit.userinfo_endpoint, explicit.jwks_endpoint)  # fmt: skip
    if all(required) or not explicit.issuer:
        return explicit
    url = settings.PSC_DISCOVERY_URL or f"{explicit.issuer}/.well-known/openid-configuration"
    found = _discovery(explicit.issuer, url)
    return Provider(
        issuer=explicit.issuer,
        authorization_endpoint=explicit.authorization_endpoint or found["authorization_endpoint"],
        token_endpoint=explicit.token_endpoint or found["token_endpoint"],
        userinfo_endpoint=explicit.userinfo_endpoint or found["userinfo_endpoint"],
        jwks_endpoint=explicit.jwks_endpoint or found["jwks_uri"],
        end_session_endpoint=explicit.end_session_endpoint or found["end_session_endpoint"],
    )


def oidc_setting(name: str, *default: Any) -> Any:
    """mozilla-django-oidc's settings, answered from the PSC_* ones (the library's own
    names are not settings of this project)."""
    values: dict[str, Any] = {
        "OIDC_RP_CLIENT_ID": settings.PSC_CLIENT_ID,
        "OIDC_RP_CLIENT_SECRET": settings.PSC_CLIENT_SECRET,
        "OIDC_RP_SCOPES": settings.PSC_SCOPES,
        "OIDC_RP_SIGN_ALGO": settings.PSC_SIGN_ALGORITHM,
        "OIDC_OP_AUTHORIZATION_ENDPOINT": settings.PSC_AUTHORIZATION_ENDPOINT,
        "OIDC_USE_PKCE": True,
        "OIDC_PKCE_CODE_CHALLENGE_METHOD": "S256",
        "OIDC_USE_NONCE": True,
        "OIDC_ALLOW_UNSECURED_JWT": False,
        "OIDC_VERIFY_SSL": True,
        "OIDC_TIMEOUT": settings.PSC_TIMEOUT_SECONDS,
        "OIDC_TOKEN_USE_BASIC_AUTH": (
            settings.PSC_TOKEN_AUTH_METHOD == "client_secret_basic"  # noqa: S105  # a method
        ),
        "OIDC_AUTHENTICATION_CALLBACK_URL": "web:psc-callback",
    }
    if name in values:
        return values[name]
    if default:
        return default[0]
    raise ImproperlyConfigured(f"mozilla-django-oidc asked for {name}, which web.psc does not set")


def login_options(request: HttpRequest) -> dict[str, bool]:
    """Template context: whether the login page offers Pro Santé Connect."""
    return {"psc_enabled": bool(settings.PSC_ENABLED)}


@method_decorator(never_cache, name="dispatch")
class PscLoginView(OIDCAuthenticationRequestView):
    """To the provider, with state, nonce and PKCE challenge (S256) kept in the session, and
    the page to come back to (`next`, same site only)."""

    get_settings = staticmethod(oidc_setting)

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.PSC_ENABLED:
            raise Http404
        try:
            self.OIDC_OP_AUTH_ENDPOINT = provider().authorization_endpoint
        except ProviderUnavailable:
            return _failure(request, reason="provider_unreachable", status=502)
        response: HttpResponse = super().get(request)
        return response

    def get_extra_params(self, request: HttpRequest) -> dict[str, str]:
        acr: str = settings.PSC_ACR_VALUES
        return {"acr_values": acr} if acr else {}


psc_login = PscLoginView.as_view()


class PscClient(OIDCAuthenticationBackend):
    """mozilla-django-oidc's protocol steps (token request, JWKS signature check, nonce,
    userinfo as JSON or as a signed JWT), used as a client only: it is no authentication
    backend of the project, and nothing of it creates or looks up users."""

    get_settings = staticmethod(oidc_setting)

    def __init__(self, endpoints: Provider) -> None:
        # Not the library's __init__: the endpoints come from `provider()`, not the settings.
        self.endpoints = endpoints
        self.OIDC_OP_TOKEN_ENDPOINT = endpoints.token_endpoint
        self.OIDC_OP_USER_ENDPOINT = endpoints.userinfo_endpoint
        self.OIDC_OP_JWKS_ENDPOINT = endpoints.jwks_endpoint
        self.OIDC_RP_CLIENT_ID = settings.PSC_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.PSC_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.PSC_SIGN_ALGORITHM
        self.OIDC_RP_IDP_SIGN_KEY = None

    def retrieve_matching_jwk(self, token: str) -> jwt.PyJWK:
        """The provider's key for the token, by its `kid` (the library's way, PSC's tokens
        carry one); a token without `kid` (optional in RFC 7515) only when the provider
        publishes a single key for its algorithm, so that the choice is not a guess."""
        header = jwt.get_unverified_header(token)
        if "kid" in header:
            key: jwt.PyJWK = super().retrieve_matching_jwk(token)
            return key
        response = requests.get(self.OIDC_OP_JWKS_ENDPOINT, timeout=settings.PSC_TIMEOUT_SECONDS)
        response.raise_for_status()
        keys = [
            k
            for k in response.json().get("keys", [])
            if k.get("use", "sig") == "sig" and k.get("alg", header.get("alg")) == header.get("alg")
        ]
        if len(keys) != 1:
            raise SuspiciousOperation("the token names no key and the provider has several")
        return jwt.PyJWK(keys[0])

    def signed_in(
        self, *, code: str, code_verifier: str | None, nonce: str | None, redirect_uri: str
    ) -> tuple[str, dict[str, Any]]:
        """The ID token and the userinfo claims for an authorisation code. Raises
        SuspiciousOperation (or a PyJWT error) for a token that does not check out, and a
        requests error when the provider cannot be reached or refuses the code."""
        payload = {
            "client_id": self.OIDC_RP_CLIENT_ID,
            "client_secret": self.OIDC_RP_CLIENT_SECRET,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
        }
        if code_verifier is not None:
            payload["code_verifier"] = code_verifier
        tokens = self.get_token(payload)
        id_token, access_token = tokens.get("id_token"), tokens.get("access_token")
        if not isinstance(id_token, str) or not isinstance(access_token, str):
            raise SuspiciousOperation("the token response has no ID token or access token")
        id_claims: dict[str, Any] = self.verify_token(id_token, nonce=nonce)
        self.check_issuer_and_audience(id_claims)
        userinfo = self.get_userinfo(access_token, id_token, id_claims)
        if not isinstance(userinfo, dict) or userinfo.get("sub") != id_claims.get("sub"):
            # OpenID Connect Core 1.0, section 5.3.2: the same subject, or a substituted answer.
            raise SuspiciousOperation("the userinfo subject is not the ID token's")
        return id_token, userinfo

    def check_issuer_and_audience(self, claims: Mapping[str, Any]) -> None:
        # The library checks the signature, expiry and nonce; not who issued the token or for
        # whom (OpenID Connect Core 1.0, section 3.1.3.7).
        issuer = self.endpoints.issuer
        if issuer and str(claims.get("iss", "")).rstrip("/") != issuer:
            raise SuspiciousOperation("the ID token comes from another issuer")
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else list(audience or [])
        if self.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("the ID token is not for this client")
        if len(audiences) > 1 and claims.get("azp") != self.OIDC_RP_CLIENT_ID:
            raise SuspiciousOperation("the ID token was issued to another party")


FAILURES = {
    # reason: (title, message), marked for translation
    "provider_error": (
        gettext_noop("Login with Pro Santé Connect did not complete"),
        gettext_noop(
            "Pro Santé Connect did not confirm your identity (the login was cancelled or "
            "refused). Try again; if it keeps failing, log in with your Parcours username and "
            "password or ask your coordinator."
        ),
    ),
    "invalid_response": (
        gettext_noop("Login with Pro Santé Connect did not complete"),
        gettext_noop(
            "The answer from Pro Santé Connect could not be verified, or the login link has "
            "expired or was already used. Nobody was logged in. Start again from the login page."
        ),
    ),
    "provider_unreachable": (
        gettext_noop("Pro Santé Connect cannot be reached"),
        gettext_noop(
            "Parcours could not reach Pro Santé Connect. Nobody was logged in. Try again in a "
            "moment, or log in with your Parcours username and password."
        ),
    ),
    "unknown_identifier": (
        gettext_noop("Identifier not registered in Parcours"),
        gettext_noop(
            "Pro Santé Connect identified you, but no Parcours account holds your RPPS number, "
            "and Parcours does not create accounts on its own. Ask your organisation's Parcours "
            "coordinator (or administrator) to register your RPPS number on your account, then "
            "log in again."
        ),
    ),
    "inactive_account": (
        gettext_noop("Account deactivated"),
        gettext_noop(
            "Pro Santé Connect identified you, but your Parcours account is deactivated. Ask "
            "your organisation's Parcours coordinator (or administrator) to reactivate it."
        ),
    ),
}


def _failure(
    request: HttpRequest, *, reason: str, status: int = 400, identifier: str = ""
) -> HttpResponse:
    login_refused(request, username=f"psc:{identifier}" if identifier else "psc", reason=reason)
    title, message = FAILURES[reason]
    context = {"title": _(title), "message": _(message), "identifier": identifier}
    return render(request, "web/psc_refused.html", context, status=status)


@never_cache
@require_GET
def psc_callback(request: HttpRequest) -> HttpResponse:
    if not settings.PSC_ENABLED:
        raise Http404
    states = request.session.get("oidc_states")
    state = request.GET.get("state", "")
    # Taken out whatever happens next: a state is good for one answer only.
    entry = states.pop(state, None) if isinstance(states, dict) and state else None
    if entry is not None:
        request.session.modified = True
    if request.GET.get("error"):
        return _failure(request, reason="provider_error")
    code = request.GET.get("code", "")
    if (
        not isinstance(entry, dict)
        or not code
        or time.time() - float(entry.get("added_on", 0)) > STATE_MAX_AGE
    ):
        return _failure(request, reason="invalid_response")
    try:
        client = PscClient(provider())
        id_token, claims = client.signed_in(
            code=code,
            code_verifier=entry.get("code_verifier"),
            nonce=entry.get("nonce"),
            redirect_uri=request.build_absolute_uri(reverse("web:psc-callback")),
        )
    except (ProviderUnavailable, requests.ConnectionError, requests.Timeout):
        return _failure(request, reason="provider_unreachable", status=502)
    except (SuspiciousOperation, jwt.PyJWTError, requests.RequestException, ValueError):
        return _failure(request, reason="invalid_response")
    except (KeyError, TypeError):  # a malformed answer (a key without `kid`, a list for a dict)
        return _failure(request, reason="invalid_response")
    try:
        identity = psc_identity_from_claims(claims)
    except InvalidInput:
        return _failure(request, reason="invalid_response")
    try:
        practitioner = practitioner_psc_sign_in(identity=identity)
    except PscIdentifierUnknown:
        return _failure(
            request, reason="unknown_identifier", status=403, identifier=identity.national_id
        )
    except PscAccountInactive:
        return _failure(
            request, reason="inactive_account", status=403, identifier=identity.national_id
        )
    next_url = request.session.pop("oidc_login_next", None)
    setattr(request, LOGIN_METHOD, "psc")
    # A new session key, the CSRF token rotated, the login audited and its clocks started
    # (web.sessions), as for the password form.
    auth.login(request, practitioner.user, backend=SESSION_BACKEND)
    request.session[ID_TOKEN_KEY] = id_token
    return redirect(next_url or settings.LOGIN_REDIRECT_URL)


class LogoutView(auth_views.LogoutView):
    """Django's logout (POST only); a session opened with Pro Santé Connect then goes on to
    the provider's end-session endpoint, which ends the PSC session and sends the browser
    back to the login page."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        id_token = request.session.get(ID_TOKEN_KEY)
        response: HttpResponse = super().post(request, *args, **kwargs)
        if not id_token or not settings.PSC_ENABLED:
            return response
        try:
            end_session = provider().end_session_endpoint
        except ProviderUnavailable:
            return response
        if not end_session:
            return response
        back = request.build_absolute_uri(resolve_url(settings.LOGOUT_REDIRECT_URL))
        query = urlencode({"id_token_hint": id_token, "post_logout_redirect_uri": back})
        separator = "&" if "?" in end_session else "?"
        return HttpResponseRedirect(f"{end_session}{separator}{query}")
