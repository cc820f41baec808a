"""Alerts: the inbox of the patients the caller may see, in triage order."""

from __future__ import annotations

from typing import Any

from django.db.models import DateTimeField, IntegerField
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from api.audit import audit_rows_read, page_rows, patient_id_param, query_detail
from api.pagination import Cursor
from coordination.models import AlertRecord, RiskBand, risk_of_rank
from coordination.selectors import ALERT_ORDER, alert_observations, visible_alerts
from patients.models import Observation

_STAMP = serializers.DateTimeField()


class RiskSerializer(serializers.Serializer[Any]):
    band = serializers.ChoiceField(choices=RiskBand.choices)
    score = serializers.IntegerField(min_value=0)


class AlertObservationSerializer(serializers.ModelSerializer[Observation]):
    value = serializers.DecimalField(max_digits=12, decimal_places=4, coerce_to_string=False)

    class Meta:
        model = Observation
        fields = ["id", "code", "value", "unit", "effective_at"]
        read_only_fields = fields


class AlertSerializer(serializers.ModelSerializer[AlertRecord]):
    care_pathway = serializers.IntegerField(source="care_pathway_id", read_only=True)
    task = serializers.IntegerField(source="task_id", allow_null=True, read_only=True)
    task_due_at = serializers.DateTimeField(
        allow_null=True, read_only=True, help_text="Due time of the alert's task, if any."
    )
    patient_risk = serializers.SerializerMethodField(
        help_text="The patient's current band and score: the highest over their active "
        "pathways (what the inbox is ordered by)."
    )
    observation = serializers.SerializerMethodField(
        help_text="The measurement that raised the alert (null for a missing measurement)."
    )

    class Meta:
        model = AlertRecord
        fields = [
            "id", "patient", "care_pathway", "name", "kind", "state", "event", "priority",
            "score", "band", "patient_risk", "fired", "task", "task_due_at", "observation",
            "raised_at", "last_seen_at", "repeats", "escalated_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(RiskSerializer)
    def get_patient_risk(self, obj: AlertRecord) -> dict[str, Any]:
        band, score = risk_of_rank(obj.patient_risk_rank)  # type: ignore[attr-defined]
        return {"band": band, "score": score}

    @extend_schema_field(AlertObservationSerializer(allow_null=True))
    def get_observation(self, obj: AlertRecord) -> dict[str, Any] | None:
        found: dict[int, Observation] = self.context.get("observations", {})
        observation = found.get(obj.observation_id) if obj.observation_id else None
        if observation is None:
            return None
        return dict(AlertObservationSerializer(observation).data)


class AlertPagination(Cursor):
    """Triage order (coordination.selectors.ALERT_ORDER): the patient's band and score, the
    alert's priority, its task's due time (alerts without a task last), then id."""

    ordering = ALERT_ORDER
    annotated = {
        "patient_risk_rank": IntegerField(),
        "alert_priority_rank": IntegerField(),
        "task_due_at": DateTimeField(null=True),
    }


class AlertListView(ListAPIView[AlertRecord]):
    serializer_class = AlertSerializer
    pagination_class = AlertPagination

    @extend_schema(
        parameters=[OpenApiParameter("patient", int, description="Only this patient's alerts.")],
        summary="List alerts in triage order",
        description="Alerts raised on the pathways of the patients the caller may see, most "
        "pressing first: the patient's risk band (high first) and score (highest first), then "
        "the alert's priority (stat, asap, urgent, routine), then its task's due time "
        "(earliest first, alerts without a task last), then id. Practitioners only: anyone "
        "else gets an empty list.",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        audit_rows_read(
            request,
            resource_type="AlertRecord",
            rows=[(alert.patient_id, alert.pk) for alert in page_rows(self)],
            searched_patient_id=patient_id_param(request.query_params.get("patient")),
            detail=query_detail(request, "patient"),
        )
        return response

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return AlertRecord.objects.none()
        rows = visible_alerts(self.request.user)
        patient = self.request.query_params.get("patient")
        if patient is not None:
            if not patient.isdigit():
                raise ValidationError({"patient": [_("a patient id")]})
            key = patient_id_param(patient)
            rows = rows.filter(patient_id=key) if key is not None else rows.none()
        return rows

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        if args and isinstance(args[0], list):
            kwargs.setdefault("context", self.get_serializer_context())
            kwargs["context"]["observations"] = alert_observations(args[0])
        return super().get_serializer(*args, **kwargs)
