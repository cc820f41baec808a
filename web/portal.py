"""The patient portal: the patient's own pathway in plain words, what is done, what comes
next and when, their care team and their own measurements. Nothing about anyone else: every
read starts from the account's own record (`portal_patient`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import get_language
from django.views.decorators.http import require_GET

from coordination import task_states
from coordination.readings import patient_thresholds
from coordination.selectors import pathway_monitoring, tasks_for_patient, visible_care_pathways
from directory.selectors import care_team_members
from web.access import current_patient, patient_account_required
from web.audit import audit_read
from web.care import task_title
from web.charts import CHART_DAYS, measurement_series
from web.documents import pathway_document
from workflows.definition import localized
from workflows.selectors import instance_history


@patient_account_required
@require_GET
def portal_home(request: HttpRequest) -> HttpResponse:
    patient = current_patient(request)
    language = get_language() or "fr"
    now = timezone.now()
    audit_read(request, resource_type="Patient", resource_id=patient.pk, patient_id=patient.pk)
    pathways = []
    own = list(visible_care_pathways(request.user).filter(patient_id=patient.pk))
    for pathway in own:
        instance = pathway.instance
        if instance is None:
            continue
        document = pathway_document(instance.definition)
        states = document.get("states", {})

        def state_title(key: str, states: dict[str, Any] = states) -> str:
            return localized(states.get(key, {}).get("title"), language) or key

        done = [
            {"title": state_title(h.from_state), "at": h.occurred_at}
            for h in instance_history(instance_id=instance.pk).order_by("revision")
            if h.from_state and h.from_state != h.to_state
        ]
        pathways.append(
            {
                "title": localized(document.get("title"), language),
                "state": state_title(instance.state),
                "status": instance.get_status_display(),
                "finished": instance.status != "active",
                "done": done,
                "monitoring": pathway_monitoring(pathway),
            }
        )
    tasks = list(tasks_for_patient(request.user, patient.pk))
    upcoming = [
        {"title": task_title(t, language), "due_at": t.due_at}
        for t in tasks
        if t.status in task_states.OPEN
    ]
    completed = [
        {"title": task_title(t, language), "ended_at": t.ended_at}
        for t in tasks
        if t.status == "completed"
    ]
    context = {
        "patient": patient,
        "pathways": pathways,
        "upcoming": sorted(upcoming, key=lambda t: (t["due_at"] is None, t["due_at"] or now)),
        "completed": completed,
        "members": care_team_members(patient=patient),
        # Their readings, each flagged as the care team's page flags it.
        "series": measurement_series(
            patient,
            now,
            patient_thresholds(
                patient_id=patient.pk, pathways=own, since=now - dt.timedelta(days=CHART_DAYS)
            ),
            latest=10,
        ),
    }
    return render(request, "web/portal.html", context)
