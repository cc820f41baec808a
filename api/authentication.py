"""How API callers authenticate, besides the web session.

- Platforms: OAuth2 access tokens from the client-credentials grant. django-oauth-toolkit
  leaves such tokens without a user; here they act as the service account the application
  belongs to (api.services.platforms), and only if that account is an active
  platform account and the application its client-credentials one: any other OAuth2 token,
  and every token bound to a user, is refused (401).
- Scripts: personal API tokens (django-rest-knox, `Authorization: Token pct_...`), acting
  as the user who created them, with exactly that user's access.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import SuspiciousOperation
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from knox.auth import TokenAuthentication
from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from rest_framework import exceptions
from rest_framework.request import Request

from api.models import ApiToken
from api.oauth2 import oauthlib_core, platform_of
from api.services.api_tokens import api_token_touch

# A token used all the time would otherwise write on every request.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


class PlatformOAuth2Authentication(OAuth2Authentication):
    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        result = self._verified(request)
        if result is None:
            return None
        user, token = result
        # Only a platform's client-credentials tokens count: they carry no user of their own
        # and act as the platform's service account. A token bound to a user (what an
        # authorisation-code grant gives) or of any other application authenticates nobody.
        account = platform_of(token.application)
        if user is not None or account is None:
            raise exceptions.AuthenticationFailed(_("this client is not a platform account"))
        return account.user, token

    def _verified(self, request: Request) -> tuple[Any, Any] | None:
        """OAuth2Authentication.authenticate, with the oauthlib server built once."""
        try:
            valid, r = oauthlib_core().verify_request(request, scopes=[])
        except ValueError as error:
            if str(error) == "Invalid hex encoding in query string.":
                raise SuspiciousOperation(error) from error
            raise
        if valid:
            return r.user, r.access_token
        request.oauth2_error = getattr(r, "oauth2_error", {})  # type: ignore[attr-defined]  # read by authenticate_header
        return None


class PersonalTokenAuthentication(TokenAuthentication):
    """knox's check (digest, expiry, active user), plus the token's last use."""

    def authenticate_credentials(self, token: bytes) -> tuple[Any, ApiToken]:
        user, auth_token = super().authenticate_credentials(token)
        now = timezone.now()
        last = auth_token.last_used_at
        if last is None or now - last >= LAST_USED_RESOLUTION:
            api_token_touch(token=auth_token, now=now)
        return user, auth_token
