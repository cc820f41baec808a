"""Middleware of the API: the request size limit (an oversized body is refused before
anything reads it) and the language API answers are written in."""

from __future__ import annotations

import json
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware.locale import LocaleMiddleware
from django.utils import translation
from django.utils.translation import get_supported_language_variant
from django.utils.translation import gettext as _

# Paths answered to programs rather than people: their language is the request's
# Accept-Language alone (no cookie, no session), English when it names none we have.
API_PATHS = ("/api/", "/o/")
API_DEFAULT_LANGUAGE = "en"


def api_language(request: HttpRequest) -> str:
    """The first language of Accept-Language (by preference) that the site has, else English.
    The web UI's cookie does not count here: a script's answers must not change with it."""
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate(request.META.get("HTTP_ACCEPT_LANGUAGE", "").split(",")):
        code, _sep, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _eq, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if code.strip() and code.strip() != "*" and quality > 0:
            ranked.append((-quality, index, code.strip()))
    for _quality, _index, code in sorted(ranked):
        try:
            return get_supported_language_variant(code)
        except LookupError:
            continue
    return API_DEFAULT_LANGUAGE


class ApiLocaleMiddleware(LocaleMiddleware):
    """Django's LocaleMiddleware (the web UI: cookie, then Accept-Language, then French), but
    under /api/ and /o/ the language is api_language's: English unless the client asks for
    another one the site has."""

    def process_request(self, request: HttpRequest) -> None:
        if not request.path.startswith(API_PATHS):
            super().process_request(request)
            return
        translation.activate(api_language(request))
        request.LANGUAGE_CODE = translation.get_language()


class BodySizeLimitMiddleware:
    """Answer 413 (problem+json) to an API request whose declared body is larger than
    `API_MAX_BODY_BYTES`. Django's own limit guards only `request.body` and form parsing;
    DRF's parsers read the stream directly, so without this a client could make the server
    parse any amount of JSON."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            limit = int(getattr(settings, "API_MAX_BODY_BYTES", 2 * 1024 * 1024))
            declared = request.META.get("CONTENT_LENGTH") or "0"
            size = int(declared) if declared.isdigit() else 0
            if size > limit:
                # Before the locale middleware: the language is chosen here as it would.
                with translation.override(api_language(request)):
                    body = {
                        "type": "https://parcours.invalid/problems/payload-too-large",
                        "title": _("Payload too large"),
                        "status": 413,
                        "detail": _("the body is %(size)d bytes; the limit is %(limit)d bytes")
                        % {"size": size, "limit": limit},
                    }
                return HttpResponse(
                    json.dumps(body), status=413, content_type="application/problem+json"
                )
        return self.get_response(request)
