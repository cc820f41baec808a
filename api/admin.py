"""Admin pages for operations staff. Read-only: every change goes through the services, as
admin actions calling them (their validation, locks and audit records), never through the
admin's own forms."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from knox.models import AuthToken
from oauth2_provider.admin import AccessTokenAdmin
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)

from api.models import ApiToken, PlatformAccount
from api.services.platforms import platform_client_disable
from core.admin import ReadOnlyAdmin

# knox registers its default token model, which is swapped out here (its table does not
# exist): personal tokens are managed by their users through the API only.
# The OAuth2 toolkit registers editable pages for its models: here its applications (only
# platforms' exist, made by platform_client_create) and access tokens are read-only, and
# grants, refresh and ID tokens (no flow makes them) are not shown.
for _model in (
    AuthToken,
    get_application_model(),
    get_access_token_model(),
    get_grant_model(),
    get_refresh_token_model(),
    get_id_token_model(),
):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(get_application_model())
class OAuthApplicationAdmin(ReadOnlyAdmin):
    list_display = ("pk", "name", "user", "client_type", "authorization_grant_type")
    list_select_related = ("user",)
    exclude = ("client_secret",)


@admin.register(get_access_token_model())
class OAuthAccessTokenAdmin(AccessTokenAdmin):
    """The toolkit's page (the token masked, a "revoke" action), read-only."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PlatformAccount)
class PlatformAccountAdmin(ReadOnlyAdmin):
    list_display = ("pk", "user", "organization", "scopes", "created_at")
    list_select_related = ("user", "organization")
    actions = ["disable"]

    @admin.action(
        description=_("Disable the selected platforms (tokens revoked at once)"),
        permissions=["disable"],
    )
    def disable(self, request: HttpRequest, queryset: QuerySet[PlatformAccount]) -> None:
        accounts = list(queryset)
        for account in accounts:
            platform_client_disable(account=account, actor=request.user)  # type: ignore[arg-type]
        self.message_user(
            request,
            ngettext("%(n)d platform disabled.", "%(n)d platforms disabled.", len(accounts))
            % {"n": len(accounts)},
            messages.SUCCESS,
        )

    def has_disable_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("api.change_platformaccount"))


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """Who holds which personal tokens, never the tokens (only digests are stored)."""

    list_display = ("token_key", "name", "user", "created", "expiry", "last_used_at")
    list_select_related = ("user",)
    exclude = ("digest",)
