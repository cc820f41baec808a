"""Admin pages for operations staff. Read-only: every change goes through the services, as
admin actions calling them (their validation, locks and audit records), never through the
admin's own forms. Care-team memberships are patient data: listed with the same object
permissions as everywhere else, and every page of them written to the audit trail."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.db.models import Q, QuerySet
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

from coordination.errors import Conflict, NotFound
from coordination.models import (
    ApiToken,
    CareTeamMember,
    DeadLetter,
    Organization,
    PlatformAccount,
    Practitioner,
    ServiceTeam,
    WebhookDelivery,
)
from coordination.services import care_team_member_remove
from coordination.services.accounts import (
    account_deactivate,
    account_password_set,
    account_reactivate,
)
from coordination.services.jobs import dead_letter_requeue
from coordination.services.platforms import platform_client_disable
from coordination.services.webhooks import REPLAY_PERMISSION, webhook_delivery_replay
from patients.admin import AuditedReadsAdmin, AuditedUserAdmin
from patients.selectors import visible_patients

# knox registers its default token model, which is swapped out here (its table does not
# exist): personal tokens are managed by their users through the API only.
# The OAuth2 toolkit registers editable pages for its models: here its applications (only
# platforms' exist, made by platform_client_create) and access tokens are read-only, and
# grants, refresh and ID tokens (no flow makes them) are not shown.
# django.contrib.auth's user pages are replaced below (accounts change through services).
for _model in (
    AuthToken,
    get_user_model(),
    get_application_model(),
    get_access_token_model(),
    get_grant_model(),
    get_refresh_token_model(),
    get_id_token_model(),
):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AccountPasswordForm(AdminPasswordChangeForm):  # type: ignore[type-arg]
    """The admin's password form, saved by the service: the account's tokens are revoked
    and its sessions end."""

    def save(self, commit: bool = True) -> Any:
        usable = self.cleaned_data["set_usable_password"]
        password = self.cleaned_data["password1"] if usable else None
        self.user = account_password_set(user_id=self.user.pk, password=password, actor=None)
        return self.user


@admin.register(get_user_model())
class AccountAdmin(AuditedUserAdmin):
    """Django's user pages, read as patients.admin.AuditedUserAdmin says (a patient's portal
    account only to those who may see the patient, every page audited), except that an
    account is deactivated or reactivated by the actions (never by the "active" box, which
    would leave its tokens working) and its password is changed through the service."""

    readonly_fields = ("is_active", "last_login", "date_joined")
    change_password_form = AccountPasswordForm
    actions = ["deactivate", "reactivate"]

    def has_manage_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("auth.change_user"))

    @admin.action(
        description=_("Deactivate the selected accounts (sessions and tokens revoked at once)"),
        permissions=["manage"],
    )
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        done = sum(
            account_deactivate(user_id=pk, actor=request.user)  # type: ignore[arg-type]
            for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(
            request,
            ngettext("%(n)d account deactivated.", "%(n)d accounts deactivated.", done)
            % {"n": done},
            messages.SUCCESS,
        )

    @admin.action(description=_("Reactivate the selected accounts"), permissions=["manage"])
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        done = sum(
            account_reactivate(user_id=pk, actor=request.user)  # type: ignore[arg-type]
            for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(
            request,
            ngettext("%(n)d account reactivated.", "%(n)d accounts reactivated.", done)
            % {"n": done},
            messages.SUCCESS,
        )


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


@admin.register(Organization)
class OrganizationAdmin(ReadOnlyAdmin):
    list_display = ("pk", "name", "kind", "finess")
    list_filter = ("kind",)
    search_fields = ("name", "finess")


@admin.register(Practitioner)
class PractitionerAdmin(ReadOnlyAdmin):
    list_display = ("pk", "display_name", "profession", "organization", "active")
    list_filter = ("profession", "active")
    list_select_related = ("user", "organization")
    search_fields = ("user__username", "user__last_name", "rpps")


@admin.register(ServiceTeam)
class ServiceTeamAdmin(ReadOnlyAdmin):
    list_display = ("pk", "name", "organization")
    list_select_related = ("organization",)


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
        return bool(request.user.has_perm("coordination.change_platformaccount"))


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """Who holds which personal tokens, never the tokens (only digests are stored)."""

    list_display = ("token_key", "name", "user", "created", "expiry", "last_used_at")
    list_select_related = ("user",)
    exclude = ("digest",)


@admin.register(CareTeamMember)
class CareTeamMemberAdmin(AuditedReadsAdmin, ReadOnlyAdmin):
    """A patient's care team is patient data: listed with the patient's object permissions,
    and every page of it audited (patients.admin.AuditedReadsAdmin)."""

    patient_path = "care_team__patient"
    list_display = ("pk", "care_team", "practitioner", "service_team", "role", "active", "since")
    list_filter = ("role", "active")
    list_select_related = ("care_team", "practitioner__user", "service_team")
    actions = ["end_membership"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[CareTeamMember]:
        visible = visible_patients(request.user).values("pk")
        return super().get_queryset(request).filter(care_team__patient__in=visible)

    def has_end_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("coordination.change_careteammember"))

    @admin.action(
        description=_("End the selected memberships (access revoked at once)"),
        permissions=["end"],
    )
    def end_membership(self, request: HttpRequest, queryset: QuerySet[CareTeamMember]) -> None:
        ended = 0
        for member in queryset.filter(active=True):
            try:
                care_team_member_remove(member_id=member.pk, actor=request.user)  # type: ignore[arg-type]
            except (Conflict, NotFound) as exc:
                self.message_user(request, str(exc), messages.WARNING)
            else:
                ended += 1
        self.message_user(
            request,
            ngettext("%(n)d membership ended.", "%(n)d memberships ended.", ended) % {"n": ended},
            messages.SUCCESS,
        )


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    list_display = ("task_name", "exception", "attempts", "last_failed_at", "resolved")
    list_filter = ("resolved", "task_name")
    search_fields = ("task_name", "task_id", "exception")
    ordering = ("resolved", "-last_failed_at")
    actions = ["requeue"]
    readonly_fields = [f.name for f in DeadLetter._meta.fields]

    def has_requeue_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("coordination.change_deadletter"))

    @admin.action(description=_("Re-queue the selected jobs"), permissions=["requeue"])
    def requeue(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        sent = sum(
            dead_letter_requeue(dead_letter_id=pk, actor=request.user)
            for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(
            request,
            ngettext("%(count)d job re-queued.", "%(count)d jobs re-queued.", sent)
            % {"count": sent},
            messages.SUCCESS,
        )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(AuditedReadsAdmin, ReadOnlyAdmin):
    """The deliveries to platforms, for operations staff to find the failed ones and replay
    them once the receiver works again. Neither the body nor the patient is shown: staff
    need the outcome, not the data. Still, a delivery about a patient says that a platform
    was told something about them: like every admin page of patient data, deliveries about
    a patient are listed only to those who may see the patient, and every page is audited
    (patients.admin.AuditedReadsAdmin). The subscription's owner replays its own deliveries
    through the API whoever they concern."""

    patient_path = "patient"

    list_display = (
        "pk", "subscription", "event_type", "status", "attempts", "last_status_code",
        "last_attempt_at", "replays",
    )  # fmt: skip
    list_filter = ("status", "event_type")
    list_select_related = ("subscription",)
    search_fields = ("subscription__url", "last_error")
    ordering = ("-created_at",)
    fields = (
        "subscription", "event_id", "position", "event_type", "status", "attempts",
        "next_attempt_at", "last_attempt_at", "last_status_code", "last_error", "created_at",
        "replays", "replayed_at", "replayed_by",
    )  # fmt: skip
    readonly_fields = fields
    actions = ["replay"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookDelivery]:
        visible = visible_patients(request.user).values("pk")
        return (
            super().get_queryset(request).filter(Q(patient__isnull=True) | Q(patient__in=visible))
        )

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(REPLAY_PERMISSION))

    @admin.action(description=_("Replay the selected failed deliveries"), permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        replayed = 0
        for pk in queryset.values_list("pk", flat=True):
            try:
                webhook_delivery_replay(delivery_id=pk, actor=request.user)  # type: ignore[arg-type]
            except (Conflict, NotFound) as exc:
                self.message_user(request, str(exc), messages.WARNING)
            else:
                replayed += 1
        self.message_user(
            request,
            ngettext("%(count)d delivery replayed.", "%(count)d deliveries replayed.", replayed)
            % {"count": replayed},
            messages.SUCCESS,
        )
