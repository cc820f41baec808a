"""Personal API tokens: the caller's own, listed, created (the token is in the response to
the creation and nowhere else) and revoked. Use: `Authorization: Token pct_...`.

Not reachable with OAuth2 tokens (api.scopes gives these routes no scope family). A
personal token creates tokens only if it was created with `can_create_tokens`, and none
that outlives it (api.services.api_tokens). Creation does not honour
Idempotency-Key on purpose: a stored response would keep the token in clear.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet
from django.urls import URLPattern, path
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.models import ApiToken
from api.pagination import Cursor
from api.selectors import api_token_list
from api.serializers import StrictSerializer
from api.services.api_tokens import MAX_LIFETIME, api_token_create, api_token_revoke


class ApiTokenSerializer(serializers.ModelSerializer[ApiToken]):
    id = serializers.CharField(source="token_key", help_text="The token's first characters.")
    expires_at = serializers.DateTimeField(source="expiry", allow_null=True)
    created_at = serializers.DateTimeField(source="created")

    class Meta:
        model = ApiToken
        fields = ["id", "name", "created_at", "expires_at", "last_used_at", "can_create_tokens"]
        read_only_fields = fields


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(help_text="Shown once: only its digest is stored.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class ApiTokenCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=1000)
    lifetime_days = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_LIFETIME.days,
        help_text=(
            "Default: 90 days (API_TOKEN_DAYS). A token created with another token expires "
            "no later than that one."
        ),
    )
    can_create_tokens = serializers.BooleanField(
        required=False,
        default=False,
        help_text=(
            "Whether requests made with the new token may create tokens (none outliving "
            "it). Default: false."
        ),
    )


class TokenCursor(Cursor):
    ordering = ("-created", "-digest")


def _user(request: Request) -> AbstractBaseUser:
    user = request.user
    assert isinstance(user, AbstractBaseUser)  # IsAuthenticated has refused anything else
    return user


@extend_schema_view(
    get=extend_schema(
        summary="List your personal API tokens",
        description=(
            "The caller's own personal API tokens: name, prefix, creation, expiry and last "
            "use; never the token itself."
        ),
    )
)
class ApiTokenListView(ListAPIView[ApiToken]):
    serializer_class = ApiTokenSerializer
    pagination_class = TokenCursor

    def get_queryset(self) -> QuerySet[ApiToken]:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return api_token_list(user=AnonymousUser())
        return api_token_list(user=self.request.user)

    @extend_schema(
        request=ApiTokenCreateSerializer,
        responses={201: ApiTokenCreatedSerializer, 409: OpenApiResponse(description="Name taken")},
        summary="Create a personal API token",
        description=(
            "Create a personal API token, sent as Authorization: Token <token>; the response "
            "is the only copy of token. With a personal token, only one created with "
            "can_create_tokens may create tokens, none expiring after it (403 otherwise). "
            "A name already used by one of your tokens is a 409."
        ),
    )
    def post(self, request: Request) -> Response:
        data = ApiTokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        days = data.validated_data.get("lifetime_days")
        created = api_token_create(
            user=_user(request),
            name=data.validated_data["name"],
            actor=_user(request),
            lifetime=dt.timedelta(days=days) if days is not None else None,
            can_create_tokens=data.validated_data["can_create_tokens"],
            # The personal token this request is made with, if any (None: a web session).
            creator_token=request.auth if isinstance(request.auth, ApiToken) else None,
        )
        body = {**ApiTokenSerializer(created.token).data, "token": created.secret}
        response = Response(body, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response


class ApiTokenDetailView(APIView):
    @extend_schema(
        responses={204: None},
        summary="Revoke a personal API token",
        description="Revoke one of your tokens, at once; 404 for a token that is not yours.",
    )
    def delete(self, request: Request, token_id: str) -> Response:
        api_token_revoke(user=_user(request), token_id=token_id, actor=_user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns: list[URLPattern] = [
    path("tokens/", ApiTokenListView.as_view(), name="tokens"),
    path("tokens/<str:token_id>/", ApiTokenDetailView.as_view(), name="token-detail"),
]
