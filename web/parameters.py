"""The per-patient parameters of a pathway on the patient page ("Paramètres de surveillance"):
each declared parameter with its value, default, unit and who set it, the history, and for
those allowed a form setting one with a reason (coordination.services.parameters)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from coordination.models import CarePathway
from coordination.selectors import access_care_pathway
from coordination.services.parameters import (
    parameter_set,
    pathway_parameter_history,
    pathway_parameters,
)
from core.errors import DomainError, NotAllowed, NotFound
from patients.models import AuditEvent
from web.access import practitioner_required
from web.audit import audit_read, client_address
from workflows.definition import localized

HISTORY_SHOWN = 20


def parameters_context(
    pathway: CarePathway, user: AbstractBaseUser | AnonymousUser, language: str
) -> dict[str, Any]:
    """What `web/_parameters.html` shows of one pathway the user may see (the patient page
    has checked it and records the read)."""
    shown = pathway_parameters(pathway=pathway, user=user)
    if not shown:
        return {"parameters": [], "parameter_history": []}
    titles = {p.name: localized(p.title, language) or p.name for p in shown}
    units = {p.name: p.unit or "" for p in shown}
    history = [
        {"row": row, "title": titles.get(row.name, row.name), "unit": units.get(row.name, "")}
        for row in pathway_parameter_history(pathway=pathway)[:HISTORY_SHOWN]
    ]
    return {
        "parameters": [{"spec": p, "title": titles[p.name]} for p in shown],
        "parameter_history": history,
        "may_set_parameters": any(p.may_set for p in shown),
    }


@practitioner_required
@require_POST
def parameter_set_view(request: HttpRequest, pathway_id: int) -> HttpResponse:
    """Set one parameter from the patient page's form; back to the patient page with what
    happened. A pathway the user may not see answers 404, recorded under its patient."""
    name = request.POST.get("name", "")
    try:
        pathway = access_care_pathway(user=request.user, pathway_id=pathway_id)
    except NotFound as refused:
        _audit_refusal(request, pathway_id, refused.patient_id, refused.outcome, name)
        raise Http404 from None
    try:
        parameter_set(
            user=request.user,
            care_pathway_id=pathway.pk,
            name=name,
            value=request.POST.get("value", "").replace(",", "."),  # 88,5 as French write it
            reason=request.POST.get("reason", ""),
            entry_point=AuditEvent.EntryPoint.WEB,
            client_address=client_address(request),
        )
    except NotFound as refused:  # access lost meanwhile
        _audit_refusal(request, pathway_id, refused.patient_id, refused.outcome, name)
        raise Http404 from None
    except NotAllowed as error:
        _audit_refusal(request, pathway_id, pathway.patient_id, AuditEvent.Outcome.DENIED, name)
        messages.error(request, _("Not changed: %(reason)s") % {"reason": str(error)})
    except DomainError as error:
        messages.error(request, _("Not changed: %(reason)s") % {"reason": str(error)})
    else:
        messages.success(request, _("Parameter changed."))
    return redirect("web:patient-detail", patient_id=pathway.patient_id)


def _audit_refusal(
    request: HttpRequest, pathway_id: int, patient_id: int | None, outcome: str, name: str
) -> None:
    audit_read(
        request,
        resource_type="PathwayParameter",
        resource_id=pathway_id,
        patient_id=patient_id,
        action=AuditEvent.Action.UPDATE,
        outcome=outcome,
        detail={"name": name[:63]},
    )
