"""Admin pages for operations staff. Read-only: every change goes through the services, as
admin actions calling them (their validation, locks and audit records), never through the
admin's own forms. Care-team memberships are patient data: listed with the same object
permissions as everywhere else, and every page of them written to the audit trail."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from knox.models import AuthToken

from coordination.errors import Conflict, NotFound
from coordination.models import (
    ApiToken,
    CareTeamMember,
    DeadLetter,
    Organization,
    PlatformAccount,
    Practitioner,
    ServiceTeam,
)
from coordination.services import care_team_member_remove
from coordination.services.jobs import dead_letter_requeue
from coordination.services.platforms import platform_client_disable
from patients.admin import AuditedReadsAdmin
from patients.selectors import visible_patients

# knox registers its default token model, which is swapped out here (its table does not
# exist): personal tokens are managed by their users through the API only.
if admin.site.is_registered(AuthToken):
    admin.site.unregister(AuthToken)


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
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
