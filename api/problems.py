"""Errors as RFC 9457 problem details (application/problem+json).

Every domain error of the apps below maps to one HTTP status here, and nowhere else:
not found and not yours are the same 404; a refused transition is 409 with its reason.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from api.audit import audit_read, refused_patient_id
from api.scopes import MissingScope
from api.services.idempotency import IdempotencyConflict
from core import errors as core_errors
from patients.errors import ConsentWithdrawn
from patients.models import AuditEvent
from workflows import errors as workflow_errors
from workflows.definition import InvalidDefinition

PROBLEM_TYPE = "https://parcours.invalid/problems/"
CONTENT_TYPE = "application/problem+json"


def problem(status_code: int, title: str, detail: str, kind: str, **extra: Any) -> Response:
    body = {"type": PROBLEM_TYPE + kind, "title": title, "status": status_code, "detail": detail}
    body.update(extra)
    response = Response(body, status=status_code)
    response.content_type = CONTENT_TYPE
    return response


def _field_errors(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """DRF's nested error structure, flattened to [{field: "a.0.b", message}]."""
    out: list[dict[str, str]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors":
                name = prefix or "(body)"
            out.extend(_field_errors(value, name))
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            out.extend({"field": prefix or "(body)", "message": str(item)} for item in detail)
        else:
            for index, item in enumerate(detail):
                out.extend(_field_errors(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        out.append({"field": prefix or "(body)", "message": str(detail)})
    return out


def _audit_refusal(exc: Exception, context: dict[str, Any], outcome: str) -> None:
    """A refused access to patient data is part of the trail too (who tried what), recorded
    under the patient it targeted when there is one (api.audit.refused_patient_id), so that
    it shows in that patient's trail; the answer stays the same 404."""
    request = context.get("request")
    view = context.get("view")
    if request is None or view is None:
        return
    kwargs = context.get("kwargs") or {}
    resource_id = str(kwargs.get("pk") or kwargs.get("patient_id") or "")[:64]
    match = request.resolver_match
    patient_id = refused_patient_id(exc, match.route if match is not None else "", kwargs)
    method_action = {
        "GET": AuditEvent.Action.READ,
        "HEAD": AuditEvent.Action.READ,
        "DELETE": AuditEvent.Action.DELETE,
        "POST": AuditEvent.Action.UPDATE if resource_id else AuditEvent.Action.CREATE,
    }.get(request.method, AuditEvent.Action.UPDATE)
    audit_read(
        request,
        resource_type=type(view).__name__.removesuffix("View")[:64],
        resource_id=resource_id,
        patient_id=patient_id,
        action=method_action,
        outcome=outcome,
        detail={"path": request.path[:200]},
    )


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, core_errors.NotFound) and not isinstance(exc, workflow_errors.NotFound):
        # The trail keeps what the answer hides: the record existed but was not the caller's.
        _audit_refusal(exc, context, exc.outcome)
    elif isinstance(exc, core_errors.NotAllowed):
        _audit_refusal(exc, context, "denied")
    if isinstance(exc, InvalidDefinition):
        return problem(
            400,
            _("Invalid pathway definition"),
            ngettext("%(n)d problem found", "%(n)d problems found", len(exc.problems))
            % {"n": len(exc.problems)},
            "invalid-definition",
            errors=[
                {"field": p.location, "message": p.message, "line": p.line, "column": p.column}
                for p in exc.problems
            ],
        )
    if isinstance(exc, core_errors.InvalidInput):
        return problem(
            400,
            _("Invalid input"),
            str(exc),
            "invalid-input",
            errors=[{"field": p.location, "message": p.message} for p in exc.problems],
        )
    if isinstance(exc, core_errors.NotFound | Http404):
        return problem(404, _("Not found"), _("no such resource"), "not-found")
    if isinstance(exc, workflow_errors.TransitionRefused):
        return problem(
            409, _("Transition refused"), exc.message, "transition-refused", reason=str(exc.reason)
        )
    if isinstance(exc, workflow_errors.DefinitionConflict):
        return problem(409, _("Conflict"), str(exc), "definition-conflict")
    if isinstance(exc, workflow_errors.MigrationRefused):
        return problem(
            409, _("Migration refused"), str(exc), "migration-refused",
            errors=[{"field": "(pathway)", "message": p} for p in exc.problems],
        )  # fmt: skip
    if isinstance(exc, IdempotencyConflict):
        return problem(409, _("Idempotency-Key conflict"), str(exc), "idempotency-conflict")
    if isinstance(exc, ConsentWithdrawn):
        # Its own type: a client learns that retrying will not help until the patient consents.
        return problem(
            409, _("Consent withdrawn"), str(exc), "consent-withdrawn",
            scope=exc.scope, withdrawn_at=exc.since.isoformat() if exc.since else None,
        )  # fmt: skip
    if isinstance(exc, core_errors.Conflict):
        return problem(409, _("Conflict"), str(exc), "conflict")
    if isinstance(exc, core_errors.NotAllowed):
        return problem(403, _("Not allowed"), str(exc), "not-allowed")
    if isinstance(exc, MissingScope):
        # RFC 6750 section 3.1: the client learns which scope to ask for.
        out = problem(
            403, _("Insufficient scope"), str(exc.detail), "insufficient-scope",
            required_scopes=[exc.scope] if exc.scope else [],
        )  # fmt: skip
        challenge = 'Bearer realm="api", error="insufficient_scope"'
        out["WWW-Authenticate"] = challenge + (f', scope="{exc.scope}"' if exc.scope else "")
        return out
    if isinstance(exc, PermissionDenied):
        return problem(403, _("Not allowed"), str(exc) or _("not allowed"), "not-allowed")
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        return problem(
            400, _("Invalid input"), _("the request has invalid fields"), "invalid-input",
            errors=_field_errors(exc.detail),
        )  # fmt: skip
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    kind, title = {
        status.HTTP_400_BAD_REQUEST: ("invalid-input", _("Invalid input")),
        status.HTTP_401_UNAUTHORIZED: ("not-authenticated", _("Not authenticated")),
        status.HTTP_403_FORBIDDEN: ("not-allowed", _("Not allowed")),
        status.HTTP_404_NOT_FOUND: ("not-found", _("Not found")),
        status.HTTP_405_METHOD_NOT_ALLOWED: ("method-not-allowed", _("Method not allowed")),
        status.HTTP_406_NOT_ACCEPTABLE: ("not-acceptable", _("Not acceptable")),
        status.HTTP_412_PRECONDITION_FAILED: ("precondition-failed", _("Precondition failed")),
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: (
            "unsupported-media-type", _("Unsupported media type"),
        ),
        status.HTTP_428_PRECONDITION_REQUIRED: (
            "precondition-required", _("Precondition required"),
        ),
        status.HTTP_429_TOO_MANY_REQUESTS: ("throttled", _("Too many requests")),
    }.get(response.status_code, ("error", response.status_text))  # fmt: skip
    out = problem(response.status_code, title, str(detail), kind)
    for header in ("WWW-Authenticate", "Retry-After", "Allow"):
        if header in response:
            out[header] = response[header]
    return out


def _plain_problem(status_code: int, title: str, detail: str, kind: str) -> HttpResponse:
    """A problem answered outside DRF (Django's error handlers): no renderer to go through."""
    body = {"type": PROBLEM_TYPE + kind, "title": title, "status": status_code, "detail": detail}
    return HttpResponse(json.dumps(body), status=status_code, content_type=CONTENT_TYPE)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """A path under /api/ that no route matches (a negative id, a key the route's converter
    refuses): the same 404 as an object that does not exist."""
    return _plain_problem(404, _("Not found"), _("no such resource"), "not-found")


def server_error(request: HttpRequest) -> HttpResponse:
    """An error nothing handled: logged by Django with its traceback, answered without it."""
    return _plain_problem(
        500, _("Internal server error"),
        _("the server failed to answer this request; the error has been logged"), "server-error",
    )  # fmt: skip


def service_unavailable(request: HttpRequest) -> HttpResponse:
    """A service the request needs (the database, Redis) is down or busy: try again later."""
    return _plain_problem(
        503, _("Service unavailable"),
        _("a service this request needs is unavailable for the moment; nothing was changed, "
          "try again shortly"), "service-unavailable",
    )  # fmt: skip
