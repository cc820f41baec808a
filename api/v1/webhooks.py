"""Webhook subscriptions for platforms, and the log of their deliveries.

A user sees and manages only the subscriptions they made; anyone else's answers 404.
Creating one needs the model permission `live.add_webhooksubscription` (given to
platform service accounts and operations staff). The signing secret is in the creation
response only. A failed delivery can be replayed by the subscription's owner here (and by
operations staff in the admin). docs/webhooks.md tells receivers how to check signatures.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import QuerySet
from django.urls import URLPattern, path
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.audit import audit_rows_read, page_rows, query_detail
from api.idempotency import IdempotentPostMixin
from api.pagination import Cursor
from api.serializers import StrictSerializer, refuse_unknown_fields
from live.models import WebhookDelivery, WebhookSubscription
from live.selectors import (
    webhook_delivery_get,
    webhook_delivery_list,
    webhook_subscription_get,
    webhook_subscription_list,
)
from live.services.webhooks import (
    ALL_EVENTS,
    event_id,
    webhook_deliveries_replay_failed,
    webhook_delivery_replay,
    webhook_subscription_create,
    webhook_subscription_deactivate,
)

ADD_PERMISSION = "live.add_webhooksubscription"


class ById(Cursor):
    ordering = "id"


class SubscriptionSerializer(serializers.ModelSerializer[WebhookSubscription]):
    patient = serializers.IntegerField(source="patient_id", allow_null=True, read_only=True)
    event_types = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = WebhookSubscription
        fields = [
            "id", "url", "event_types", "patient", "active", "description", "created_at",
            "version",
        ]  # fmt: skip
        read_only_fields = fields


class SubscriptionCreatedSerializer(SubscriptionSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="The signing secret. Shown here once; store it now."
    )

    class Meta(SubscriptionSerializer.Meta):
        fields = [*SubscriptionSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class SubscriptionCreateSerializer(StrictSerializer):
    url = serializers.CharField(max_length=500, help_text="https:// URL receiving the POSTs.")
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=64),
        min_length=1,
        max_length=50,
        help_text=f"Event types to receive, or [{ALL_EVENTS!r}] for all.",
    )
    patient = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="Only this patient's events."
    )
    description = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )


class DeliverySerializer(serializers.ModelSerializer[WebhookDelivery]):
    subscription = serializers.IntegerField(source="subscription_id", read_only=True)
    event_id = serializers.SerializerMethodField(
        help_text="The event's id as sent in Parcours-Event-Id: its position, in commit order."
    )
    patient = serializers.IntegerField(source="patient_id", allow_null=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "subscription", "event_id", "event_type", "patient", "status", "attempts",
            "next_attempt_at", "last_attempt_at", "last_status_code", "last_error", "created_at",
            "replays", "replayed_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_event_id(self, delivery: WebhookDelivery) -> int:
        return event_id(delivery)


class ReplayedSerializer(serializers.Serializer[Any]):
    replayed = serializers.IntegerField(help_text="How many failed deliveries were replayed.")


def _owner(request: Request) -> AbstractBaseUser:
    return cast(AbstractBaseUser, request.user)


@extend_schema_view(
    get=extend_schema(
        summary="List your webhook subscriptions",
        description=(
            "The caller's own webhook subscriptions, active or deactivated (never the signing "
            "secret)."
        ),
    )
)
class SubscriptionListView(IdempotentPostMixin, ListAPIView[WebhookSubscription]):
    serializer_class = SubscriptionSerializer
    pagination_class = ById

    def get_queryset(self) -> QuerySet[WebhookSubscription]:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return WebhookSubscription.objects.none()
        return webhook_subscription_list(owner=self.request.user)

    @extend_schema(
        request=SubscriptionCreateSerializer,
        responses={201: SubscriptionCreatedSerializer},
        summary="Subscribe to events by webhook",
        description=(
            "Receive the chosen event types as signed POSTs to an https URL, for every "
            "patient the caller may see or for one. The response holds the signing secret, "
            "shown once. A URL on a private network, an unknown event type or a patient the "
            "caller may not see is a 400 naming the field. For platforms whose token holds "
            "webhooks:write (403 otherwise); see the webhooks documentation."
        ),
    )
    def post(self, request: Request) -> Response:
        if not request.user.has_perm(ADD_PERMISSION):
            detail = _("this needs the permission %(perm)s") % {"perm": ADD_PERMISSION}
            raise PermissionDenied(detail)
        data = SubscriptionCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        subscription, secret = webhook_subscription_create(
            owner=_owner(request),
            url=values["url"],
            event_types=values["event_types"],
            patient_id=values["patient"],
            description=values["description"],
        )
        subscription.secret = secret
        return Response(SubscriptionCreatedSerializer(subscription).data, status=201)


class SubscriptionDetailView(APIView):
    @extend_schema(
        responses=SubscriptionSerializer,
        summary="Read a webhook subscription",
        description="One of the caller's subscriptions; 404 for another's.",
    )
    def get(self, request: Request, pk: int) -> Response:
        subscription = webhook_subscription_get(owner=request.user, subscription_id=pk)
        return Response(SubscriptionSerializer(subscription).data)

    @extend_schema(
        responses={204: None},
        summary="Deactivate a webhook subscription",
        description="Deactivates the subscription: nothing more is sent, pending deliveries "
        "are dropped; the subscription and its delivery log stay readable.",
    )
    def delete(self, request: Request, pk: int) -> Response:
        webhook_subscription_deactivate(owner=_owner(request), subscription_id=pk)
        return Response(status=204)


class DeliveryListView(ListAPIView[WebhookDelivery]):
    serializer_class = DeliverySerializer
    pagination_class = ById

    def get_queryset(self) -> QuerySet[WebhookDelivery]:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return WebhookDelivery.objects.none()
        status = self.request.query_params.get("status") or None
        if status is not None and status not in WebhookDelivery.Status.values:
            raise serializers.ValidationError(
                {"status": [f"one of {', '.join(WebhookDelivery.Status.values)}"]}
            )
        return webhook_delivery_list(
            owner=self.request.user, subscription_id=self.kwargs["pk"], status=status
        )

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=list(WebhookDelivery.Status.values)),
        ],
        summary="List a subscription's deliveries",
        description=(
            "The delivery log of one of the caller's subscriptions: each event sent, its "
            "status, attempts and the receiver's last answer. 404 for another's subscription."
        ),
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        # The log names patients and what happened to them: recorded per patient.
        rows = [(delivery.patient_id, delivery.pk) for delivery in page_rows(self)]
        detail = {"subscription": kwargs["pk"], **query_detail(request, "status")}
        audit_rows_read(request, resource_type="WebhookDelivery", rows=rows, detail=detail)
        return response


class DeliveryReplayView(APIView):
    @extend_schema(
        operation_id="v1_webhooks_delivery_replay",
        request=None,
        responses=DeliverySerializer,
        summary="Replay a failed delivery",
        description="Sends a failed delivery again: due at once, with the whole retry schedule "
        "again, the same body and event id. 409 if it is not failed or the subscription was "
        "deactivated.",
    )
    def post(self, request: Request, pk: int, delivery_pk: int) -> Response:
        delivery = webhook_delivery_get(
            owner=request.user, subscription_id=pk, delivery_id=delivery_pk
        )
        refuse_unknown_fields(request.data)
        replayed = webhook_delivery_replay(delivery_id=delivery.pk, actor=_owner(request))
        return Response(DeliverySerializer(replayed).data)


class FailedDeliveriesReplayView(APIView):
    @extend_schema(
        operation_id="v1_webhooks_deliveries_replay_failed",
        request=None,
        responses=ReplayedSerializer,
        summary="Replay every failed delivery",
        description="Replays every failed delivery of the subscription (after an outage of "
        "the receiver). 409 if the subscription was deactivated.",
    )
    def post(self, request: Request, pk: int) -> Response:
        webhook_subscription_get(owner=request.user, subscription_id=pk)
        refuse_unknown_fields(request.data)
        count = webhook_deliveries_replay_failed(subscription_id=pk, actor=_owner(request))
        return Response(ReplayedSerializer({"replayed": count}).data)


urlpatterns: list[URLPattern] = [
    path("webhooks/", SubscriptionListView.as_view(), name="webhooks"),
    path("webhooks/<int:pk>/", SubscriptionDetailView.as_view(), name="webhook-detail"),
    path("webhooks/<int:pk>/deliveries/", DeliveryListView.as_view(), name="webhook-deliveries"),
    path(
        "webhooks/<int:pk>/deliveries/replay/",
        FailedDeliveriesReplayView.as_view(),
        name="webhook-deliveries-replay",
    ),
    path(
        "webhooks/<int:pk>/deliveries/<int:delivery_pk>/replay/",
        DeliveryReplayView.as_view(),
        name="webhook-delivery-replay",
    ),
]
