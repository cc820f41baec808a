"""Recording reads of patient data from the REST API in the audit trail."""

from __future__ import annotations

from rest_framework.request import Request

from patients.models import AuditEvent
from patients.selectors import break_glass_grant_active
from patients.services import audit_record


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
    user = request.user if request.user.is_authenticated else None
    purpose = AuditEvent.Purpose.CARE_COORDINATION
    grant = None
    if user is not None and patient_id is not None:
        grant = break_glass_grant_active(user=user, patient_id=patient_id)
    if grant is not None:
        # A read while the glass is broken is an emergency access, whatever else it is.
        purpose = AuditEvent.Purpose.EMERGENCY
        detail = {**(detail or {}), "break_glass_grant": grant.pk}
    audit_record(
        actor=user,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        patient_id=patient_id,
        purpose=purpose,
        outcome=outcome,
        entry_point=AuditEvent.EntryPoint.REST,
        client_address=client_address(request),
        detail=detail,
        actor_label=None if user else "anonymous",
    )
