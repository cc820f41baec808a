"""Recording reads of patient data from the REST API in the audit trail.

- `audit_read`: one read (a patient, a task, a pathway...), or a refusal;
- `audit_rows_read`: a list page, one record per patient whose rows it holds
  (patients.services.audit_reads);
- `refused_patient_id`: the patient a refused request targeted, for the record of the
  refusal (api.problems), never for the answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rest_framework.generics import GenericAPIView
from rest_framework.request import Request

from coordination.selectors import pathway_patient_id, task_patient_id
from core.errors import NotFound
from patients.errors import PatientNotFound
from patients.models import AuditEvent
from patients.selectors.patients import patient_key
from patients.services import audit_read_record
from patients.services.audit_reads import audit_reads_record

API_PREFIX = "api/v1/"


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
        resource_id=str(resource_id)[:64],  # an id from the address may be any length
        patient_id=patient_key(patient_id),
        action=action,
        outcome=outcome,
        client_address=client_address(request),
        detail=detail,
    )


def audit_rows_read(
    request: Request,
    *,
    resource_type: str,
    rows: Iterable[tuple[int | None, int | str]],
    searched_patient_id: int | None = None,
    detail: dict[str, object] | None = None,
) -> None:
    """A list answered: `rows` are the (patient id, row id) of the rows of the page. One
    `search` record per patient read, and one for `searched_patient_id` (`?patient=`) when
    none of its rows were (see audit_reads_record)."""
    audit_reads_record(
        actor=request.user if request.user.is_authenticated else None,
        entry_point=AuditEvent.EntryPoint.REST,
        resource_type=resource_type,
        rows=rows,
        searched_patient_id=searched_patient_id,
        client_address=client_address(request),
        detail=detail,
    )


def page_rows(view: GenericAPIView[Any]) -> list[Any]:
    """The rows of the page a list view has just answered (api.pagination.Cursor)."""
    return list(getattr(view.paginator, "page", None) or [])


def query_detail(request: Request, *names: str) -> dict[str, object]:
    """The query parameters among `names` that the request gave, for a record's detail: a
    known few, each cut to 64 characters, so that no request can make the detail too long
    to be recorded."""
    params = request.query_params
    return {name: params[name][:64] for name in names if name in params}


def patient_id_param(value: object) -> int | None:
    """An id given by a client (a path, a query, a body), if it is one a row may have: a
    positive integer within the range of the keys (a longer one is no row's, and SQLite
    refuses it in a query)."""
    return patient_key(value)


def refused_patient_id(exc: Exception, route: str, kwargs: Mapping[str, object]) -> int | None:
    """The patient a refused request targeted: the one the error names (the patient asked
    for, or the patient of the task or pathway asked for), else the one its route names
    (`patients/<pk>/...`, `<patient_id>`, `tasks/<pk>/...`, `pathways/<pk>/...`). None
    when the request targeted no patient. Read for the audit trail only: the answer to the
    caller is the same 404 whether the patient exists or not."""
    if isinstance(exc, PatientNotFound):
        return patient_id_param(exc.patient_id)
    if isinstance(exc, NotFound) and exc.patient_id is not None:
        return exc.patient_id
    if (patient_id := patient_id_param(kwargs.get("patient_id"))) is not None:
        return patient_id
    family = route.removeprefix(API_PREFIX).split("/", 1)[0]
    pk = patient_id_param(kwargs.get("pk"))
    if pk is None:
        return None
    if family == "patients":
        return pk
    if family == "tasks":
        return task_patient_id(task_id=pk)
    if family == "pathways":
        return pathway_patient_id(pathway_id=pk)
    return None
