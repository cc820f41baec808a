"""The pages a browser gets when a page fails or does not exist: plain, in the visitor's
language, with a way back. They read nothing from the database (it may be what failed) and
do not depend on the request having gone through the middleware (a failure there too)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.templatetags.static import static
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop


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
    return error_page(
        request,
        status=404,
        title=gettext_noop("Page not found"),
        message=gettext_noop(
            "This page does not exist, or you may not see it. Check the address, or go back "
            "to your home page."
        ),
    )
