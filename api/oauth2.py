"""django-oauth-toolkit's request validator, with the bearer token read in one written
statement, and its oauthlib server built once per process.

Every request of a platform or an OAuth2 client begins by loading its access token with its
application and user (`OAuth2Validator._load_access_token`: a select_related of three
models). Building that query with the ORM costs about ten times running it, on every
request. Here the same row, with the same related rows, comes from a statement written once
per process (core.sql), which also reads what tells whether the token is a
platform's (the application's owner and its platform account). Everything the toolkit
decides about the token stays its own: expiry and scopes (`is_valid`), the resource
audience, whether the application is still usable. A revoked token is a deleted row: it is
not found.

The toolkit also builds a new oauthlib server for each request it verifies
(`get_oauthlib_core`). The server keeps no state of a request (oauthlib's own
advice is to build it once), so `oauthlib_core` builds it on first use and again only
when the OAUTH2_PROVIDER setting changes.

Parcours is an authorisation server for one kind of client only: the confidential
client-credentials application of an active platform account (coordination.services.
platforms). The server is oauthlib's BackendApplicationServer (the client-credentials grant,
bearer tokens, revocation, introspection: no authorisation endpoint, no other grant), and the
validator treats any other application, however it came to exist, as an unknown client at
every endpoint.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import secrets
from typing import Any
from urllib.parse import unquote_plus

from django.contrib.auth.hashers import check_password, make_password
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest
from oauth2_provider.models import (
    AbstractAccessToken,
    AbstractApplication,
    get_access_token_model,
    get_application_model,
)
from oauth2_provider.oauth2_backends import OAuthLibCore, get_oauthlib_core
from oauth2_provider.oauth2_validators import OAuth2Validator

from api.models import PlatformAccount
from core.sql import (
    attach,
    column,
    from_row,
    kept_cursor,
    related_model,
    select_list,
    table,
)


@functools.cache
def _token_sql() -> str:
    token = get_access_token_model()
    application, user = related_model(token, "application"), related_model(token, "user")
    return (
        f"SELECT {select_list(token, 't')}, {select_list(application, 'a')}, "  # noqa: S608
        f"{select_list(user, 'u')}, {select_list(user, 'o')}, "
        f"{select_list(PlatformAccount, 'p')} FROM {table(token)} t "
        f"LEFT JOIN {table(application)} a "
        f"ON a.{column(application, 'pk')} = t.{column(token, 'application')} "
        f"LEFT JOIN {table(user)} u ON u.{column(user, 'pk')} = t.{column(token, 'user')} "
        f"LEFT JOIN {table(user)} o ON o.{column(user, 'pk')} = a.{column(application, 'user')} "
        f"LEFT JOIN {table(PlatformAccount)} p "
        f"ON p.{column(PlatformAccount, 'user')} = a.{column(application, 'user')} "
        f"WHERE t.{column(token, 'token_checksum')} = %s"
    )


def access_token_load(token: str) -> AbstractAccessToken | None:
    """The access token whose raw value is `token`, with its application and user, or
    None. Looked up by checksum, as the toolkit stores and looks tokens up. The same
    statement reads the application's owner and the owner's platform account, if any, and
    caches them on the application (`application.user.platform_account`): checking that
    the token is a platform's (`platform_of`) then runs no query."""
    checksum = hashlib.sha256(token.encode("utf-8")).hexdigest()
    with kept_cursor() as cursor:
        cursor.execute(_token_sql(), [checksum])
        row = cursor.fetchone()
    if row is None:
        return None
    token_model = get_access_token_model()
    access_token, end = from_row(token_model, row)
    assert access_token is not None
    user_model = related_model(token_model, "user")
    application, end = from_row(related_model(token_model, "application"), row, end)
    user, end = from_row(user_model, row, end)
    owner, end = from_row(user_model, row, end)
    account, _ = from_row(PlatformAccount, row, end)
    attach(access_token, "application", application)
    attach(access_token, "user", user)
    if application is not None:
        attach(application, "user", owner)
    if owner is not None:
        # The reverse one-to-one's cache, as select_related("platform_account") fills it
        # (None: "has no platform account", without a query).
        PlatformAccount._meta.get_field("user").remote_field.set_cached_value(owner, account)
    if account is not None:
        attach(account, "user", owner)
    return access_token


def platform_of(application: AbstractApplication | None) -> PlatformAccount | None:
    """The platform account that owns `application`, when the application is a
    confidential client-credentials one (as platform_client_create makes them) and the
    account's user is active; None for any other application, and for the application of a
    disabled platform. No query for an application read by `access_token_load`."""
    if (
        application is None
        or application.authorization_grant_type != AbstractApplication.GRANT_CLIENT_CREDENTIALS
        or application.client_type != AbstractApplication.CLIENT_CONFIDENTIAL
        or application.user_id is None
    ):
        return None
    owner = application.user
    if owner is None or not owner.is_active:
        return None
    try:
        account: PlatformAccount = owner.platform_account
    except PlatformAccount.DoesNotExist:
        return None
    return account


def claimed_client_id(authorization: str, body_client_id: str | None) -> str:
    """The client id a token request authenticates with, read as the toolkit reads it: from
    the HTTP Basic `authorization` header (form-encoded, RFC 6749 section 2.3.1), else the
    body's client_id; "" when neither says."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return unquote_plus(decoded.partition(":")[0])
    return body_client_id or ""


@functools.cache
def _decoy_secret() -> str:
    """A hashed secret no client has, hashed as client secrets are (the default hasher)."""
    return make_password(secrets.token_urlsafe(32))


class ParcoursOAuth2Validator(OAuth2Validator):
    def _load_access_token(self, token: str) -> Any:
        """The toolkit's private token loader, which its `validate_bearer_token` calls.

        Kept private on purpose: the toolkit has no public hook for how a token is read.
        `validate_bearer_token` (public) would have to be copied whole, and with it the
        decisions the toolkit keeps up to date (introspection fallback, resource audience,
        application usability); a swapped ACCESS_TOKEN_MODEL with its own manager would
        move the token table. So django-oauth-toolkit is pinned to one version in
        requirements.txt, and tests/api/test_platform_oauth.py fails on an upgrade that
        removes this method, changes its parameters or stops calling it for a bearer token
        through the real token endpoint and API."""
        return access_token_load(token)

    def authenticate_client(self, request: Any, *args: Any, **kwargs: Any) -> bool:
        """The toolkit's client authentication (HTTP Basic, or the credentials in the body),
        passed only by platform clients: the token, revocation and introspection endpoints
        answer `invalid_client` to any other application. An unknown client id costs the
        time a secret check takes, as a known one with a wrong secret does: how long the
        answer takes does not tell which client ids exist."""
        if not super().authenticate_client(request, *args, **kwargs):
            claimed = claimed_client_id(
                request.headers.get("Authorization") or "", getattr(request, "client_id", None)
            )
            if claimed and not get_application_model().objects.filter(client_id=claimed).exists():
                check_password("", _decoy_secret())  # as the toolkit checks a known one's
            return False
        return platform_of(request.client) is not None

    def authenticate_client_id(
        self, client_id: str, request: Any, *args: Any, **kwargs: Any
    ) -> bool:
        # No public clients: every client authenticates with its secret.
        return False

    def validate_grant_type(
        self, client_id: str, grant_type: str, client: Any, request: Any, *args: Any, **kwargs: Any
    ) -> bool:
        # The server knows no other grant; this holds even if it were configured otherwise.
        return grant_type == "client_credentials" and bool(
            super().validate_grant_type(client_id, grant_type, client, request, *args, **kwargs)
        )

    def introspect_token(
        self, token: str, token_type_hint: str | None, request: Any, *args: Any, **kwargs: Any
    ) -> dict[str, Any] | None:
        """RFC 7662 for an authenticated platform client, about its own access tokens only:
        a token of another client is answered as an unknown, expired or revoked one is,
        `{"active": false}`, so the endpoint tells nobody anything about tokens not theirs."""
        client = request.client
        access_token = access_token_load(token)
        if (
            client is None
            or access_token is None
            or access_token.application_id != client.pk
            or access_token.user_id is not None
            or not access_token.is_valid()
        ):
            return None
        return {
            "scope": access_token.scope,
            "client_id": client.client_id,
            "token_type": "Bearer",
            "exp": int(access_token.expires.timestamp()),
            "iat": int(access_token.created.timestamp()),
        }


class ParcoursOAuthLibCore(OAuthLibCore):
    """The toolkit's bridge between Django requests and the oauthlib server, with the
    server's introspection endpoint, which the toolkit does not bridge (its own
    introspection view answers any client about any token)."""

    def create_introspection_response(
        self, request: HttpRequest
    ) -> tuple[str, dict[str, str], str, int]:
        uri, http_method, body, headers = self._extract_params(request)
        headers, body, status = self.server.create_introspect_response(
            uri, http_method, body, headers
        )
        return uri, headers, body, status


class _Core:
    built: OAuthLibCore | None = None


def oauthlib_core() -> OAuthLibCore:
    """The toolkit's `get_oauthlib_core()`, built once (per process and OAUTH2_PROVIDER)."""
    core = _Core.built
    if core is None:
        core = _Core.built = get_oauthlib_core()
    return core


@receiver(setting_changed)
def _rebuild_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "OAUTH2_PROVIDER":  # the toolkit reloads its settings on the same signal
        _Core.built = None
