"""WebSocket routes (docs/live-updates.md)."""

from __future__ import annotations

from typing import Any

from django.urls import path

from live.consumers import UpdatesConsumer

websocket_urlpatterns: list[Any] = [
    path("ws/updates/", UpdatesConsumer.as_asgi()),
]
