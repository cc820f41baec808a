"""The pages a browser gets when a page fails or does not exist, in the visitor's language,
with a way back. The failure pages are plain: they read nothing from the database (it may be
what failed) and do not depend on the request having gone through the middleware (a failure
there too). The page-not-found is in the site's layout when the visitor is known (see
`not_found`), plain otherwise.

With DEBUG on, Django answers a page its views refuse with its technical 404 page;
`NotFoundPageMiddleware` answers the web UI's own pages with this one in every mode, so what
a user sees during development is what they will see in production. An address that matches
no page keeps the technical page when DEBUG is on (it lists the routes, which is what a
developer needs then)."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template import loader
from django.templatetags.static import static
from django.urls import Resolver404, resolve, reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from directory.selectors import portal_patient, practitioner_of
from patients.selectors import may_break_glass

# The pages about one patient from which a practitioner who may break the glass is offered
# to (the answer being the same whether the patient exists or not).
PATIENT_PAGES = frozenset({"patient-detail"})
NOT_FOUND_TITLE = gettext_noop("Page not found")
NOT_FOUND_MESSAGE = gettext_noop(
    "This page does not exist, or you may not see it. Check the address, or go back "
    "to your home page."
)


def _stylesheet() -> str | None:
    try:
        return static("web/parcours.css")
    except ValueError:  # no manifest entry (collectstatic not run): the page goes unstyled
        return None


def error_page(
    request: HttpRequest, *, status: int, title: str, message: str, retry: bool = False
) -> HttpResponse:
    """`status` with the error page, in the language the rest of the site would use for this
    request (its cookie, else its Accept-Language, else French). `title` and `message` are
    marked for translation by the caller and translated here. `retry` offers to load the page
    again (never for a form sent: that would send it again)."""
    with translation.override(translation.get_language_from_request(request)):
        body = loader.get_template("web/error.html").render(
            {
                "status": status,
                "title": _(title),
                "message": _(message),
                "path": request.path,
                "retry": retry and request.method in ("GET", "HEAD"),
                "stylesheet": _stylesheet(),
                "LANGUAGE_CODE": translation.get_language(),
            }
        )
    return HttpResponse(body, status=status, content_type="text/html; charset=utf-8")


def server_error(request: HttpRequest) -> HttpResponse:
    return error_page(
        request,
        status=500,
        retry=True,
        title=gettext_noop("Something went wrong"),
        message=gettext_noop(
            "The page could not be shown because of an error on the server. Nothing that "
            "was already saved is lost, and the error has been logged. Try again in a "
            "moment; if it keeps happening, tell your support team."
        ),
    )


def service_unavailable(request: HttpRequest) -> HttpResponse:
    return error_page(
        request,
        status=503,
        retry=True,
        title=gettext_noop("Service temporarily unavailable"),
        message=gettext_noop(
            "Parcours cannot reach one of its services at the moment. Nothing was changed. "
            "Try again in a few seconds."
        ),
    )


def locked_out(request: HttpRequest) -> HttpResponse:
    """A login attempt while its username and address are locked out (django-axes): 429
    with the time to wait."""
    wait = settings.AXES_COOLOFF_TIME
    response = error_page(
        request,
        status=429,
        title=gettext_noop("Too many failed logins"),
        message=gettext_noop(
            "Logging in with this username from here is blocked for a while after several "
            "failed attempts, to protect the account. Wait a few minutes before trying again; "
            "if you forgot your password, ask your coordinator."
        ),
    )
    response["Retry-After"] = str(int(wait.total_seconds()))
    return response


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404 in the site's layout for a request the middleware has identified: a way back to
    the visitor's own home (the worklist for the care team, the portal for a patient), and
    on a patient's page, for a practitioner who may break the glass, the way to do it. The
    plain page when the visitor is unknown (the middleware did not run), the database fails
    or the static files are not collected."""
    if getattr(request, "user", None) is not None:
        try:
            return _not_found_page(request)
        except (DatabaseError, ValueError):  # ValueError: no static manifest entry
            pass
    return error_page(request, status=404, title=NOT_FOUND_TITLE, message=NOT_FOUND_MESSAGE)


def _not_found_page(request: HttpRequest) -> HttpResponse:
    user = request.user
    practitioner = practitioner_of(user)
    patient = portal_patient(user) if practitioner is None else None
    with translation.override(translation.get_language_from_request(request)):
        context = {
            "practitioner": practitioner,
            "own_patient": patient,
            "break_glass_url": (
                _break_glass_url(request) if practitioner and may_break_glass(user) else None
            ),
            "title": _(NOT_FOUND_TITLE),
            "message": _(NOT_FOUND_MESSAGE),
        }
        response = render(request, "web/not_found.html", context, status=404)
    return response


def _break_glass_url(request: HttpRequest) -> str | None:
    match = request.resolver_match
    if match is None:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return None
    patient_id = match.kwargs.get("patient_id")
    if match.app_name != "web" or match.url_name not in PATIENT_PAGES or patient_id is None:
        return None
    return reverse("web:break-glass", kwargs={"patient_id": patient_id})


class NotFoundPageMiddleware:
    """The web UI's pages answer a refused or missing object with `not_found`, DEBUG on or
    off (see the module's docstring). Only Http404 from the web UI's own views: any other
    error goes on to Django's handling (the debug page while developing)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        match = request.resolver_match
        if isinstance(exception, Http404) and match is not None and match.app_name == "web":
            return not_found(request, exception)
        return None
