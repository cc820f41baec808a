"""Pathway definitions: upload (validated), publish, retire, versions, diagrams."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ParseError, PermissionDenied
from rest_framework.generics import ListAPIView
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.idempotency import IdempotentPostMixin
from api.pagination import Cursor
from api.parsers import BoundedJSONParser
from api.serializers import StrictSerializer, refuse_unknown_fields
from workflows.actors import Actor
from workflows.diagrams import render_definition_svg
from workflows.models import PathwayDefinition
from workflows.selectors import definition_document, definition_get, definition_list
from workflows.services import (
    definition_activate,
    definition_retire,
    definition_upload,
)


class PathwaySourceParser(BaseParser):
    """A pathway document sent as is: YAML (application/yaml, text/yaml) or plain text."""

    media_type = "application/yaml"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read()
        try:
            return {"source": raw.decode("utf-8"), "format": "yaml"}
        except UnicodeDecodeError as error:
            raise ParseError(
                f"the document is not UTF-8 text: byte 0x{raw[error.start]:02x} at offset "
                f"{error.start} cannot be read"
            ) from None


class TextYamlParser(PathwaySourceParser):
    media_type = "text/yaml"


class PlainTextParser(PathwaySourceParser):
    media_type = "text/plain"


class DefinitionSerializer(serializers.ModelSerializer[PathwayDefinition]):
    class Meta:
        model = PathwayDefinition
        fields = [
            "key", "version", "title", "status", "checksum", "source_format",
            "created_by", "created_at", "published_at", "retired_at",
        ]  # fmt: skip
        read_only_fields = fields


class DefinitionDetailSerializer(DefinitionSerializer):
    document = serializers.SerializerMethodField()
    source = serializers.CharField(read_only=True)  # type: ignore[assignment]

    class Meta(DefinitionSerializer.Meta):
        fields = [*DefinitionSerializer.Meta.fields, "document", "source"]
        read_only_fields = fields

    def get_document(self, obj: PathwayDefinition) -> dict[str, Any]:
        return definition_document(obj)


class UploadSerializer(StrictSerializer):
    source = serializers.CharField(  # type: ignore[assignment]  # the field, not Field.source
        max_length=1_000_000, trim_whitespace=False
    )
    format = serializers.ChoiceField(choices=["yaml", "json"], default="yaml")


def _actor(request: Request) -> Actor:
    return Actor(id=f"user:{request.user.pk}")


def _require_manager(request: Request) -> None:
    if not request.user.has_perm("workflows.add_pathwaydefinition"):
        raise PermissionDenied(
            _("managing pathway definitions needs %(perm)s")
            % {"perm": "workflows.add_pathwaydefinition"}
        )


class DefinitionCursor(Cursor):
    ordering = ("key", "-version", "id")


class DefinitionListView(IdempotentPostMixin, ListAPIView[PathwayDefinition]):
    parser_classes = [BoundedJSONParser, PathwaySourceParser, TextYamlParser, PlainTextParser]
    serializer_class = DefinitionSerializer
    pagination_class = DefinitionCursor

    def get_queryset(self) -> QuerySet[PathwayDefinition]:
        params = self.request.query_params
        return definition_list(key=params.get("key"), status=params.get("status"))

    @extend_schema(
        parameters=[
            OpenApiParameter("key", str, description="Only this pathway's versions"),
            OpenApiParameter("status", str, description="draft, active or retired"),
        ],
        summary="List pathway definitions",
        description=(
            "Every version of every pathway definition, by key then newest version first, "
            "with its status (draft, active, retired). Open to any authenticated caller."
        ),
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=UploadSerializer,
        responses={201: DefinitionSerializer, 200: DefinitionSerializer},
        summary="Upload a pathway definition as a draft",
        description=(
            "Upload a definition as a draft. Send JSON {source, format}, or the YAML document "
            "itself with Content-Type application/yaml. A document that does not validate "
            "gets 400 with every problem (field = dotted location, line, column). A document "
            "already stored answers 200 with it; a key and version already active or retired "
            "with other content is a 409 definition-conflict. For coordinators "
            "and platforms allowed to manage pathway definitions (403 otherwise)."
        ),
    )
    def post(self, request: Request) -> Response:
        _require_manager(request)
        payload = UploadSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        result = definition_upload(
            source=payload.validated_data["source"],
            fmt=payload.validated_data["format"],
            actor=_actor(request),
        )
        code = 201 if result.created else 200
        return Response(DefinitionSerializer(result.definition).data, status=code)


class DefinitionDetailView(APIView):
    @extend_schema(
        responses=DefinitionDetailSerializer,
        summary="Read one version of a pathway definition",
        description=(
            "One version of a pathway definition with its document (states, events, tasks, "
            "alerts). 404 if the key or the version does not exist."
        ),
    )
    def get(self, request: Request, key: str, version: int) -> Response:
        return Response(DefinitionDetailSerializer(definition_get(key=key, version=version)).data)


class DefinitionPublishView(IdempotentPostMixin, APIView):
    @extend_schema(
        request=None,
        responses=DefinitionSerializer,
        summary="Publish a draft definition",
        description=(
            "Make this draft version active: new pathways of its key start on its highest "
            "active version; running pathways carry on. Publishing an active version again "
            "changes nothing; a retired one is a 409 definition-conflict. No body. For "
            "coordinators and platforms allowed to manage pathway definitions (403 otherwise)."
        ),
    )
    def post(self, request: Request, key: str, version: int) -> Response:
        _require_manager(request)
        refuse_unknown_fields(request.data)
        definition = definition_activate(key=key, version=version, actor=_actor(request))
        return Response(DefinitionSerializer(definition).data)


class DefinitionRetireView(IdempotentPostMixin, APIView):
    @extend_schema(
        request=None,
        responses=DefinitionSerializer,
        summary="Retire an active definition",
        description=(
            "No new pathway starts on this version; running ones carry on. Retiring a retired "
            "version again changes nothing. No body. For coordinators and platforms allowed to "
            "manage pathway definitions (403 otherwise)."
        ),
    )
    def post(self, request: Request, key: str, version: int) -> Response:
        _require_manager(request)
        refuse_unknown_fields(request.data)
        definition = definition_retire(key=key, version=version, actor=_actor(request))
        return Response(DefinitionSerializer(definition).data)


class DefinitionDiagramView(APIView):
    @extend_schema(
        responses={(200, "image/svg+xml"): OpenApiResponse(response=OpenApiTypes.STR)},
        parameters=[
            OpenApiParameter("lang", str, enum=["en", "fr"], description="Labels' language")
        ],
        summary="Draw a pathway definition",
        description="The definition's state diagram as an SVG image, labelled in English or "
        "French.",
    )
    def get(self, request: Request, key: str, version: int) -> HttpResponse:
        definition = definition_get(key=key, version=version)
        language = request.query_params.get("lang") or "en"
        svg = render_definition_svg(definition_document(definition), language=language)
        return HttpResponse(svg, content_type="image/svg+xml")
