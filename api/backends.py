"""The model permissions a platform's OAuth2 scopes carry (an authentication backend).

A platform's service account acts through OAuth2 client credentials. The scopes given to
its account (PlatformAccount.scopes) are what it may be granted: `patients:write` lets it
register patients, `directory:write` create organisations, practitioners and service teams,
`pathways:write` upload and publish pathway definitions, `webhooks:write` subscribe to
events. Each request still needs its token to carry the route's scope (api.scopes); this
backend answers the model-permission check the view makes after that, so an operator grants
a platform rights by giving it scopes (platform_client_create --scopes), never by editing
Django permissions. Object permissions (who sees which patient) are not concerned: a
platform sees a patient through its care team only.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import BaseBackend

from api.selectors import platform_account_for_user

SCOPE_PERMISSIONS: dict[str, frozenset[str]] = {
    "patients:write": frozenset({"patients.add_patient"}),
    "directory:write": frozenset(
        {
            "directory.add_organization",
            "directory.add_practitioner",
            "directory.add_serviceteam",
            "directory.change_serviceteam",
        }
    ),
    "pathways:write": frozenset({"workflows.add_pathwaydefinition"}),
    "webhooks:write": frozenset({"live.add_webhooksubscription"}),
}

_CACHE = "_platform_scope_perm_cache"


class PlatformScopeBackend(BaseBackend):
    """Grants an active platform service account the permissions its scopes carry (read
    once per user object, as Django's ModelBackend caches its own)."""

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if obj is not None or not user_obj.is_active or user_obj.is_anonymous:
            return set()
        cached: set[str] | None = getattr(user_obj, _CACHE, None)
        if cached is None:
            account = platform_account_for_user(user_id=user_obj.pk)
            scopes = account.scopes if account is not None else []
            cached = {perm for scope in scopes for perm in SCOPE_PERMISSIONS.get(scope, ())}
            setattr(user_obj, _CACHE, cached)
        return cached

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        return perm in self.get_all_permissions(user_obj, obj)
