from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from coordination.selectors.triage import monitors_patients
from directory.selectors import portal_patient, practitioner_of
from web import monitoring_notes
from web.access import library_reader_required, works_with_pathways
from web.health import run_checks
from workflows.definition import localized
from workflows.diagrams import render_definition_svg
from workflows.errors import NotFound
from workflows.selectors import (
    compiled_definition,
    definition_document,
    definition_get,
    definition_list,
)


@never_cache
@require_GET
def health(request: HttpRequest) -> HttpResponse:
    results = run_checks()
    ok = all(result.ok for result in results)
    body = {
        "status": "ok" if ok else "unavailable",
        "checks": {
            r.name: {"ok": r.ok, "detail": r.detail, "ms": round(r.millis, 1)} for r in results
        },
    }
    return JsonResponse(body, status=200 if ok else 503)


@library_reader_required
@require_GET
def pathway_library(request: HttpRequest) -> HttpResponse:
    language = get_language() or "fr"
    rows = [
        {
            "definition": definition,
            "title": localized(definition_document(definition).get("title"), language)
            or definition.title,
            "references": monitoring_notes.references(compiled_definition(definition), language),
            "warnings": monitoring_notes.warnings(definition_document(definition)),
        }
        for definition in definition_list()
    ]
    context = {"rows": rows, "may_upload": works_with_pathways(request)}
    return render(request, "web/pathway_library.html", context)


@library_reader_required
@require_GET
def pathway_detail(request: HttpRequest, key: str, version: int) -> HttpResponse:
    try:
        definition = definition_get(key=key, version=version)
    except NotFound:
        raise Http404 from None
    document = definition_document(definition)
    language = get_language() or "fr"
    compiled = compiled_definition(definition)
    context = {
        "definition": definition,
        "references": monitoring_notes.references(compiled, language),
        "warnings": monitoring_notes.warnings(document),
        "suspensions": monitoring_notes.suspensions(compiled, language),
        "title": localized(document["title"], language),
        "description": localized(document.get("description"), language),
        "diagram": render_definition_svg(document, language=language),
        "versions": definition_list(key=key),
        "may_manage": works_with_pathways(request)
        and request.user.has_perm("workflows.add_pathwaydefinition"),
    }
    return render(request, "web/pathway_detail.html", context)


@library_reader_required
@require_GET
def pathway_diagram(request: HttpRequest, key: str, version: int) -> HttpResponse:
    try:
        definition = definition_get(key=key, version=version)
    except NotFound:
        raise Http404 from None
    svg = render_definition_svg(definition_document(definition), language=get_language() or "fr")
    return HttpResponse(svg, content_type="image/svg+xml")


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Where a user lands: for the care team, the triage board when remote monitoring calls
    on them (coordination.selectors.triage.monitors_patients), else the worklist; the portal
    for a patient."""
    if practitioner_of(request.user) is not None:
        return redirect("web:triage" if monitors_patients(request.user) else "web:worklist")
    if portal_patient(request.user) is not None:
        return redirect("web:portal")
    if request.user.is_authenticated:
        return redirect("web:pathway-library")
    return redirect("web:login")
