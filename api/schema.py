"""OpenAPI generation: every operation documents the problem+json errors it can answer.

The error statuses come from the same places the answers do (api.problems, the
authentication and permission classes, the pagination, IdempotentPostMixin, the body size
limit), so they are added here once rather than repeated on every view. A view's own
`extend_schema(responses=...)` still wins for a status it documents with a body; one it
documents with a description only gets the problem body filled in.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from api.idempotency import HEADER as IDEMPOTENCY_HEADER
from api.idempotency import IdempotentPostMixin
from api.problems import CONTENT_TYPE

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
    field = serializers.CharField()
    message = serializers.CharField()
    line = serializers.IntegerField(required=False, allow_null=True)
    column = serializers.IntegerField(required=False, allow_null=True)


class ProblemSerializer(serializers.Serializer[Any]):
    """RFC 9457 problem details, as api.problems writes them."""

    type = serializers.URLField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    reason = serializers.CharField(required=False)

    class Meta:
        ref_name = "Problem"

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        # Named here: as a class attribute it would shadow Serializer.errors.
        fields["errors"] = ProblemFieldSerializer(many=True, required=False)
        return fields


class ProblemAutoSchema(AutoSchema):
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
        return codes

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
        return dict(sorted(responses.items()))

    def get_override_parameters(self) -> list[Any]:
        parameters: list[Any] = list(super().get_override_parameters())
        if self.method == "POST" and isinstance(self.view, IdempotentPostMixin):
            parameters.append(IDEMPOTENCY_KEY)
        return parameters
