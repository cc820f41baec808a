"""OpenAPI generation: every operation documents the problem+json errors it can answer.

The error statuses come from the same places the answers do (api.problems, the
authentication and permission classes, the pagination, IdempotentPostMixin, the body size
limit), so they are added here once rather than repeated on every view. A view's own
`extend_schema(responses=...)` still wins for a status it documents with a body; one it
documents with a description only gets the problem body filled in.

The headers the API's machinery adds are documented here too, where they apply:
`Idempotent-Replayed` on the answers of POSTs taking an `Idempotency-Key`,
`WWW-Authenticate` on 401 and 403, `Retry-After` on 429. An operation's summary and
description come from its `extend_schema` only (view docstrings are for developers), and
the description ends with who may call it with which OAuth2 scope (api.scopes).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from api.idempotency import HEADER as IDEMPOTENCY_HEADER
from api.idempotency import REPLAYED as REPLAYED_HEADER
from api.idempotency import IdempotentPostMixin
from api.problems import CONTENT_TYPE, PROBLEM_TYPE
from api.scopes import scope_family

# Why each status can happen (the description shown in the docs).
ERRORS = {
    "400": "Invalid input: every problem, each with its field",
    "401": "Not authenticated",
    "403": "Authenticated but not allowed",
    "404": "No such resource, or not one the caller may see",
    "409": "Conflict with the current state (or an Idempotency-Key reused for another request)",
    "412": "If-Match does not match the resource's current ETag",
    "413": "The request body is larger than the limit",
    "415": "Unsupported request media type",
    "428": "If-Match is required here and was not sent",
    "429": "Too many requests: wait the Retry-After seconds",
}

# The start of the paragraph every description ends with (who may call the operation).
ACCESS_PREFIX = "Access: "

# Headers on the answers of every operation, by status.
STATUS_HEADERS: dict[str, dict[str, dict[str, Any]]] = {
    "401": {
        "WWW-Authenticate": {
            "schema": {"type": "string"},
            "description": "The authentication schemes accepted (Bearer for OAuth2 tokens).",
        }
    },
    "403": {
        "WWW-Authenticate": {
            "schema": {"type": "string"},
            "description": (
                'On an OAuth2 token lacking the route\'s scope: Bearer error="insufficient_scope" '
                "and the scope to ask for (also in the problem's required_scopes)."
            ),
        }
    },
    "429": {
        "Retry-After": {
            "schema": {"type": "integer", "minimum": 0},
            "description": "Seconds to wait before the caller's rate window turns.",
        }
    },
}

REPLAYED = {
    REPLAYED_HEADER: {
        "schema": {"type": "string", "enum": ["true"]},
        "description": (
            "Present (true) when this is the stored answer to an earlier request with the same "
            "Idempotency-Key: nothing was done again."
        ),
    }
}

IDEMPOTENCY_KEY = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    str,
    OpenApiParameter.HEADER,
    description=(
        "Any unique string: a retry with the same key gets the first 2xx answer again "
        "and does not redo the work; the same key on another request is a 409."
    ),
)


def etag_header(*codes: int) -> OpenApiParameter:
    """The `ETag` response header of a resource with a version, on `codes`."""
    return OpenApiParameter(
        "ETag",
        str,
        OpenApiParameter.HEADER,
        response=list(codes),
        description="The resource's current version; send it back in If-Match.",
    )


IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    description="The ETag last read: the change is refused with 412 if the resource changed.",
)


class ProblemFieldSerializer(serializers.Serializer[Any]):
    """One problem of the request: where (`field`) and what."""

    field = serializers.CharField(
        help_text=(
            "Where: a body field, dotted for nested ones (items.3.value), a query parameter, "
            "(body) for the body as a whole, or a pathway document's location."
        )
    )
    message = serializers.CharField(help_text="What is wrong, in the answer's language.")
    line = serializers.IntegerField(
        required=False, allow_null=True, help_text="Pathway documents: the line (from 1)."
    )
    column = serializers.IntegerField(
        required=False, allow_null=True, help_text="Pathway documents: the column (from 1)."
    )
    expected_key = serializers.CharField(
        required=False,
        help_text="An INS number (ins_nir) whose control key is wrong: the key it calls for.",
    )

    class Meta:
        ref_name = "ProblemField"


class ProblemSerializer(serializers.Serializer[Any]):
    """RFC 9457 problem details (application/problem+json). `type` names the kind of refusal,
    one per kind; `title` and `detail` follow Accept-Language (English by default, French on
    request)."""

    type = serializers.URLField(
        help_text=(
            f"{PROBLEM_TYPE}<kind>: invalid-input, invalid-definition (400); "
            "not-authenticated (401); not-allowed, insufficient-scope (403); not-found (404); "
            "method-not-allowed (405); not-acceptable (406); conflict, transition-refused, "
            "definition-conflict, migration-refused, idempotency-conflict, "
            "consent-withdrawn (409); "
            "precondition-failed (412); payload-too-large (413); unsupported-media-type (415); "
            "precondition-required (428); throttled (429); server-error (500); "
            "service-unavailable, email-not-sent (503)."
        )
    )
    title = serializers.CharField(help_text="A short summary of the kind of problem.")
    status = serializers.IntegerField(help_text="The HTTP status, repeated.")
    detail = serializers.CharField(help_text="What happened on this request.")
    reason = serializers.CharField(
        required=False, help_text="transition-refused: why the transition was refused."
    )
    required_scopes = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="insufficient-scope: the OAuth2 scopes the route needs.",
    )

    class Meta:
        ref_name = "Problem"

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        # Named here: as a class attribute it would shadow Serializer.errors.
        fields["errors"] = ProblemFieldSerializer(many=True, required=False)
        return fields


class ProblemAutoSchema(AutoSchema):
    def get_description(self) -> str:  # type: ignore[override]
        # A docstring is written for developers: an operation's description is the one its
        # extend_schema gives, or none (and the schema test fails).
        return ""

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation: dict[str, Any] | None = super().get_operation(*args, **kwargs)
        if operation is not None:
            parts = [operation.get("description", "").strip(), self._access_note()]
            operation["description"] = "\n\n".join(part for part in parts if part)
        return operation

    def _access_note(self) -> str:
        """Who may call the operation, as far as credentials go (api.scopes)."""
        if not (self.get_auth() or self._needs_authentication()):
            return ACCESS_PREFIX + "anyone."
        family = scope_family(self.path.lstrip("/"))
        if family is None:
            return (
                ACCESS_PREFIX + "people only (web session or personal API token); "
                "platform OAuth2 tokens are refused (403)."
            )
        access = "read" if self.method in ("GET", "HEAD", "OPTIONS") else "write"
        return (
            ACCESS_PREFIX + f"platforms with an OAuth2 token holding the scope {family}:{access}; "
            "people with a web session or a personal API token, within their own rights."
        )

    def _error_statuses(self) -> list[str]:
        method = self.method
        has_body = method in ("POST", "PUT", "PATCH")
        codes = ["400"] if has_body or self._has_query_parameters() else []
        if self.get_auth() or self._needs_authentication():
            codes += ["401", "403"]
        if "{" in self.path or self._paginated():
            # Path parameters name an object; a forged pagination cursor is a 404 too.
            codes.append("404")
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            codes += ["409", "412"] if self._takes_if_match() else ["409"]
        if has_body:
            codes += ["413", "415"]
        return [*codes, "429"]

    def _has_query_parameters(self) -> bool:
        return any(p.get("in") == "query" for p in self._get_parameters())

    def _needs_authentication(self) -> bool:
        return any(
            type(p).__name__ != "AllowAny" for p in getattr(self.view, "permission_classes", [])
        )

    def _paginated(self) -> bool:
        paginated = getattr(self.view, "pagination_class", None) is not None
        return self.method == "GET" and paginated and self._is_list_view()

    def _takes_if_match(self) -> bool:
        return any(
            isinstance(p, OpenApiParameter) and p.name == "If-Match"
            for p in self.get_override_parameters()
        )

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        problem = self.resolve_serializer(ProblemSerializer, "response").ref
        for code in sorted({*self._error_statuses(), *(c for c in responses if c >= "400")}):
            entry = responses.setdefault(code, {"description": ERRORS.get(code, "")})
            if not entry.get("content"):
                entry["content"] = {CONTENT_TYPE: {"schema": problem}}
            headers = self._get_response_headers_for_code(code, direction)
            if headers:
                entry["headers"] = {**headers, **entry.get("headers", {})}
        return dict(sorted(responses.items()))

    def _get_response_headers_for_code(self, status_code: Any, direction: Any = "response") -> Any:
        headers: dict[str, Any] = dict(
            super()._get_response_headers_for_code(status_code, direction)
        )
        code = str(status_code)
        headers.update(STATUS_HEADERS.get(code, {}))
        if code.startswith("2") and self._idempotent():
            headers.update(REPLAYED)
        return headers

    def _idempotent(self) -> bool:
        return self.method == "POST" and isinstance(self.view, IdempotentPostMixin)

    def get_override_parameters(self) -> list[Any]:
        parameters: list[Any] = list(super().get_override_parameters())
        if self._idempotent():
            parameters.append(IDEMPOTENCY_KEY)
        return parameters
