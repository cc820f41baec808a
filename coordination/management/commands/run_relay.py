"""`python manage.py run_relay`: publish outbox events until stopped (SIGTERM or Ctrl-C).

Run one or several next to the web processes when LIVE_RELAY_EMBEDDED is off; several at
once are safe: one publishes at a time, in position order, and another takes over if it stops
or stalls (live.services.outbox).
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from live.relay import relay_forever


class Command(BaseCommand):
    help = "Publish committed outbox events to live connections, until stopped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--poll", type=float, default=None, help="seconds between polls")

    def handle(self, *args: Any, **options: Any) -> None:
        asyncio.run(self._run(options["poll"]))

    async def _run(self, poll: float | None) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await relay_forever(stop, poll_seconds=poll)
