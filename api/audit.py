"""Recording reads of patient data from the REST API in the audit trail."""

from __future__ import annotations

from rest_framework.request import Request

from patients.models import AuditEvent
from patients.services import audit_read_record


def client_address(request: Request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def audit_read(
    request: Request,
    *,
    resource_type: str,
    resource_id: str | int = "",
    patient_id: int | None = None,
    action: str = AuditEvent.Action.READ,
    outcome: str = AuditEvent.Outcome.SUCCESS,
    detail: dict[str, object] | None = None,
) -> None:
    audit_read_record(
        actor=request.user if request.user.is_authenticated else None,
        entry_point=AuditEvent.EntryPoint.REST,
        resource_type=resource_type,
        resource_id=resource_id,
        patient_id=patient_id,
        action=action,
        outcome=outcome,
        client_address=client_address(request),
        detail=detail,
    )
