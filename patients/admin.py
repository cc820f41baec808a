"""Read-only admin pages. Nothing is written through the admin: writes go through the
services (their validation, locks and audit records). Patient data is listed with the same
object permissions as everywhere else (a superuser sees only what they were granted), and
opening a record is written to the audit trail."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse

from patients.models import (
    AuditChainHead,
    AuditEvent,
    BreakGlassGrant,
    Consent,
    Device,
    Observation,
    Patient,
)
from patients.selectors import visible_patients
from patients.services import audit_record


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PatientDataAdmin(ReadOnlyAdmin):
    """Rows of patients the user may see; opening one records a `read` audit event."""

    patient_path = "patient"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        visible = visible_patients(request.user).values("pk")
        lookup = "pk__in" if self.patient_path == "pk" else f"{self.patient_path}__in"
        return super().get_queryset(request).filter(**{lookup: visible})

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        obj: Model | None = self.get_object(request, object_id)
        if obj is not None and response.status_code == 200:
            patient_id = obj.pk if self.patient_path == "pk" else getattr(obj, "patient_id", None)
            audit_record(
                actor=request.user if request.user.is_authenticated else None,
                action=AuditEvent.Action.READ,
                resource_type=type(obj).__name__,
                resource_id=obj.pk,
                patient_id=patient_id,
                purpose=AuditEvent.Purpose.ADMINISTRATION,
                entry_point=AuditEvent.EntryPoint.ADMIN,
                client_address=request.META.get("REMOTE_ADDR") or None,
            )
        return response


@admin.register(Patient)
class PatientAdmin(PatientDataAdmin):
    patient_path = "pk"
    list_display = ("pk", "family_name", "given_names", "birth_date", "identity_status")
    list_filter = ("identity_status",)
    exclude = ("user",)


@admin.register(Consent)
class ConsentAdmin(PatientDataAdmin):
    list_display = ("pk", "patient", "scope", "status", "recorded_at", "withdrawn_at")
    list_filter = ("scope", "status")
    list_select_related = ("patient",)


@admin.register(BreakGlassGrant)
class BreakGlassGrantAdmin(PatientDataAdmin):
    list_display = ("pk", "patient", "user", "reason", "started_at", "expires_at")
    list_select_related = ("patient", "user")
    ordering = ("-started_at",)


@admin.register(Device)
class DeviceAdmin(PatientDataAdmin):
    list_display = ("pk", "patient", "kind", "manufacturer", "model", "serial", "active")
    list_filter = ("kind", "active")
    list_select_related = ("patient",)


@admin.register(Observation)
class ObservationAdmin(PatientDataAdmin):
    list_display = ("pk", "patient", "code", "value", "unit", "effective_at", "source")
    list_filter = ("code", "source")
    list_select_related = ("patient",)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Strictly read-only: no add, change or delete, whoever asks."""

    list_display = (
        "seq",
        "occurred_at",
        "actor_label",
        "action",
        "resource_type",
        "resource_id",
        "patient_id",
        "purpose",
        "outcome",
        "entry_point",
    )
    list_filter = ("action", "outcome", "entry_point", "purpose")
    search_fields = ("actor_label", "resource_id")
    ordering = ("-id",)
    show_full_result_count = False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return {}


@admin.register(AuditChainHead)
class AuditChainHeadAdmin(ReadOnlyAdmin):
    list_display = ("last_seq", "last_hash")
