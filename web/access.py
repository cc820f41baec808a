"""Who may open which part of the web UI: care-team pages are for practitioners, the portal
for patient accounts. The other kind of account gets 404, like any object it may not see."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
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
        if not _works_with_pathways(request):
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
        if not _works_with_pathways(request):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def _works_with_pathways(request: HttpRequest) -> bool:
    return bool(request.user.is_staff) or practitioner_of(request.user) is not None


def current_practitioner(request: HttpRequest) -> Practitioner:
    practitioner: Practitioner = request.practitioner  # type: ignore[attr-defined]
    return practitioner


def current_patient(request: HttpRequest) -> Patient:
    patient: Patient = request.own_patient  # type: ignore[attr-defined]
    return patient
