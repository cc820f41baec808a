"""The site's error handlers: problem+json under /api/, the web UI's pages elsewhere.

An error that means a service the request needs is down or busy (the database unreachable,
its pool exhausted, SQLite locked, Redis gone) is a 503 with Retry-After, not a 500: the
request may be sent again shortly, and nothing was changed (its transaction did not commit).
"""

from __future__ import annotations

import sys
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from api import oauth2_endpoints, problems
from web import errors

RETRY_AFTER_SECONDS = 5
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    RedisConnectionError,
    RedisTimeoutError,
)


def _api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def unavailable(exception: BaseException | None) -> bool:
    """Whether `exception`, or one it was raised from, says a service is down or busy."""
    seen: set[int] = set()
    while exception is not None and id(exception) not in seen:
        if isinstance(exception, UNAVAILABLE):
            return True
        seen.add(id(exception))
        exception = exception.__cause__ or exception.__context__
    return False


def locked_out(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """django-axes' answer to a locked-out login attempt: the OAuth2 error for the token
    endpoint, the web page elsewhere (the login page, the admin's)."""
    if request.path.startswith("/o/"):
        return oauth2_endpoints.locked_out(request)
    return errors.locked_out(request)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _api(request):
        return problems.not_found(request, exception)
    return errors.not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django calls this inside the `except` block of the error: sys.exc_info() is it."""
    if unavailable(sys.exc_info()[1]):
        if _api(request):
            response = problems.service_unavailable(request)
        else:
            response = errors.service_unavailable(request)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if _api(request):
        return problems.server_error(request)
    return errors.server_error(request)
