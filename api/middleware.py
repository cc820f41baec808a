"""Request size limit for the API: an oversized body is refused before anything reads it."""

from __future__ import annotations

import json
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


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
                body = {
                    "type": "https://parcours.invalid/problems/payload-too-large",
                    "title": "Payload too large",
                    "status": 413,
                    "detail": f"the body is {size} bytes; the limit is {limit} bytes",
                }
                return HttpResponse(
                    json.dumps(body), status=413, content_type="application/problem+json"
                )
        return self.get_response(request)
