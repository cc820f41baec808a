"""ASGI entry point: HTTP through the project's handler (config.handlers; Django's own with
HTTP_HANDLER=django), WebSocket through Channels, and
the lifespan protocol, which starts the outbox
relay inside the web process when LIVE_RELAY_EMBEDDED is on (the embedded default: events
written by the Celery worker reach this process's clients through its in-memory channel
layer)."""

from __future__ import annotations

import asyncio
import gc
import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

from django.conf import settings
from django.core.asgi import get_asgi_application

from config.handlers import get_asgi_application as sync_stack_application

# Django must be set up before anything imports models. Which handler serves HTTP is read at
# start-up: the project's by default, Django's own to compare them (bench/api_transitions.py
# --compare measures both in one run; the figures are in docs/request-path.md).
django_asgi_app = (
    get_asgi_application() if settings.HTTP_HANDLER == "django" else sync_stack_application()
)

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402


async def lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Start the embedded relay on startup; stop it (finishing its current batch) on
    shutdown."""
    from live.relay import relay_forever

    stop = asyncio.Event()
    relay: asyncio.Task[None] | None = None
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
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


def settle_heap() -> None:
    """Put what start-up built (modules, models, URL patterns, settings, the application:
    some 150,000 objects that live as long as the process) out of the cyclic collector's
    reach (gc.freeze, Python's documented API for long-lived start-up state). A full
    collection then walks only what requests leave behind: on the triage board at ten
    times the demo data, the pause every ~20 requests fell from ~55 ms to ~7 ms
    (bench/pages.py measures the page both ways in one run). Garbage is collected first,
    so nothing unreachable is kept."""
    gc.collect()
    gc.freeze()


settle_heap()
