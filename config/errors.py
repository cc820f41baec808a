"""The site's error handlers: problem+json under /api/, the web UI's pages elsewhere."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from api import problems
from web import errors


def _api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _api(request):
        return problems.not_found(request, exception)
    return errors.not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _api(request):
        return problems.server_error(request)
    return errors.server_error(request)
