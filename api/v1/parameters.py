"""Per-patient parameters of a care pathway: the declared ones with their current values,
setting one (with a reason), and their history. Reads are audited; the write is audited by
its service (coordination.services.parameters)."""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.audit import audit_read, client_address
from api.idempotency import IdempotentPostMixin
from api.pagination import Cursor
from api.serializers import StrictSerializer
from coordination.models import PathwayParameter
from coordination.selectors import access_care_pathway
from coordination.services.parameters import (
    MAX_REASON,
    ParameterValue,
    parameter_history,
    parameter_list,
    parameter_set,
    pathway_parameters,
)
from patients.models import AuditEvent


class ParameterSerializer(serializers.Serializer[ParameterValue]):
    name = serializers.CharField(read_only=True)
    title = serializers.JSONField(
        read_only=True, help_text="Text, or a mapping of language codes to text; null if none."
    )
    description = serializers.JSONField(read_only=True)
    unit = serializers.CharField(read_only=True, allow_null=True)
    default = serializers.FloatField(read_only=True)
    minimum = serializers.FloatField(read_only=True)
    maximum = serializers.FloatField(read_only=True)
    roles = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Care-team roles that may set it; empty: any professional of the care team.",
    )
    value = serializers.FloatField(read_only=True, help_text="The current value for the patient.")
    is_default = serializers.BooleanField(read_only=True)
    set_by = serializers.CharField(read_only=True, help_text='Who set it ("" for the default).')
    set_at = serializers.DateTimeField(read_only=True, allow_null=True)
    reason = serializers.CharField(read_only=True)
    may_set = serializers.BooleanField(read_only=True, help_text="Whether the caller may set it.")


class ParametersSerializer(serializers.Serializer[Any]):
    pathway = serializers.IntegerField(read_only=True)
    parameters = ParameterSerializer(many=True, read_only=True)


class ParameterSetSerializer(StrictSerializer):
    # Any text: a name the pathway does not declare is refused by the service, naming the
    # declared ones.
    name = serializers.CharField(max_length=63)
    value = serializers.DecimalField(
        max_digits=12,
        decimal_places=4,
        help_text="Within the parameter's minimum and maximum, in its unit.",
    )
    reason = serializers.CharField(max_length=MAX_REASON, help_text="Why it changes (required).")


class ParameterHistorySerializer(serializers.ModelSerializer[PathwayParameter]):
    value = serializers.FloatField(read_only=True)
    previous_value = serializers.FloatField(
        read_only=True, help_text="The value in effect before (the default if none was set)."
    )
    set_by_name = serializers.CharField(source="set_by_label", read_only=True)
    set_by_roles = serializers.SerializerMethodField()

    class Meta:
        model = PathwayParameter
        fields = [
            "id", "name", "value", "previous_value", "set_by", "set_by_name", "set_by_roles",
            "set_at", "reason",
        ]  # fmt: skip
        read_only_fields = fields

    def get_set_by_roles(self, obj: PathwayParameter) -> list[str]:
        return [role for role in obj.set_by_roles.split(",") if role]


class CarePathwayParametersView(IdempotentPostMixin, APIView):
    @extend_schema(
        responses=ParametersSerializer,
        summary="Read a care pathway's per-patient parameters",
        description="The parameters the pathway declares, each with its current value for "
        "the patient (the default until someone sets it) and who set it. For whoever may see "
        "the pathway; 404 otherwise.",
    )
    def get(self, request: Request, pk: int) -> Response:
        pathway, parameters = parameter_list(user=request.user, care_pathway_id=pk)
        audit_read(
            request,
            resource_type="PathwayParameter",
            resource_id=pk,
            patient_id=pathway.patient_id,
        )
        return Response(ParametersSerializer({"pathway": pk, "parameters": parameters}).data)

    @extend_schema(
        request=ParameterSetSerializer,
        responses={
            201: ParameterSerializer,
            400: OpenApiResponse(
                description="An unknown name (the declared ones are named), a value outside "
                "the bounds (named, with the unit), no reason"
            ),
            403: OpenApiResponse(
                description="The caller holds none of the parameter's roles in the care team"
            ),
            409: OpenApiResponse(description="The pathway has ended"),
        },
        summary="Set a per-patient parameter",
        description="Set one parameter for the patient, with the reason. Each setting is kept "
        "in the history; alert conditions read the new value (params.<name>) at once. For "
        "members of the care team in one of the parameter's roles.",
    )
    def post(self, request: Request, pk: int) -> Response:
        pathway = access_care_pathway(user=request.user, pathway_id=pk)
        data = ParameterSetSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        name = data.validated_data["name"]
        parameter_set(
            user=request.user,
            care_pathway_id=pathway.pk,
            name=name,
            value=data.validated_data["value"],
            reason=data.validated_data["reason"],
            entry_point=AuditEvent.EntryPoint.REST,
            client_address=client_address(request),
        )
        shown = pathway_parameters(pathway=pathway, user=request.user)
        [current] = [p for p in shown if p.name == name]
        return Response(ParameterSerializer(current).data, status=201)


class ParameterHistoryCursor(Cursor):
    ordering = "-id"


class CarePathwayParameterHistoryView(ListAPIView[PathwayParameter]):
    serializer_class = ParameterHistorySerializer
    pagination_class = ParameterHistoryCursor

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return PathwayParameter.objects.none()
        name = self.request.query_params.get("name")
        self.pathway, rows = parameter_history(
            user=self.request.user, care_pathway_id=self.kwargs["pk"], name=name
        )
        return rows

    @extend_schema(
        parameters=[OpenApiParameter("name", OpenApiTypes.STR, description="Only this parameter.")],
        summary="Read the history of a care pathway's parameters",
        description="Every setting of the pathway's parameters, the newest first, with its "
        "previous value, who set it and why. For whoever may see the pathway; 404 otherwise.",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        audit_read(
            request,
            resource_type="PathwayParameterHistory",
            resource_id=kwargs["pk"],
            patient_id=self.pathway.patient_id,
        )
        return response


urlpatterns: list[URLPattern] = [
    path(
        "pathways/<int:pk>/parameters/",
        CarePathwayParametersView.as_view(),
        name="pathway-parameters",
    ),
    path(
        "pathways/<int:pk>/parameters/history/",
        CarePathwayParameterHistoryView.as_view(),
        name="pathway-parameter-history",
    ),
]
