"""OAuth2 scopes: which scope each API route needs, and which scopes a platform may get.

Every route under /api/v1/ belongs to a resource family (`scope_family`); reading (GET,
HEAD, OPTIONS) needs `<family>:read`, anything else `<family>:write`. Only OAuth2 access
tokens are checked against scopes: the web session and personal API tokens act with their
user's own access. A route with no family refuses OAuth2 tokens altogether (fail closed: a
new route is not reachable by platforms until it is given a family here).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from oauth2_provider.models import get_access_token_model
from oauth2_provider.scopes import SettingsScopes
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import SAFE_METHODS, IsAuthenticated
from rest_framework.request import Request

from api.selectors import platform_account_for_user

API_PREFIX = "api/v1/"

# The first segment of the route, then (overriding it) the last one.
FAMILY_BY_FIRST_SEGMENT = {
    "pathway-definitions": "pathways",
    "pathways": "pathways",
    "tasks": "tasks",
    "alerts": "tasks",  # the alert inbox: read with the worklists
    "patients": "patients",
    "organizations": "directory",
    "practitioners": "directory",
    "teams": "directory",
    "webhooks": "webhooks",
    "live": "live",
}
FAMILY_BY_LAST_SEGMENT = {
    "observations": "observations",
    "audit-events": "audit",
}


def scope_family(route: str) -> str | None:
    """`api/v1/patients/<int:pk>/observations/` -> "observations"; None for routes that
    OAuth2 clients may not use (personal tokens, anything unknown)."""
    if not route.startswith(API_PREFIX):
        return None
    segments = [s for s in route.removeprefix(API_PREFIX).split("/") if s]
    if not segments:
        return None
    family = FAMILY_BY_FIRST_SEGMENT.get(segments[0])
    if family is None:
        return None
    return FAMILY_BY_LAST_SEGMENT.get(segments[-1], family)


def required_scope(request: Request) -> str | None:
    match = request.resolver_match
    family = scope_family(match.route) if match is not None else None
    if family is None:
        return None
    return f"{family}:{'read' if request.method in SAFE_METHODS else 'write'}"


class MissingScope(PermissionDenied):
    """403 for an OAuth2 token without the scope the route needs (api.problems names it)."""

    def __init__(self, scope: str | None) -> None:
        self.scope = scope
        if scope is None:
            detail = _("this resource is not available to OAuth2 clients")
        else:
            detail = _("this token lacks the scope %(scope)s") % {"scope": scope}
        super().__init__(detail)


class IsAuthenticatedWithScope(IsAuthenticated):
    """IsAuthenticated, and for OAuth2 access tokens the scope of the route."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not super().has_permission(request, view):
            return False
        token = request.auth
        if not isinstance(token, get_access_token_model()):
            return True
        scope = required_scope(request)
        if scope is None or not token.allow_scopes([scope]):
            raise MissingScope(scope)
        return True


class PlatformScopes(SettingsScopes):
    """A platform's application may ask for the scopes on its PlatformAccount and no others;
    when it asks for none it gets all of them. Other applications: the settings' scopes."""

    def get_available_scopes(
        self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any
    ) -> list[str]:
        account = platform_account_for_user(user_id=getattr(application, "user_id", None))
        if account is None:
            return list(super().get_available_scopes(application, request, *args, **kwargs))
        every = set(super().get_all_scopes())
        return [s for s in account.scopes if s in every]

    def get_default_scopes(
        self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any
    ) -> list[str]:
        account = platform_account_for_user(user_id=getattr(application, "user_id", None))
        if account is None:
            return list(super().get_default_scopes(application, request, *args, **kwargs))
        return self.get_available_scopes(application, request)
