"""Admin pages of coordination. The dead-letter table is read-only; re-queueing a job goes
through its service (`dead_letter_requeue`)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from coordination.models import DeadLetter
from coordination.services.jobs import dead_letter_requeue


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("task_name", "exception", "attempts", "last_failed_at", "resolved")
    list_filter = ("resolved", "task_name")
    search_fields = ("task_name", "task_id", "exception")
    ordering = ("resolved", "-last_failed_at")
    actions = ["requeue"]
    readonly_fields = [f.name for f in DeadLetter._meta.fields]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

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
