"""Alerts: the inbox of the patients the caller may see, in triage order, and their
acknowledgement."""

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
from rest_framework.views import APIView

from api.audit import audit_rows_read, client_address, page_rows, patient_id_param, query_detail
from api.idempotency import IdempotentPostMixin
from api.pagination import Cursor
from api.serializers import StrictSerializer
from coordination.models import AlertRecord, RiskBand, risk_of_rank
from coordination.selectors import ALERT_ORDER, alert_observations, visible_alerts
from coordination.services import alert_acknowledge
from coordination.services.acknowledgements import MAX_NOTE
from patients.models import AuditEvent, Observation

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
    acknowledged_at = serializers.DateTimeField(
        allow_null=True,
        read_only=True,
        help_text="When a member of the care team acknowledged the alert (null: never). An "
        "alert escalated after that (escalated_at later) is back in the inbox.",
    )
    acknowledged_by = serializers.IntegerField(
        source="acknowledged_by_id",
        allow_null=True,
        read_only=True,
        help_text="The user id of who acknowledged it.",
    )
    acknowledged_by_label = serializers.CharField(
        read_only=True, help_text="The name of who acknowledged it, as it was then."
    )

    class Meta:
        model = AlertRecord
        fields = [
            "id", "patient", "care_pathway", "name", "kind", "state", "event", "priority",
            "score", "band", "patient_risk", "fired", "task", "task_due_at", "observation",
            "raised_at", "last_seen_at", "repeats", "escalated_at", "acknowledged_at",
            "acknowledged_by", "acknowledged_by_label",
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
        parameters=[
            OpenApiParameter("patient", int, description="Only this patient's alerts."),
            OpenApiParameter(
                "include_acknowledged",
                bool,
                description="true: also the alerts already acknowledged (by default only "
                "those waiting: never acknowledged, or escalated since).",
            ),
        ],
        summary="List alerts in triage order",
        description="Alerts waiting in the inbox of the caller (never acknowledged, or "
        "escalated since they were), on the pathways of the patients the caller may see, most "
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
        params = self.request.query_params
        everything = params.get("include_acknowledged", "false")
        if everything not in ("true", "false"):
            raise ValidationError({"include_acknowledged": [_("true or false")]})
        rows = visible_alerts(self.request.user, include_acknowledged=everything == "true")
        patient = params.get("patient")
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


class AlertAcknowledgeSerializer(StrictSerializer):
    note = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=MAX_NOTE,
        default="",
        help_text="What was done or decided, kept in the alert's history.",
    )


class AlertAcknowledgeView(IdempotentPostMixin, APIView):
    @extend_schema(
        request=AlertAcknowledgeSerializer,
        responses=AlertSerializer,
        summary="Acknowledge an alert",
        description="Say the alert is in hand: it leaves the inbox (GET /api/v1/alerts/) "
        "until a worse repeat escalates it. Records who and when on the alert, an entry in "
        "its history (with the optional note), an audit record, and an alert.acknowledged "
        "event for live connections and webhooks. The alert's task, if any, is left as it is. "
        "For members of the patient's care team: 404 not-found for an alert the caller may "
        "not see, 403 not-allowed for one seen without being in the care team (a "
        "break-the-glass reader). 409 conflict, naming who and when, for an alert already "
        "acknowledged (of two people acknowledging it at once, the second gets this). With "
        "an Idempotency-Key, a retry gets the first answer.",
    )
    def post(self, request: Request, pk: int) -> Response:
        data = AlertAcknowledgeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        alert_acknowledge(
            user=request.user,
            alert_id=pk,
            note=data.validated_data["note"],
            entry_point=AuditEvent.EntryPoint.REST,
            client_address=client_address(request),
        )
        row = visible_alerts(request.user, include_acknowledged=True).get(pk=pk)
        context = {"observations": alert_observations([row])}
        return Response(AlertSerializer(row, context=context).data)
