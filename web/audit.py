"""Recording reads of patient data from the web UI and the portal in the audit trail: the
same records as the REST API's (api/audit.py), with the `web` entry point."""

from __future__ import annotations

from collections.abc import Iterable

from django.http import HttpRequest

from patients.models import AuditEvent
from patients.selectors.patients import patient_key
from patients.services import audit_read_record
from patients.services.audit_reads import audit_reads_record


def client_address(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def audit_read(
    request: HttpRequest,
    *,
    resource_type: str,
    resource_id: str | int = "",
    patient_id: int | None = None,
    action: str = AuditEvent.Action.READ,
    outcome: str = AuditEvent.Outcome.SUCCESS,
    detail: dict[str, object] | None = None,
) -> None:
    """One read, or a refused access: a refusal names the patient it targeted (a patient
    that does not exist is kept in the detail, see audit_record; an id no patient row can
    have names none), the answer to the user being the same 404 either way."""
    audit_read_record(
        actor=request.user if request.user.is_authenticated else None,
        entry_point=AuditEvent.EntryPoint.WEB,
        resource_type=resource_type,
        resource_id=str(resource_id)[:64],  # an id from the address may be any length
        patient_id=patient_key(patient_id),
        action=action,
        outcome=outcome,
        client_address=client_address(request),
        detail=detail,
    )


def audit_rows_read(
    request: HttpRequest,
    *,
    resource_type: str,
    rows: Iterable[tuple[int | None, int | str]],
    detail: dict[str, object] | None = None,
) -> None:
    """A page listing rows of several patients (the worklist, the alert inbox): one
    `search` record per patient whose rows it shows (patients.services.audit_reads)."""
    audit_reads_record(
        actor=request.user if request.user.is_authenticated else None,
        entry_point=AuditEvent.EntryPoint.WEB,
        resource_type=resource_type,
        rows=rows,
        client_address=client_address(request),
        detail=detail,
    )
