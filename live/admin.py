"""Admin pages for operations staff. Read-only: every change goes through the services, as
admin actions calling them (their validation, locks and audit records), never through the
admin's own forms."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.admin import ReadOnlyAdmin
from core.errors import Conflict, NotFound
from live.models import WebhookDelivery
from live.services.webhooks import REPLAY_PERMISSION, webhook_delivery_replay
from patients.admin import AuditedReadsAdmin
from patients.selectors import visible_patients


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
