"""The alert inbox: the pending alerts of the patients a practitioner may see, in triage
order, each with its title, the measurement that raised it and its patient's band and score;
a member of the patient's care team acknowledges one from here, and it leaves the inbox.

Reads go through coordination's permission-filtered selectors and are audited; the
acknowledgement is coordination.services.alert_acknowledge (which audits it)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language, gettext
from django.views.decorators.http import require_GET, require_POST

from coordination.models import AlertRecord
from coordination.selectors import alert_observations, care_team_patient_ids, visible_alerts
from coordination.services import alert_acknowledge
from core.errors import DomainError
from core.errors import NotFound as DomainNotFound
from patients.measurements import MEASUREMENTS
from patients.models import AuditEvent
from web.access import practitioner_required
from web.audit import audit_read, audit_rows_read, client_address
from web.care import WORKLIST_LIMIT, risk_display
from workflows.definition import localized
from workflows.definition.compiled import CompiledDefinition
from workflows.selectors import compiled_definition_by_id


def definition_of(alert: AlertRecord) -> CompiledDefinition | None:
    """The compiled definition of the pathway that raised `alert` (None once it has none)."""
    instance = alert.care_pathway.instance
    if instance is None:
        return None
    definition = instance.definition
    return compiled_definition_by_id(definition.pk, definition.checksum)


def alert_title(alert: AlertRecord, definition: CompiledDefinition | None, language: str) -> str:
    """What the inbox calls the alert: the title its pathway gives it (the alert's, for a
    condition; the expected measurement's, for a missing one), else words built from the
    measurement, else its name."""
    if definition is None:
        return alert.name
    state = definition.states.get(alert.state)
    if alert.kind == AlertRecord.Kind.MISSING:
        expects = (*(state.expects if state else ()), *definition.monitoring.expects)
        expectation = next((e for e in expects if e.key == alert.name), None)
        if expectation is None:
            return alert.name
        if expectation.title is not None:
            return localized(expectation.title, language) or alert.name
        known = MEASUREMENTS.get(expectation.code)
        return gettext("Missing measurement: %(what)s") % {
            "what": known.label if known else expectation.code
        }
    alerts = (*(state.alerts if state else ()), *definition.monitoring.alerts)
    spec = next((a for a in alerts if a.name == alert.name), None)
    if spec is None or spec.title is None:
        return alert.name
    return localized(spec.title, language) or alert.name


def alert_rows(alerts: list[AlertRecord], may_act: set[int], language: str) -> list[dict[str, Any]]:
    """The inbox's rows: the alert, its title, its patient's current risk, the measurement
    that raised it (label, value, unit, time) when it came from one, and whether the reader
    may acknowledge it (a member of the patient's care team: `may_act`)."""
    observations = alert_observations(alerts)
    rows = []
    for alert in alerts:
        observation = observations.get(alert.observation_id) if alert.observation_id else None
        measured = None
        if observation is not None:
            known = MEASUREMENTS.get(observation.code)
            measured = {
                "label": known.label if known else observation.code,
                "value": observation.value.normalize(),
                "unit": observation.unit,
                "at": observation.effective_at,
            }
        rows.append(
            {
                "alert": alert,
                "title": alert_title(alert, definition_of(alert), language),
                "risk": risk_display(alert.patient_risk_rank),  # type: ignore[attr-defined]
                "measured": measured,
                "may_acknowledge": alert.patient_id in may_act,
            }
        )
    return rows


@practitioner_required
@require_GET
def alert_inbox(request: HttpRequest) -> HttpResponse:
    alerts = list(visible_alerts(request.user)[:WORKLIST_LIMIT])
    audit_rows_read(
        request, resource_type="AlertRecord", rows=[(a.patient_id, a.pk) for a in alerts]
    )
    may_act = care_team_patient_ids(request.user, {a.patient_id for a in alerts})
    rows = alert_rows(alerts, may_act, get_language() or "fr")
    return render(request, "web/alert_inbox.html", {"rows": rows})


@practitioner_required
@require_POST
def alert_acknowledge_view(request: HttpRequest, alert_id: int) -> HttpResponse:
    try:
        alert_acknowledge(
            user=request.user,
            alert_id=alert_id,
            entry_point=AuditEvent.EntryPoint.WEB,
            client_address=client_address(request),
        )
    except DomainNotFound as refused:
        audit_read(
            request,
            resource_type="AlertRecord",
            resource_id=alert_id,
            patient_id=refused.patient_id,
            action=AuditEvent.Action.UPDATE,
            outcome=refused.outcome,
            detail={"action": "acknowledge"},
        )
        raise Http404 from None
    except DomainError as error:
        messages.error(request, gettext("Not done: %(reason)s") % {"reason": str(error)})
    else:
        messages.success(request, gettext("Alert acknowledged: it has left the inbox."))
    return redirect("web:alert-inbox")
