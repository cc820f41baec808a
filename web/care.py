"""The care team's pages: worklists, a task, a patient (the alert inbox: web.alerts).

Every read of patient data goes through the permission-filtered selectors and is audited
(entry point `web`); what the user may not see answers 404. Actions post to the services;
their domain errors become messages on the page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import get_language, gettext, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from coordination import task_states
from coordination.models import Task, risk_of_rank
from coordination.readings import patient_thresholds
from coordination.selectors import (
    access_task,
    pathway_monitoring,
    patient_alerts,
    patient_risk_rank,
    task_overdue,
    task_pathway_step,
    tasks_for_patient,
    visible_care_pathways,
    with_overdue,
    worklist_mine,
    worklist_unclaimed,
)
from coordination.services import TaskActionInput, task_act, task_actions_open
from core.errors import DomainError
from core.errors import NotFound as TaskNotFound
from directory.selectors import care_team_members
from patients.errors import NotAllowed as PatientsNotAllowed
from patients.errors import PatientNotFound, PatientsError
from patients.models import AuditEvent, Patient
from patients.selectors import (
    access_patient,
    break_glass_grant_active,
    consent_list,
    may_break_glass,
)
from patients.selectors.patients import patient_exists
from patients.services import patient_break_glass
from web import monitoring_notes
from web.access import practitioner_required
from web.audit import audit_read, audit_rows_read, client_address
from web.charts import CHART_DAYS, chart_data, chart_texts, measurement_series
from web.documents import pathway_diagram, pathway_document, pathway_where_next
from web.parameters import parameters_context
from web.titles import actor_names, care_role_title, member_rows, timeline
from workflows.definition import localized
from workflows.definition.compiled import CompiledDefinition
from workflows.definition.titles import alert_title
from workflows.selectors import definition_list, instance_definition, instance_history

WORKLIST_LIMIT = 50  # rows shown per list: the most pressing first
WORKLIST_FETCH = 1000  # rows read per list, to find the overdue ones among them
ACTIONS = ("claim", "start", "complete", "hold", "resume", "release", "reassign")


def task_title(task: Task, language: str) -> str:
    return localized(task.title, language) or task.code


_RISK_LABELS = {"high": gettext_lazy("High risk"), "medium": gettext_lazy("Moderate risk")}


def risk_display(rank: int) -> dict[str, Any]:
    """What the risk badge shows for a triage rank (coordination.models.risk_rank): the band,
    the score and their words, ready for the row templates (built here rather than by an
    include per row, which costs more than the rest of a worklist row)."""
    band, score = risk_of_rank(rank)
    return {
        "band": band,
        "score": score,
        "label": str(_RISK_LABELS.get(band, gettext_lazy("Low risk"))),
        "score_text": gettext("score %(score)s") % {"score": score},
    }


def _rows(tasks: list[Task], now: dt.datetime, language: str) -> list[dict[str, Any]]:
    return [
        {
            "task": t,
            "title": task_title(t, language),
            "overdue": t.overdue,  # type: ignore[attr-defined]  # coordination's with_overdue
            # The patient's risk kept on the task while it is open (what orders the lists).
            "risk": risk_display(t.risk_rank) if t.status in task_states.OPEN else None,
        }
        for t in tasks
    ]


@practitioner_required
@require_GET
def worklist(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    language = get_language() or "fr"
    priority = request.GET.get("priority", "")
    mine = with_overdue(worklist_mine(request.user), now)
    unclaimed = with_overdue(worklist_unclaimed(request.user), now)
    if priority in Task.Priority.values:
        mine, unclaimed = mine.filter(priority=priority), unclaimed.filter(priority=priority)
    mine_rows = list(mine[:WORKLIST_FETCH])
    unclaimed_rows = list(unclaimed[:WORKLIST_FETCH])
    # The same rows as worklist_overdue (mine or offered to me, overdue by the one
    # definition, coordination's overdue_condition), taken from the two lists already read
    # rather than a third query that would filter them all again; in worklist order.
    overdue_rows = sorted(
        (t for t in mine_rows + unclaimed_rows if t.overdue),  # type: ignore[attr-defined]
        key=lambda t: (
            t.risk_rank,
            t.priority_rank,
            t.due_at is None,
            t.due_at or now,
            t.pk,
        ),
    )
    sections = [
        (name, label, _rows(rows[:WORKLIST_LIMIT], now, language), len(rows))
        for name, label, rows in (
            ("mine", _("My tasks"), mine_rows),
            ("unclaimed", _("Unclaimed tasks of my teams"), unclaimed_rows),
            ("overdue", _("Overdue"), overdue_rows),
        )
    ]
    # What the page shows (the overdue tasks are among the other two lists' rows read):
    # one record per patient whose tasks are on it.
    shown = {row["task"].pk: row["task"] for _, _, rows, _ in sections for row in rows}
    audit_rows_read(
        request,
        resource_type="Task",
        rows=[(task.patient_id, task.pk) for task in shown.values()],
        detail={"priority": priority[:64]} if priority else None,
    )
    context = {
        "sections": sections,
        "priority": priority,
        "priorities": Task.Priority.choices,
    }
    return render(request, "web/worklist.html", context)


def _task_or_404(request: HttpRequest, task_id: int) -> Task:
    try:
        task = access_task(user=request.user, task_id=task_id)
    except TaskNotFound as refused:
        audit_read(
            request,
            resource_type="Task",
            resource_id=task_id,
            patient_id=refused.patient_id,
            outcome=refused.outcome,
        )
        raise Http404 from None
    return task


@practitioner_required
@require_GET
def task_detail(request: HttpRequest, task_id: int) -> HttpResponse:
    task = _task_or_404(request, task_id)
    audit_read(request, resource_type="Task", resource_id=task.pk, patient_id=task.patient_id)
    language = get_language() or "fr"
    definitions = _task_definitions(task)
    events = list(task.events.select_related("actor").order_by("version"))
    names = actor_names(e.actor_label for e in events if e.actor is None)
    context = {
        "task": task,
        "title": task_title(task, language),
        "description": localized(task.description, language) if task.description else "",
        "events": [
            {
                "event": e,
                "by": (e.actor.get_full_name() or e.actor.get_username())
                if e.actor is not None
                else names[e.actor_label],
            }
            for e in events
        ],
        "offered_role": care_role_title(task.offered_role, definitions, language)
        if task.offered_role
        else "",
        "members": member_rows(care_team_members(patient=task.patient), definitions, language),
        # Only what the service would accept from this user: nothing under a read-only
        # break-the-glass grant, no claim for someone the task is not offered to.
        "actions": task_actions_open(task=task, user=request.user),  # type: ignore[arg-type]
        "overdue": task_overdue(task),
    }
    context["step"] = task_step_context(task, language)
    return render(request, "web/task_detail.html", context)


def _task_definitions(task: Task) -> list[CompiledDefinition]:
    """The definition of the task's pathway, whose role titles name the task's roles."""
    pathway = task.care_pathway
    instance = pathway.instance if pathway is not None else None
    return [instance_definition(instance)] if instance is not None else []


def task_step_context(task: Task, language: str) -> dict[str, Any] | None:
    """The task's pathway step as its page says it: the pathway, the step's title, and once
    the pathway has left the step, where to and whether this task's completion moved it."""
    step = task_pathway_step(task)
    if step is None:
        return None
    document = pathway_document(step.instance.definition)
    states = document.get("states", {})

    def title(state: str) -> str:
        return localized(states.get(state, {}).get("title"), language) or state

    left = step.left_by
    return {
        "pathway": localized(document.get("title"), language),
        "state": step.state,
        "title": title(step.state),
        "left_to": title(left.to_state) if left is not None else None,
        "left_to_state": left.to_state if left is not None else None,
        "left_at": left.occurred_at if left is not None else None,
        "moved_by_task": step.moved_by_task,
        "current": title(step.instance.state),
        "still_there": left is None and step.instance.state == step.state,
        "task_closed": task.status not in task_states.OPEN,
    }


@practitioner_required
@require_POST
def task_action(request: HttpRequest, task_id: int) -> HttpResponse:
    action = request.POST.get("action", "")
    if action not in ACTIONS:
        raise Http404
    try:
        version = int(request.POST.get("version", ""))
        new_owner = int(request.POST["new_owner"]) if action == "reassign" else None
    except (KeyError, ValueError):
        messages.error(request, _("The form was incomplete; nothing was changed."))
        return redirect("web:task-detail", task_id=task_id)
    data = TaskActionInput(
        action=action,
        expected_version=version,
        note=request.POST.get("note", "").strip(),
        new_owner_id=new_owner,
    )
    try:
        task_act(
            task_id=task_id,
            user=request.user,  # type: ignore[arg-type]  # logged in: practitioner_required
            data=data,
            entry_point=AuditEvent.EntryPoint.WEB,
            client_address=client_address(request),
        )
    except TaskNotFound as refused:
        audit_read(
            request,
            resource_type="Task",
            resource_id=task_id,
            patient_id=refused.patient_id,
            action=AuditEvent.Action.UPDATE,
            outcome=refused.outcome,
            detail={"action": action},
        )
        raise Http404 from None
    except DomainError as error:
        messages.error(request, _("Not done: %(reason)s") % {"reason": str(error)})
    else:
        messages.success(request, _("Done."))
    return redirect("web:task-detail", task_id=task_id)


# --- the patient page ---------------------------------------------------------------------


def patient_context(request: HttpRequest, patient: Patient) -> dict[str, Any]:
    now = timezone.now()
    language = get_language() or "fr"
    pathways = list(
        visible_care_pathways(request.user).filter(patient_id=patient.pk).order_by("-created_at")
    )
    shown = []
    definitions: dict[int, CompiledDefinition] = {}  # by care pathway
    for pathway in pathways:
        instance = pathway.instance
        if instance is None:
            continue
        document = pathway_document(instance.definition)
        compiled = instance_definition(instance)
        definitions[pathway.pk] = compiled
        history = list(instance_history(instance_id=instance.pk).order_by("-revision"))
        shown.append(
            {
                "pathway": pathway,
                "instance": instance,
                "title": localized(document.get("title"), language),
                "state": localized(
                    document.get("states", {}).get(instance.state, {}).get("title"), language
                )
                or instance.state,
                "diagram": pathway_diagram(
                    instance.definition,
                    state=instance.state,
                    visited=frozenset(h.to_state for h in history),
                    language=language,
                ),
                "where": pathway_where_next(instance, language),
                "history": timeline(history, compiled, language),
                "monitoring": pathway_monitoring(pathway),
                # Declared silences of the current step, with the pathway's reason.
                "suspended": monitoring_notes.suspensions(
                    instance_definition(instance), language, state=instance.state
                ),
                **parameters_context(pathway, request.user, language),
            }
        )
    thresholds = patient_thresholds(
        patient_id=patient.pk, pathways=pathways, since=now - dt.timedelta(days=CHART_DAYS)
    )
    series = measurement_series(patient, now, thresholds, latest=5)
    tasks = list(with_overdue(tasks_for_patient(request.user, patient.pk), now)[:WORKLIST_LIMIT])
    return {
        "patient": patient,
        "risk": risk_display(patient_risk_rank(patient_id=patient.pk)),
        "pathways": shown,
        "consents": consent_list(patient_id=patient.pk),
        "members": member_rows(
            care_team_members(patient=patient), list(definitions.values()), language
        ),
        "tasks": _rows(tasks, now, language),
        "alerts": _alert_rows(
            list(patient_alerts(request.user, patient_id=patient.pk)[:50]), definitions, language
        ),
        "series": series,
        "chart_data": chart_data(series, thresholds, language),
        "chart_texts": chart_texts(),
        "startable": [
            {"definition": d, "title": localized(pathway_document(d).get("title"), language)}
            for d in {d.key: d for d in reversed(definition_list(status="active"))}.values()
        ],
    }


def _alert_rows(
    alerts: list[Any], definitions: Mapping[int, CompiledDefinition], language: str
) -> list[dict[str, Any]]:
    """The patient page's alerts, each with the title its pathway gives it."""
    rows = []
    for alert in alerts:
        definition = definitions.get(alert.care_pathway_id)
        title = alert_title(definition, alert.name, language) if definition else alert.name
        rows.append({"alert": alert, "title": title})
    return rows


@practitioner_required
@require_GET
def patient_detail(request: HttpRequest, patient_id: int) -> HttpResponse:
    try:
        patient = access_patient(user=request.user, patient_id=patient_id)
    except PatientNotFound as error:
        audit_read(
            request,
            resource_type="Patient",
            resource_id=patient_id,
            patient_id=patient_id,
            outcome=error.outcome,
        )
        raise Http404 from None
    audit_read(request, resource_type="Patient", resource_id=patient.pk, patient_id=patient.pk)
    context = patient_context(request, patient)
    # The one banner of an emergency access: until when, read-only, recorded.
    context["break_glass"] = break_glass_grant_active(user=request.user, patient_id=patient.pk)
    return render(request, "web/patient_detail.html", context)


@practitioner_required
def break_glass(request: HttpRequest, patient_id: int) -> HttpResponse:
    """Opening a record outside the care team: asks for the reason, says the access is
    recorded, then opens the patient page, read-only, for the time the grant lasts (every
    read during it is audited as an emergency access). Someone who may not break the glass
    gets the same 404 whether the patient exists or not, as from the API; someone who may
    gets that same 404 for a patient that does not exist."""
    if not may_break_glass(request.user):
        if request.method == "POST":
            exists = patient_exists(patient_id=patient_id)
            outcome = AuditEvent.Outcome.DENIED if exists else AuditEvent.Outcome.NOT_FOUND
            _refused_break_glass(request, patient_id, outcome)
        raise Http404
    if request.method != "POST" and not patient_exists(patient_id=patient_id):
        raise Http404  # a POST finds out in the service, which records the attempt
    if request.method == "POST":
        try:
            patient_break_glass(
                user=request.user,  # type: ignore[arg-type]
                patient_id=patient_id,
                reason=request.POST.get("reason", ""),
                entry_point=AuditEvent.EntryPoint.WEB,
                client_address=client_address(request),
            )
        except PatientNotFound as refused:
            _refused_break_glass(request, patient_id, refused.outcome)
            raise Http404 from None
        except PatientsNotAllowed:
            _refused_break_glass(request, patient_id, AuditEvent.Outcome.DENIED)
            raise Http404 from None
        except PatientsError as error:
            messages.error(request, _("Not opened: %(reason)s") % {"reason": str(error)})
        else:  # the patient page says it, in its one banner (until when, read-only)
            return redirect("web:patient-detail", patient_id=patient_id)
    return render(request, "web/break_glass.html", {"patient_id": patient_id})


def _refused_break_glass(request: HttpRequest, patient_id: int, outcome: str) -> None:
    """A refused attempt to break the glass, recorded under the patient it targeted (the
    answer is the same 404 whether the patient exists or not)."""
    audit_read(
        request,
        resource_type="Patient",
        resource_id=patient_id,
        patient_id=patient_id,
        action=AuditEvent.Action.BREAK_GLASS,
        outcome=outcome,
    )
