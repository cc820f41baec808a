"""Admin pages for operations staff. Read-only: every change goes through the services, as
admin actions calling them (their validation, locks and audit records), never through the
admin's own forms."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from coordination.models import DeadLetter
from coordination.services.jobs import dead_letter_requeue
from core.admin import ReadOnlyAdmin


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
