"""Break the glass: open a patient's record outside the care team in an emergency, and the
list of such openings that the patient's care team (its coordinators first) and the patient
read.

POST answers 404 to a caller who may neither see the patient nor break the glass, exactly as
for a missing patient; 409 to one who already sees it; 400 without a reason.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractUser
from django.db.models import QuerySet
from django.urls import URLPattern, path
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from api.audit import audit_read, client_address
from api.pagination import Cursor
from api.serializers import StrictSerializer, refuse_unknown_fields
from patients import errors as patients_errors
from patients.models import AuditEvent, BreakGlassGrant
from patients.selectors import access_patient, break_glass_grant_list
from patients.services import patient_break_glass


class BreakGlassGrantSerializer(serializers.ModelSerializer[BreakGlassGrant]):
    user = serializers.IntegerField(source="user_id", help_text="Who broke the glass.")
    user_name = serializers.SerializerMethodField()
    active = serializers.SerializerMethodField()

    class Meta:
        model = BreakGlassGrant
        fields = ["id", "user", "user_name", "reason", "started_at", "expires_at", "active"]
        read_only_fields = fields

    def get_user_name(self, grant: BreakGlassGrant) -> str:
        return grant.user.get_full_name() or grant.user.get_username()

    def get_active(self, grant: BreakGlassGrant) -> bool:
        now = self.context["now"]
        return bool(grant.started_at <= now < grant.expires_at)


class BreakGlassSerializer(StrictSerializer):
    reason = serializers.CharField(
        max_length=2000, help_text="Why the record must be opened now (required)."
    )


class GrantCursor(Cursor):
    ordering = ("-started_at", "-id")


class BreakGlassView(ListAPIView[BreakGlassGrant]):
    serializer_class = BreakGlassGrantSerializer
    pagination_class = GrantCursor

    def get_queryset(self) -> QuerySet[BreakGlassGrant]:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return BreakGlassGrant.objects.none()
        pk = self.kwargs["pk"]
        access_patient(user=self.request.user, patient_id=pk)
        active = self.request.query_params.get("active", "").lower() in ("1", "true", "yes")
        return break_glass_grant_list(patient_id=pk, active_only=active)

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "now": timezone.now()}

    @extend_schema(
        parameters=[OpenApiParameter("active", bool, description="Only unexpired grants")],
        summary="List break-the-glass accesses to a patient",
        description=(
            "Who opened the patient's record by breaking the glass, when, why and until "
            "when, newest first. For whoever may see the patient: its care team (the "
            "coordinators review these), and the patient."
        ),
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        audit_read(
            request,
            resource_type="BreakGlassGrant",
            action=AuditEvent.Action.SEARCH,
            patient_id=kwargs["pk"],
        )
        return response

    @extend_schema(
        request=BreakGlassSerializer,
        summary="Break the glass on a patient's record",
        responses={
            201: BreakGlassGrantSerializer,
            400: OpenApiResponse(description="No reason given"),
            404: OpenApiResponse(description="No such patient, or breaking the glass not allowed"),
            409: OpenApiResponse(description="The caller already sees the patient"),
        },
        description=(
            "Open the patient's record, read-only, for a limited time (4 hours by default), "
            "in an emergency, with a reason; for professionals allowed to break the glass "
            "(404 for anyone else, as for a patient that does not exist). "
            "Audited as a break-the-glass access with the reason; every read during the "
            "grant is audited with purpose emergency."
        ),
    )
    def post(self, request: Request, pk: int) -> Response:
        user = request.user
        assert isinstance(user, AbstractUser)  # IsAuthenticated has refused anything else
        refuse_unknown_fields(request.data, BreakGlassSerializer().accepted_fields())
        reason = request.data.get("reason", "") if hasattr(request.data, "get") else ""
        try:
            grant = patient_break_glass(
                user=user,
                patient_id=pk,
                reason=reason if isinstance(reason, str) else "",
                entry_point=AuditEvent.EntryPoint.REST,
                client_address=client_address(request),
            )
        except patients_errors.NotAllowed:
            # Someone who may neither see the patient nor break the glass learns nothing.
            raise patients_errors.PatientNotFound(pk, outcome="denied") from None
        context = {**self.get_serializer_context(), "now": grant.started_at}
        data = BreakGlassGrantSerializer(grant, context=context).data
        return Response(data, status=status.HTTP_201_CREATED)


urlpatterns: list[URLPattern] = [
    path("patients/<int:pk>/break-glass/", BreakGlassView.as_view(), name="patient-break-glass"),
]
