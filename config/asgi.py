"""ASGI entry point: HTTP through Django, WebSocket through Channels, and the lifespan
protocol, which starts the outbox relay inside the web process when LIVE_RELAY_EMBEDDED is
on (the embedded default: events written by the Celery worker reach this process's clients
through its in-memory channel layer)."""

from __future__ import annotations

import asyncio
import gc
import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

from config.handlers import get_asgi_application

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
