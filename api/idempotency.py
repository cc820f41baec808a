"""`Idempotency-Key` on POST: a retry with the same key gets the first response, and the
request's work is not done twice. Mixed into every API view that accepts POST."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponseBase
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder
from rest_framework.views import APIView

from api.services.idempotency import idempotency_claim, idempotency_release, idempotency_store

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
KEPT_HEADERS = ("ETag", "Location", "Content-Type")


def _owner(request: Request) -> str:
    if request.user is not None and request.user.is_authenticated:
        return f"user:{request.user.pk}"
    application = getattr(request.auth, "application", None)
    return f"client:{application.client_id}" if application is not None else "anonymous"


class IdempotentPostMixin(APIView):
    """Base of the API views that accept POST. A keyed POST runs in one transaction with its
    idempotency record (see api.services.idempotency). Only 2xx responses are
    stored: an error is not "the first response" a retry should get, and it changed nothing."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method == "POST" and request.headers.get(HEADER):
            with transaction.atomic():
                response = super().dispatch(request, *args, **kwargs)
                claimed = getattr(self, "_idempotency", None)
                if claimed is not None and not 200 <= response.status_code < 300:
                    # Refused: free the key for a retry. The work itself was rolled back by
                    # the service that refused; the refusal's audit record stays.
                    idempotency_release(owner=claimed[0], key=claimed[1])
                return response
        return super().dispatch(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        key = request.headers.get(HEADER)
        self._idempotency: tuple[str, str] | None = None
        keyed = request.method == "POST" and bool(key)
        # The raw body is read before authentication, which may consume the stream (the OAuth2
        # bearer check reads form data through DRF's parsers); Django keeps the bytes for the
        # parsers afterwards. Bounded by the size limit (api.middleware).
        body = request._request.body if keyed else b""
        super().initial(request, *args, **kwargs)
        if not keyed or key is None:
            return
        fingerprint = hashlib.sha256(b"\0".join([b"POST", request.path.encode(), body])).hexdigest()
        owner = _owner(request)
        stored = idempotency_claim(owner=owner, key=key, fingerprint=fingerprint)
        if stored is not None:
            raise _Replay(stored.status_code or 200, stored.body, stored.headers)
        self._idempotency = (owner, key)

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, _Replay):
            response = Response(exc.body, status=exc.status_code)
            for name, value in exc.headers.items():
                response[name] = value
            response[REPLAYED] = "true"
            return response
        return super().handle_exception(exc)

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        claimed = getattr(self, "_idempotency", None)
        if claimed is not None and 200 <= response.status_code < 300:
            idempotency_store(
                owner=claimed[0],
                key=claimed[1],
                status_code=response.status_code,
                # As the renderer writes it (decimals as numbers, dates as text), so that a
                # replay answers the same JSON.
                body=json.loads(json.dumps(response.data, cls=JSONEncoder)),
                headers={h: response[h] for h in KEPT_HEADERS if h in response},
            )
        return response


class _Replay(Exception):
    def __init__(self, status_code: int, body: Any, headers: dict[str, str]) -> None:
        super().__init__("replayed")
        self.status_code, self.body, self.headers = status_code, body, headers
