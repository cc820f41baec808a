"""The pathway library's writing side: uploading a definition (its problems shown next to the
lines they concern), publishing a draft and retiring a version (each after a confirmation
page), and starting a pathway for a patient."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from coordination.errors import PathwayRunning
from coordination.models import CarePathway
from coordination.services import care_pathway_start
from core.errors import DomainError
from patients.errors import PatientNotFound
from patients.models import AuditEvent
from patients.selectors import access_patient
from web import monitoring_notes
from web.access import library_editor_required, practitioner_required
from web.audit import audit_read
from web.documents import pathway_document
from workflows.actors import Actor
from workflows.definition import localized
from workflows.definition.problems import Problem
from workflows.errors import DefinitionConflict, InvalidDefinition, NotFound, WorkflowError
from workflows.models import PathwayDefinition
from workflows.selectors import (
    definition_document,
    definition_get,
    definition_latest_active,
    instance_history,
)
from workflows.services import definition_activate, definition_retire, definition_upload

MAX_SOURCE = 1_000_000
MANAGE_PERMISSION = "workflows.add_pathwaydefinition"


@dataclass
class SourceLine:
    number: int
    text: str
    problems: list[Problem] = field(default_factory=list)


def annotate(source: str, problems: list[Problem]) -> tuple[list[SourceLine], list[Problem]]:
    """The source's lines, each with the problems located on it, and the problems that have no
    line (they concern the document as a whole)."""
    lines = [SourceLine(n, text) for n, text in enumerate(source.splitlines(), start=1)]
    general = []
    for problem in problems:
        if problem.line is not None and 1 <= problem.line <= len(lines):
            lines[problem.line - 1].problems.append(problem)
        else:
            general.append(problem)
    return lines, general


_POSITION = re.compile(r"^line (\d+), column (\d+)$")


def shown(problem: Problem) -> Problem:
    """The problem as the page shows it: a position in the source said in the reader's
    language (the language package writes `line L, column C`, as a location path)."""
    match = _POSITION.match(problem.location)
    if match is None:
        return problem
    where = _("line %(line)s, column %(column)s") % {
        "line": match.group(1),
        "column": match.group(2),
    }
    return dataclasses.replace(problem, location=where)


@library_editor_required
def pathway_upload(request: HttpRequest) -> HttpResponse:
    allowed = request.user.has_perm(MANAGE_PERMISSION)
    context: dict[str, object] = {"allowed": allowed}
    if request.method == "POST":
        if not allowed:
            messages.error(request, _("Uploading pathways needs the permission to manage them."))
            return render(request, "web/pathway_upload.html", context, status=403)
        upload = request.FILES.get("file")
        filename = upload.name if upload is not None else None
        source = (
            upload.read(MAX_SOURCE + 1).decode("utf-8", errors="replace")
            if upload is not None
            else request.POST.get("source", "")
        )
        context["source"] = source
        if len(source) > MAX_SOURCE:
            messages.error(request, _("The document is too large (1 MB at most)."))
            return render(request, "web/pathway_upload.html", context, status=400)
        try:
            result = definition_upload(
                source=source, actor=Actor(id=f"user:{request.user.pk}"), filename=filename
            )
        except InvalidDefinition as error:
            problems = [shown(p) for p in error.problems]
            lines, general = annotate(source, problems)
            context.update({"lines": lines, "general": general, "problems": problems})
            return render(request, "web/pathway_upload.html", context, status=400)
        except (DefinitionConflict, WorkflowError) as error:
            messages.error(request, _("Not uploaded: %(reason)s") % {"reason": str(error)})
            return render(request, "web/pathway_upload.html", context, status=409)
        definition = result.definition
        messages.success(
            request,
            _("%(key)s version %(version)s is stored as a draft.")
            % {"key": definition.key, "version": definition.version},
        )
        for warning in monitoring_notes.warnings(definition_document(definition)):
            messages.warning(request, _("Monitoring warning: %(warning)s") % {"warning": warning})
        return redirect("web:pathway-detail", key=definition.key, version=definition.version)
    return render(request, "web/pathway_upload.html", context)


# What each status change does, the status it applies to, and the service that makes it: the
# same services and permission as the API's publish and retire (api/v1/definitions.py).
STATUS_CHANGES = {
    "publish": (PathwayDefinition.Status.DRAFT, definition_activate),
    "retire": (PathwayDefinition.Status.ACTIVE, definition_retire),
}


@library_editor_required
def pathway_status_change(
    request: HttpRequest, key: str, version: int, change: str
) -> HttpResponse:
    """Publish a draft or retire an active version: a confirmation page (GET) whose form
    (POST, CSRF-protected) makes the change as the logged-in user, with the permission the
    API asks (workflows.add_pathwaydefinition; 403 and nothing changed without it)."""
    applies_to, service = STATUS_CHANGES[change]
    try:
        definition = definition_get(key=key, version=version)
    except NotFound:
        raise Http404 from None
    allowed = request.user.has_perm(MANAGE_PERMISSION)
    context = {
        "definition": definition,
        "title": localized(definition_document(definition).get("title"), get_language() or "fr")
        or definition.title,
        "change": change,
        "allowed": allowed,
        "applies": definition.status == applies_to,
    }
    if not allowed:
        return render(request, "web/pathway_status_change.html", context, status=403)
    if request.method == "POST":
        try:
            service(key=key, version=version, actor=Actor(id=f"user:{request.user.pk}"))
        except DefinitionConflict as error:
            messages.error(request, _("Not changed: %(reason)s") % {"reason": str(error)})
            return render(request, "web/pathway_status_change.html", context, status=409)
        done = (
            _("%(key)s version %(version)s is published: new pathways of this key start on it.")
            if change == "publish"
            else _("%(key)s version %(version)s is retired: no new pathway starts on it.")
        )
        messages.success(request, done % {"key": key, "version": version})
        return redirect("web:pathway-detail", key=key, version=version)
    return render(request, "web/pathway_status_change.html", context)


@dataclass
class RunningPathway:
    """A running care pathway as the start refusal and confirmation pages name it."""

    pathway: CarePathway
    title: str
    version: int
    state: str
    started_at: datetime
    step_since: datetime


def _running_rows(running: list[CarePathway], language: str) -> list[RunningPathway]:
    rows = []
    for pathway in running:
        instance = pathway.instance
        if instance is None:
            continue
        document = pathway_document(instance.definition)
        last = instance_history(instance_id=instance.pk).order_by("-revision").first()
        state = document.get("states", {}).get(instance.state, {})
        rows.append(
            RunningPathway(
                pathway=pathway,
                title=localized(document.get("title"), language) or instance.definition.key,
                version=instance.definition.version,
                state=localized(state.get("title"), language) or instance.state,
                started_at=instance.started_at,
                step_since=last.occurred_at if last is not None else instance.started_at,
            )
        )
    return rows


@practitioner_required
@require_POST
def pathway_start(request: HttpRequest, patient_id: int) -> HttpResponse:
    """Start a pathway from the patient page. The service decides: while the patient follows
    one of the same key it refuses, and this page names the running one with a link to it;
    a definition that allows several asks first (ask_before_concurrent), and the page's
    confirmation posts again with `confirm` set to the key."""
    key = request.POST.get("key", "")
    try:
        patient = access_patient(user=request.user, patient_id=patient_id)
    except PatientNotFound as refused:
        audit_read(
            request,
            resource_type="CarePathway",
            patient_id=patient_id,
            action=AuditEvent.Action.CREATE,
            outcome=refused.outcome,
            detail={"pathway": key[:64]},
        )
        raise Http404 from None
    confirmed = bool(key) and request.POST.get("confirm") == key
    try:
        care_pathway_start(
            patient=patient,
            key=key,
            user=request.user,  # type: ignore[arg-type]  # logged in: practitioner_required
            entry_point=AuditEvent.EntryPoint.WEB,
            ask_before_concurrent=not confirmed,
        )
    except PathwayRunning as running:
        rows = _running_rows(running.running, get_language() or "fr")
        audit_read(
            request,
            resource_type="CarePathway",
            resource_id=",".join(str(row.pathway.pk) for row in rows),
            patient_id=patient.pk,
            detail={"pathway": key[:64], "start": "confirm" if running.confirmable else "refused"},
        )
        definition = definition_latest_active(key=key)
        context = {
            "patient": patient,
            "key": key,
            "title": localized(pathway_document(definition).get("title"), get_language()) or key,
            "version": definition.version,
            "running": rows,
            "confirmable": running.confirmable,
        }
        status = 200 if running.confirmable else 409
        return render(request, "web/pathway_start.html", context, status=status)
    except DomainError as error:
        messages.error(request, _("Not started: %(reason)s") % {"reason": str(error)})
    else:
        messages.success(request, _("The pathway is started."))
    return redirect("web:patient-detail", patient_id=patient.pk)
