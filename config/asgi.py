"""ASGI entry point: HTTP through Django's own ASGI handler, WebSocket through Channels, and
the lifespan protocol, which tunes the garbage collector (GC_TUNING) and starts the outbox
relay inside the web process when LIVE_RELAY_EMBEDDED is on (the embedded default: events
written by the Celery worker reach this process's clients through its in-memory channel
layer)."""

from __future__ import annotations

import asyncio
import gc
import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

from django.core.asgi import get_asgi_application

# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402

# How many more container objects a process may allocate than it frees before the cyclic
# collector runs (Python's default: 700). A request allocates thousands (model instances,
# dicts, querysets) that reference counting frees by itself; a collection every 700 of them
# cost several percent of a task action's CPU (measured in-process: 3.5 -> 3.25 ms with the
# freeze below; 2,000 to 50,000 made no difference between them).
#
# Kept for the end-to-end benchmark's goal (ratio >= 0.08 against pgbench), which this path
# reaches only just: `bench/api_transitions.py --compare` measures the web processes with and
# without it in one run. In the two runs where the goal was within reach the ratio was 0.071
# without it and 0.089, 0.094 with it; later runs on a busier machine were within the ratio's
# noise, while the web processes' CPU per completion was lower with it in three runs of four
# (about 6%). Every figure: docs/request-path.md. GC_TUNING=false turns it off.
GC_YOUNG_THRESHOLD = 5000


def tune_garbage_collection() -> None:
    """Once the application is loaded and before it serves: what exists now (modules,
    settings, URL patterns) is kept out of the collector's scans (gc.freeze), and young
    collections wait for GC_YOUNG_THRESHOLD allocations."""
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, GC_YOUNG_THRESHOLD), middle, old)


async def lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Tune the garbage collector and start the embedded relay on startup; stop the relay
    (finishing its current batch) on shutdown."""
    from live.relay import relay_forever

    stop = asyncio.Event()
    relay: asyncio.Task[None] | None = None
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if settings.GC_TUNING:
                tune_garbage_collection()
            if settings.LIVE_RELAY_EMBEDDED:
                relay = asyncio.create_task(relay_forever(stop))
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            stop.set()
            if relay is not None:
                await relay
            await send({"type": "lifespan.shutdown.complete"})
            return


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
        "lifespan": lifespan,
    }
)
