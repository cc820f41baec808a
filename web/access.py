"""Who may open which part of the web UI: care-team pages are for practitioners, the portal
for patient accounts. The other kind of account gets 404, like any object it may not see."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse

from coordination.models import Practitioner
from coordination.selectors import portal_patient, practitioner_of
from patients.models import Patient

View = Callable[..., HttpResponse]


def practitioner_required(view: View) -> View:
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        practitioner = practitioner_of(request.user)
        if practitioner is None:
            raise Http404
        request.practitioner = practitioner  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapper


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


def current_practitioner(request: HttpRequest) -> Practitioner:
    practitioner: Practitioner = request.practitioner  # type: ignore[attr-defined]
    return practitioner


def current_patient(request: HttpRequest) -> Patient:
    patient: Patient = request.own_patient  # type: ignore[attr-defined]
    return patient
