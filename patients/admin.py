"""Read-only admin pages. Nothing is written through the admin: writes go through the
services (their validation, locks and audit records). Patient data is listed with the same
object permissions as everywhere else (a superuser sees only what they were granted), and
every page of it is written to the audit trail (AuditedReadsAdmin): a list records which
patients it showed, one record per patient; opening a record records a read of its
patient; a record the user may not see is answered as missing, and recorded as refused
under the patient it belongs to.

Patients' portal accounts are patient data too (their name and e-mail are the patient's):
the user admin lists them only to those who may see the patient, and records it."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotFound

from core.admin import ReadOnlyAdmin
from core.sql import key_in_range
from patients.models import (
    AuditChainHead,
    AuditEvent,
    BreakGlassGrant,
    Consent,
    Device,
    Observation,
    Patient,
)
from patients.selectors import visible_patient_ids, visible_patients
from patients.services import audit_record
from patients.services.audit_reads import audit_reads_record

# Lookups of the admin's list filters that name one row exactly.
_EXACT = ("exact", "id", "pk")


class AuditedReadsAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Every admin page showing patient data is written to the audit trail (entry point
    `admin`, purpose `audit_purpose`):

    - the list: one `search` record per patient whose rows the page shows, with the ids of
      its rows (patients.services.audit_reads: one INSERT for the page); a list filtered on
      one patient (`?patient=<id>`) that shows none of its rows records the search under
      that patient, refused (`denied`) when the user may not see it;
    - a record's page (change, history, delete confirmation, password): a `read` of its
      patient;
    - a record the user may not see, which the admin answers as missing: a refusal
      (`denied`) recorded under the patient it belongs to;
    - the admin's autocomplete, which would list rows outside these pages, is refused (404).

    `patient_path` is the lookup from the model to its patient ("pk" for Patient itself).
    """

    patient_path = "patient"
    audit_purpose: str = AuditEvent.Purpose.ADMINISTRATION

    def patient_id_of(self, obj: Any) -> int | None:
        """The patient of a row: read off the row's (or its related row's) foreign key,
        without fetching the patient."""
        if self.patient_path == "pk":
            return int(obj.pk)
        *through, last = self.patient_path.split("__")
        value: Any = obj
        for part in through:
            value = getattr(value, part, None)
            if value is None:
                return None
        patient_id = getattr(value, f"{last}_id", None)
        return None if patient_id is None else int(patient_id)

    def patient_ids_of(self, rows: list[Any]) -> list[tuple[int | None, Any]]:
        """(patient id, row id) of each row shown (the list's `list_select_related` holds
        the relations `patient_path` crosses)."""
        return [(self.patient_id_of(row), row.pk) for row in rows]

    def get_search_fields(self, request: HttpRequest) -> Any:
        """None for the admin's autocomplete (which then answers 404): it would list rows of
        this model in a page of another model's, out of this audit; the list's own search
        is kept."""
        match = getattr(request, "resolver_match", None)
        if match is not None and match.url_name == "autocomplete":
            return ()
        return super().get_search_fields(request)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        if response.status_code == 200 and changelist is not None:
            # Iterating the page's queryset fills its cache: the template reads the same rows.
            rows = list(changelist.result_list)
            audit_reads_record(
                actor=_actor(request),
                entry_point=AuditEvent.EntryPoint.ADMIN,
                resource_type=self.model.__name__,
                rows=self.patient_ids_of(rows),
                purpose=self.audit_purpose,
                searched_patient_id=self._searched_patient_id(request),
                client_address=_address(request),
                detail={"query": request.GET.urlencode()[:200]} if request.GET else None,
            )
        return response

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        self._audit_object(request, object_id, response, "change")
        return response

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().history_view(request, object_id, extra_context)
        self._audit_object(request, object_id, response, "history")
        return response

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().delete_view(request, object_id, extra_context)
        self._audit_object(request, object_id, response, "delete")
        return response

    def _audit_object(
        self, request: HttpRequest, object_id: str, response: HttpResponse, page: str
    ) -> None:
        """A read of the patient of the record the page shows; or, when the admin answered
        that it does not exist (a redirect to the index) although it does, a refusal under
        its patient."""
        if request.method not in ("GET", "HEAD"):
            return
        context = getattr(response, "context_data", None) or {}
        obj = context.get("original") or context.get("object")
        if response.status_code == 200 and obj is not None:
            patient_id, outcome = self.patient_id_of(obj), AuditEvent.Outcome.SUCCESS
        elif response.status_code in (302, 404):  # the admin's "does not exist" answers
            patient_id, outcome = self._target_patient_id(object_id), AuditEvent.Outcome.DENIED
        else:
            return
        if patient_id is None:
            return  # not a record of a patient (an account, a record of no patient)
        audit_record(
            actor=_actor(request),
            action=AuditEvent.Action.READ,
            resource_type=self.model.__name__,
            resource_id=str(obj.pk if obj is not None else unquote(object_id))[:64],
            patient_id=patient_id,
            purpose=self.audit_purpose,
            outcome=outcome,
            entry_point=AuditEvent.EntryPoint.ADMIN,
            client_address=_address(request),
            detail={"page": page},
            patient_checked=outcome == AuditEvent.Outcome.SUCCESS,
        )

    def _target_patient_id(self, object_id: str) -> int | None:
        """The patient of the record `object_id`, whoever may see it: for the record of a
        refusal only."""
        try:
            pk = self.model._meta.pk.to_python(unquote(object_id))
            if isinstance(pk, int) and not key_in_range(self.model, pk):
                return None  # no row's (and SQLite refuses it in a query)
            obj = self.model._default_manager.filter(pk=pk).first()
        except (ValidationError, ValueError):
            return None
        return None if obj is None else self.patient_id_of(obj)

    def _searched_patient_id(self, request: HttpRequest) -> int | None:
        """The patient a list filter names exactly (`?patient=5`, `?patient__id__exact=5`,
        `?id=5` on patients), if any."""
        path = ["pk"] if self.patient_path == "pk" else self.patient_path.split("__")
        for key, value in request.GET.items():
            parts = key.split("__")
            while len(parts) > 1 and parts[-1] in _EXACT:
                parts.pop()
            if self.patient_path == "pk" and parts == ["id"]:
                parts = ["pk"]
            if parts == path and isinstance(value, str) and value.isdigit() and len(value) < 19:
                return int(value)
        return None


class PatientDataAdmin(AuditedReadsAdmin, ReadOnlyAdmin):
    """Rows of patients the user may see, each page of them audited."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        visible = visible_patients(request.user).values("pk")
        lookup = "pk__in" if self.patient_path == "pk" else f"{self.patient_path}__in"
        return super().get_queryset(request).filter(**{lookup: visible})


def _actor(request: HttpRequest) -> Any:
    return request.user if request.user.is_authenticated else None


def _address(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


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
class AuditEventAdmin(AuditedReadsAdmin, ReadOnlyAdmin):
    """Strictly read-only: no add, change or delete, whoever asks. Reading it is an audit:
    each page records which patients' records it showed (purpose `audit`)."""

    audit_purpose = AuditEvent.Purpose.AUDIT
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


User = get_user_model()


class PatientAccountsUserAdmin(UserAdmin):  # type: ignore[type-arg]
    """Django's user admin, but a patient's portal account (its name and e-mail are the
    patient's) is listed only to those who may see the patient, and every page showing one
    is audited like the patient's own record."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        visible = visible_patient_ids(request.user)
        return (
            super()
            .get_queryset(request)
            .filter(Q(patient_record__isnull=True) | Q(patient_record__pk__in=visible))
        )


class AuditedUserAdmin(AuditedReadsAdmin, PatientAccountsUserAdmin):
    """The user pages' reading rules; registered with the account actions by
    coordination.admin.AccountAdmin."""

    patient_path = "patient_record"

    def patient_id_of(self, obj: Any) -> int | None:
        return Patient.objects.filter(user_id=obj.pk).values_list("pk", flat=True).first()

    def patient_ids_of(self, rows: list[Any]) -> list[tuple[int | None, Any]]:
        accounts = dict(
            Patient.objects.filter(user_id__in=[row.pk for row in rows]).values_list(
                "user_id", "pk"
            )
        )
        return [(accounts.get(row.pk), row.pk) for row in rows]

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        try:
            response: HttpResponse = super().user_change_password(request, id, form_url)
        except Http404:
            # Django's answer for an account it cannot find (here: one it may not see).
            self._audit_object(request, id, HttpResponseNotFound(), "password")
            raise
        self._audit_object(request, id, response, "password")
        return response
