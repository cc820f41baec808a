"""django-oauth-toolkit's request validator, with the bearer token read in one written
statement, and its oauthlib server built once per process.

Every request of a platform or an OAuth2 client begins by loading its access token with its
application and user (`OAuth2Validator._load_access_token`: a select_related of three
models). Building that query with the ORM costs about ten times running it, on every
request. Here the same row, with the same related rows, comes from a statement written once
per process (patients.selectors.rows). Everything the toolkit decides about the token stays
its own: expiry and scopes (`is_valid`), the resource audience, whether the application is
still usable, introspection. A revoked token is a deleted row: it is not found.

The toolkit also builds a new oauthlib server, with every grant type, for each request it
verifies (`get_oauthlib_core`). The server keeps no state of a request (oauthlib's own
advice is to build it once), so `oauthlib_core` builds it on first use and again only
when the OAUTH2_PROVIDER setting changes.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver
from oauth2_provider.models import AbstractAccessToken, get_access_token_model
from oauth2_provider.oauth2_backends import OAuthLibCore, get_oauthlib_core
from oauth2_provider.oauth2_validators import OAuth2Validator

from patients.selectors.rows import (
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
        f"{select_list(user, 'u')} FROM {table(token)} t "
        f"LEFT JOIN {table(application)} a "
        f"ON a.{column(application, 'pk')} = t.{column(token, 'application')} "
        f"LEFT JOIN {table(user)} u ON u.{column(user, 'pk')} = t.{column(token, 'user')} "
        f"WHERE t.{column(token, 'token_checksum')} = %s"
    )


def access_token_load(token: str) -> AbstractAccessToken | None:
    """The access token whose raw value is `token`, with its application and user, or
    None. Looked up by checksum, as the toolkit stores and looks tokens up."""
    checksum = hashlib.sha256(token.encode("utf-8")).hexdigest()
    with kept_cursor() as cursor:
        cursor.execute(_token_sql(), [checksum])
        row = cursor.fetchone()
    if row is None:
        return None
    token_model = get_access_token_model()
    access_token, end = from_row(token_model, row)
    assert access_token is not None
    application, end = from_row(related_model(token_model, "application"), row, end)
    user, _ = from_row(related_model(token_model, "user"), row, end)
    attach(access_token, "application", application)
    attach(access_token, "user", user)
    return access_token


class ParcoursOAuth2Validator(OAuth2Validator):
    def _load_access_token(self, token: str) -> Any:
        return access_token_load(token)


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
