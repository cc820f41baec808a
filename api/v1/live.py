"""Tokens opening a live WebSocket connection (docs/live-updates.md).

`POST /api/v1/live/tokens/` by an authenticated user returns a signed token valid for
LIVE_TOKEN_SECONDS and usable once: `/ws/updates/?token=...`. It lets a client authenticated
otherwise than by the session cookie open a socket without putting a long-lived secret in the
URL.
"""

from __future__ import annotations

from typing import cast

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.serializers import refuse_unknown_fields
from live.tokens import live_token_issue


class LiveTokenView(APIView):
    @extend_schema(
        request=None,
        responses={
            201: inline_serializer(
                "LiveToken",
                {
                    "token": serializers.CharField(),
                    "expires_in": serializers.IntegerField(help_text="seconds"),
                    "url": serializers.CharField(),
                },
            )
        },
        summary="Get a single-use token for live updates",
        description=(
            "A token opening one WebSocket connection to /ws/updates/ (as ?token=), valid for "
            "expires_in seconds and usable once; the connection then receives the events of "
            "what the caller may see (see the live updates documentation). No body."
        ),
    )
    def post(self, request: Request) -> Response:
        # IsAuthenticated (the default permission) has let only a real user through.
        refuse_unknown_fields(request.data)
        token = live_token_issue(user=cast(AbstractBaseUser, request.user))
        seconds = int(getattr(settings, "LIVE_TOKEN_SECONDS", 60))
        response = Response(
            {"token": token, "expires_in": seconds, "url": "/ws/updates/?token=" + token},
            status=201,
        )
        response["Cache-Control"] = "no-store"
        return response
