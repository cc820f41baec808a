"""Who may open which part of the web UI: care-team pages are for practitioners, the portal
for patient accounts. The other kind of account gets 404, like any object it may not see."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse

from coordination.models import CarePathway
from coordination.selectors import alert_patient_id, pathway_patient_id, task_patient_id
from core.sql import key_in_range
from directory.models import Practitioner
from directory.selectors import portal_patient, practitioner_of
from patients.models import AuditEvent, Patient
from patients.selectors.patients import patient_exists
from web.audit import audit_read

View = Callable[..., HttpResponse]


def practitioner_required(view: View) -> View:
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        practitioner = practitioner_of(request.user)
        if practitioner is None:
            _audit_refused_page(request, kwargs)
            raise Http404
        request.practitioner = practitioner  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapper


def _audit_refused_page(request: HttpRequest, kwargs: dict[str, object]) -> None:
    """A care-team page about a patient (`<patient_id>`), a task (`<task_id>`), a pathway
    (`<pathway_id>`) or an alert (`<alert_id>`), refused to an account that is no
    practitioner (a patient's): recorded under the patient it targeted, like any refused
    access; the answer is the same 404 whether it exists or not."""
    patient_id, task_id = kwargs.get("patient_id"), kwargs.get("task_id")
    pathway_id = kwargs.get("pathway_id")
    if isinstance(patient_id, int):
        resource_type, resource_id = "Patient", patient_id
    elif isinstance(task_id, int):
        resource_type, resource_id = "Task", task_id
        patient_id = task_patient_id(task_id=task_id)
    elif isinstance(pathway_id, int):
        resource_type, resource_id = "CarePathway", pathway_id
        in_range = key_in_range(CarePathway, pathway_id)
        patient_id = pathway_patient_id(pathway_id=pathway_id) if in_range else None
    elif isinstance(alert_id := kwargs.get("alert_id"), int):
        resource_type, resource_id = "AlertRecord", alert_id
        patient_id = alert_patient_id(alert_id=alert_id)
    else:
        return
    exists = isinstance(patient_id, int) and patient_exists(patient_id=patient_id)
    audit_read(
        request,
        resource_type=resource_type,
        resource_id=resource_id,
        patient_id=patient_id if isinstance(patient_id, int) else None,
        action=AuditEvent.Action.READ if request.method == "GET" else AuditEvent.Action.UPDATE,
        outcome=AuditEvent.Outcome.DENIED if exists else AuditEvent.Outcome.NOT_FOUND,
    )


def patient_account_required(view: View) -> View:
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        patient = portal_patient(request.user)
        if patient is None:
            raise Http404
        request.own_patient = patient  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapper


def library_reader_required(view: View) -> View:
    """The pathway library (definitions, their diagrams): for practitioners and operations
    staff; patient accounts get 404. PARCOURS_PUBLIC_LIBRARY opens it to anyone, logged in
    or not (a library published as a reference)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if settings.PARCOURS_PUBLIC_LIBRARY:
            return view(request, *args, **kwargs)
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not works_with_pathways(request):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def library_editor_required(view: View) -> View:
    """Pages that change the library (uploading a definition): practitioners and operations
    staff, logged in whatever PARCOURS_PUBLIC_LIBRARY says; the permission to change it is
    checked by the service. Patient accounts get 404."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not works_with_pathways(request):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def works_with_pathways(request: HttpRequest) -> bool:
    return bool(request.user.is_staff) or practitioner_of(request.user) is not None


def current_practitioner(request: HttpRequest) -> Practitioner:
    practitioner: Practitioner = request.practitioner  # type: ignore[attr-defined]
    return practitioner


def current_patient(request: HttpRequest) -> Patient:
    patient: Patient = request.own_patient  # type: ignore[attr-defined]
    return patient
