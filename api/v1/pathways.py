"""Care pathways: start, read, fire an event, history, available events, diagram."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.audit import audit_read, audit_rows_read, page_rows, patient_id_param, query_detail
from api.idempotency import IdempotentPostMixin
from api.pagination import Cursor
from api.preconditions import PreconditionFailed, etag, expected_version
from api.schema import IF_MATCH, etag_header
from api.serializers import StrictSerializer
from coordination.models import CarePathway
from coordination.selectors import access_care_pathway, pathway_monitoring, visible_care_pathways
from coordination.services import care_pathway_fire, care_pathway_start
from coordination.services.pathways import actor_for
from patients.models import AuditEvent
from patients.selectors import access_patient
from workflows.definition.limits import (
    MAX_DATA_BYTES,
    MAX_DATA_DEPTH,
    MAX_DATA_VALUES,
    data_problem,
    size_problem,
)
from workflows.errors import StaleRevision
from workflows.models import HistoryEntry
from workflows.selectors import available_transitions, instance_diagram_svg, instance_history

ETAG_PREFIX = "r"


class MonitoringSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=["active", "suspended"])
    reason = serializers.ChoiceField(
        choices=["consent_withdrawn"], allow_null=True, help_text="Why it is suspended."
    )
    since = serializers.DateTimeField(allow_null=True, help_text="When it was suspended.")


class CarePathwaySerializer(serializers.ModelSerializer[CarePathway]):
    pathway = serializers.SerializerMethodField()
    monitoring = serializers.SerializerMethodField(
        help_text="The pathway's remote monitoring, null when it watches no measurement or has "
        "ended: `suspended` (reason `consent_withdrawn`, `since` the withdrawal) while the "
        "patient withdraws `remote_monitoring`, when remote readings are refused and no "
        "measurement is expected; `active` otherwise."
    )
    state = serializers.CharField(source="instance.state", read_only=True)
    status = serializers.CharField(source="instance.status", read_only=True)
    revision = serializers.IntegerField(source="instance.revision", read_only=True)

    class Meta:
        model = CarePathway
        fields = [
            "id", "patient", "pathway", "state", "status", "revision", "risk_score",
            "risk_band", "risk_updated_at", "created_at", "monitoring",
        ]  # fmt: skip
        read_only_fields = fields

    def get_pathway(self, obj: CarePathway) -> dict[str, Any]:
        assert obj.instance is not None
        definition = obj.instance.definition
        return {"key": definition.key, "version": definition.version, "title": definition.title}

    @extend_schema_field(MonitoringSerializer(allow_null=True))
    def get_monitoring(self, obj: CarePathway) -> dict[str, Any] | None:
        monitoring = pathway_monitoring(obj)
        return None if monitoring is None else MonitoringSerializer(monitoring).data


def _within_limits(value: dict[str, Any], name: str) -> dict[str, Any]:
    """`value` if guards may read it (the engine's bounds on size, values and nesting);
    else a 400 naming what is too large, before anything is looked up or written."""
    problem = data_problem(value, name) or size_problem(json.dumps(value), name)
    if problem is not None:
        raise serializers.ValidationError(problem)
    return value


_LIMITS = (
    f"JSON object of at most {MAX_DATA_BYTES // 1024} KiB, {MAX_DATA_VALUES} values (every "
    f"object, list, text, number, true, false and null counts one) and {MAX_DATA_DEPTH} "
    "levels of nesting."
)


class StartSerializer(StrictSerializer):
    patient = serializers.IntegerField(min_value=1)
    pathway = serializers.SlugField(max_length=64, help_text="Key of the pathway definition.")
    context = serializers.DictField(  # type: ignore[assignment]  # the field, not .context
        required=False, default=dict, help_text=f"Data the guards read as `context`: a {_LIMITS}"
    )

    def validate_context(self, value: dict[str, Any]) -> dict[str, Any]:
        return _within_limits(value, "context")


class FireSerializer(StrictSerializer):
    event = serializers.RegexField(r"^[a-z][a-z0-9_]{0,62}$", max_length=63)
    payload = serializers.DictField(
        required=False, default=dict, help_text=f"Data the guards read as `payload`: a {_LIMITS}"
    )

    def validate_payload(self, value: dict[str, Any]) -> dict[str, Any]:
        return _within_limits(value, "payload")


class HistorySerializer(serializers.ModelSerializer[HistoryEntry]):
    class Meta:
        model = HistoryEntry
        fields = [
            "revision", "kind", "event", "from_state", "to_state", "actor", "actor_roles",
            "payload", "occurred_at",
        ]  # fmt: skip
        read_only_fields = fields


class AvailableEventSerializer(serializers.Serializer[Any]):
    event = serializers.CharField()
    to = serializers.CharField()
    guarded = serializers.BooleanField()


def _with_etag(response: Response, pathway: CarePathway) -> Response:
    assert pathway.instance is not None
    response["ETag"] = etag(ETAG_PREFIX, pathway.instance.revision)
    return response


@extend_schema_view(
    get=extend_schema(
        parameters=[OpenApiParameter("patient", int, description="Only this patient's pathways.")],
        summary="List care pathways",
        description=(
            "The care pathways of the patients the caller may see, newest first, each with its "
            "current state, status and triage (risk band and score)."
        ),
    )
)
class CarePathwayListView(IdempotentPostMixin, ListAPIView[CarePathway]):
    serializer_class = CarePathwaySerializer

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return CarePathway.objects.none()
        rows = visible_care_pathways(self.request.user)
        patient = self.request.query_params.get("patient")
        if patient is not None and patient.isdigit():
            # An id beyond the keys' range is no patient's (and SQLite refuses it in a query).
            key = patient_id_param(patient)
            rows = rows.filter(patient_id=key) if key is not None else rows.none()
        return rows.order_by("-id")

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().list(request, *args, **kwargs)
        # One record per patient whose pathways the page holds, and one for the patient
        # searched (?patient=) if it holds none of its pathways (refused or empty).
        audit_rows_read(
            request,
            resource_type="CarePathway",
            rows=[(pathway.patient_id, pathway.pk) for pathway in page_rows(self)],
            searched_patient_id=patient_id_param(request.query_params.get("patient")),
            detail=query_detail(request, "patient"),
        )
        return response

    @extend_schema(
        request=StartSerializer,
        responses={
            201: CarePathwaySerializer,
            404: OpenApiResponse(description="No such patient, or not one the caller may see"),
        },
        parameters=[etag_header(201)],
        summary="Start a care pathway for a patient",
        description=(
            "Start the active version of a pathway (its key) for the patient, with an optional "
            "context the pathway's guards read; its first tasks open for the care team at "
            "once. For members of the patient's care team (403 otherwise; 404 for a patient "
            "the caller may not see). A pathway the patient already follows is a 409 naming "
            "the running one, unless the definition allows several; an unknown key is a 400."
        ),
    )
    def post(self, request: Request) -> Response:
        data = StartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        patient = access_patient(user=request.user, patient_id=data.validated_data["patient"])
        pathway = care_pathway_start(
            patient=patient,
            key=data.validated_data["pathway"],
            user=request.user,  # type: ignore[arg-type]
            context=data.validated_data["context"],
            entry_point=AuditEvent.EntryPoint.REST,
        )
        pathway = access_care_pathway(user=request.user, pathway_id=pathway.pk)
        return _with_etag(Response(CarePathwaySerializer(pathway).data, status=201), pathway)


class CarePathwayDetailView(APIView):
    @extend_schema(
        responses=CarePathwaySerializer,
        parameters=[etag_header(200)],
        summary="Read a care pathway",
        description=(
            "One care pathway: its state, status, context and triage. The ETag is the pathway's "
            "revision, for If-Match when firing an event. 404 for a pathway the caller may not "
            "see."
        ),
    )
    def get(self, request: Request, pk: int) -> Response:
        pathway = access_care_pathway(user=request.user, pathway_id=pk)
        audit_read(
            request, resource_type="CarePathway", resource_id=pk, patient_id=pathway.patient_id
        )
        return _with_etag(Response(CarePathwaySerializer(pathway).data), pathway)


class CarePathwayEventView(IdempotentPostMixin, APIView):
    @extend_schema(
        request=FireSerializer,
        responses=CarePathwaySerializer,
        parameters=[IF_MATCH, etag_header(200)],
        summary="Fire an event on a care pathway",
        description=(
            "Fire an event (one of available-events) with an optional payload; the pathway "
            "moves on and its tasks open or close. For members of the care team whose role "
            "the transition allows. If-Match with the pathway's ETag makes it conditional: "
            "412 precondition-failed if the pathway moved since. A transition that does not "
            "apply now is a 409 transition-refused with its reason."
        ),
    )
    def post(self, request: Request, pk: int) -> Response:
        pathway = access_care_pathway(user=request.user, pathway_id=pk)
        data = FireSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        revision = expected_version(request, ETAG_PREFIX)
        try:
            care_pathway_fire(
                pathway=pathway,
                event=data.validated_data["event"],
                user=request.user,  # type: ignore[arg-type]
                payload=data.validated_data["payload"],
                expected_revision=revision,
                entry_point=AuditEvent.EntryPoint.REST,
            )
        except StaleRevision as exc:
            raise PreconditionFailed(str(exc)) from None
        pathway = access_care_pathway(user=request.user, pathway_id=pk)
        return _with_etag(Response(CarePathwaySerializer(pathway).data), pathway)


class HistoryCursor(Cursor):
    ordering = "revision"


@extend_schema_view(
    get=extend_schema(
        summary="Read a care pathway's history",
        description=(
            "Every transition of the pathway in order: the event, from and to which state, "
            "who fired it and when. For whoever may see the pathway; 404 otherwise."
        ),
    )
)
class CarePathwayHistoryView(ListAPIView[HistoryEntry]):
    serializer_class = HistorySerializer
    pagination_class = HistoryCursor

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return HistoryEntry.objects.none()
        self.pathway = access_care_pathway(user=self.request.user, pathway_id=self.kwargs["pk"])
        assert self.pathway.instance_id is not None
        return instance_history(instance_id=self.pathway.instance_id)

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        audit_read(
            request,
            resource_type="CarePathwayHistory",
            resource_id=kwargs["pk"],
            patient_id=self.pathway.patient_id,
        )
        return response


class CarePathwayAvailableEventsView(APIView):
    @extend_schema(
        responses=AvailableEventSerializer(many=True),
        summary="List the events the caller may fire now",
        description=(
            "The events of the pathway's current state that the caller's roles allow, each "
            "with its target state and whether a guard decides (a guarded event may still be "
            "refused with 409). For whoever may see the pathway; 404 otherwise."
        ),
    )
    def get(self, request: Request, pk: int) -> Response:
        pathway = access_care_pathway(user=request.user, pathway_id=pk)
        assert pathway.instance is not None
        actor = actor_for(request.user, pathway.patient_id)  # type: ignore[arg-type]
        audit_read(
            request,
            resource_type="CarePathwayAvailableEvents",
            resource_id=pk,
            patient_id=pathway.patient_id,
        )
        rows = [
            {"event": t.event, "to": t.target, "guarded": t.guard is not None}
            for t in available_transitions(pathway.instance, actor)
        ]
        return Response(AvailableEventSerializer(rows, many=True).data)


class CarePathwayDiagramView(APIView):
    @extend_schema(
        responses={(200, "image/svg+xml"): OpenApiResponse(response=OpenApiTypes.STR)},
        parameters=[
            OpenApiParameter("lang", str, enum=["en", "fr"], description="Labels' language")
        ],
        summary="Draw a care pathway",
        description=(
            "The pathway's state diagram as an SVG image, its current state marked. For "
            "whoever may see the pathway; 404 otherwise."
        ),
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        pathway = access_care_pathway(user=request.user, pathway_id=pk)
        assert pathway.instance is not None
        audit_read(
            request, resource_type="CarePathway", resource_id=pk, patient_id=pathway.patient_id
        )
        svg = instance_diagram_svg(
            pathway.instance, language=request.query_params.get("lang", "en")
        )
        return HttpResponse(svg, content_type="image/svg+xml")
