"""Admin pages for operations staff. Read-only: every change goes through the services, as
admin actions calling them (their validation, locks and audit records), never through the
admin's own forms. Care-team memberships are patient data: listed with the same object
permissions as everywhere else, and every page of them written to the audit trail.

django.contrib.auth's user pages are replaced here (accounts change through services)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.admin import ReadOnlyAdmin
from core.errors import Conflict, NotFound
from directory.models import CareTeamMember, Organization, Practitioner, ServiceTeam
from directory.services import care_team_member_remove
from directory.services.accounts import account_deactivate, account_password_set, account_reactivate
from patients.admin import AuditedReadsAdmin, AuditedUserAdmin
from patients.selectors import visible_patients

if admin.site.is_registered(get_user_model()):
    admin.site.unregister(get_user_model())


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
        return bool(request.user.has_perm("directory.change_careteammember"))

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
