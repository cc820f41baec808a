"""The outbox relay: publishes committed events to the channel layer groups of the live
WebSocket connections (coordination.consumers).

It runs as `python manage.py run_relay` (one or several processes) and, in the embedded
default, inside each web process (config.asgi starts it on ASGI lifespan startup), so that
events written by the Celery worker still reach that process's clients through its
in-memory channel layer. Several relays at once are safe: see coordination.services.outbox.

Routing: an event about a patient goes to that patient's group; a care-team change also goes
to the member's user group (or service team group) so that a newly added member's
connections pick up the patient. Each connection re-checks every event against current
permissions before sending it: a group is an address, not an authorisation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections

from coordination import events
from coordination.models import OutboxEvent
from coordination.services.outbox import Publisher, outbox_relay_run_once

logger = logging.getLogger(__name__)

MESSAGE_TYPE = "outbox.event"  # handled by UpdatesConsumer.outbox_event


def patient_group(patient_id: int) -> str:
    return f"live.patient.{patient_id}"


def user_group(user_id: int) -> str:
    return f"live.user.{user_id}"


def team_group(team_id: int) -> str:
    return f"live.team.{team_id}"


def groups_for(event: OutboxEvent) -> list[str]:
    groups = []
    if event.patient_id is not None:
        groups.append(patient_group(event.patient_id))
    if event.type == events.CARE_TEAM_CHANGED:
        user_id, team_id = event.payload.get("user"), event.payload.get("service_team")
        if isinstance(user_id, int):
            groups.append(user_group(user_id))
        if isinstance(team_id, int):
            groups.append(team_group(team_id))
    return groups


def event_message(event: OutboxEvent) -> dict[str, Any]:
    """What clients receive (docs/live-updates.md): `id` is the event's position."""
    return {
        "type": "event",
        "id": event.position,
        "event": event.type,
        "patient": event.patient_id,
        "occurred_at": event.occurred_at.isoformat(),
        "payload": event.payload,
    }


def channel_layer_publisher(layer: Any = None) -> Publisher:
    """A publisher sending each event to its groups, in order. Meant to run in a thread
    (the relay's database work is synchronous); `async_to_sync` sends on the event loop
    that started that thread when there is one, which the in-memory layer needs."""
    layer = layer or get_channel_layer()

    async def send_all(messages: list[tuple[str, dict[str, Any]]]) -> None:
        for group, message in messages:
            await layer.group_send(group, message)

    # One hop to the event loop per batch, not per message.
    send = async_to_sync(send_all)

    def publish(batch: Sequence[OutboxEvent]) -> None:
        messages = []
        for event in batch:
            body = event_message(event)
            # `text`: the event encoded once here rather than by each receiving connection.
            message = {"type": MESSAGE_TYPE, "event": body, "text": json.dumps(body)}
            messages += [(group, message) for group in groups_for(event)]
        if messages:
            send(messages)

    return publish


def relay_once(publish: Publisher, limit: int) -> int:
    close_old_connections()
    return len(outbox_relay_run_once(publish=publish, limit=limit))


async def relay_forever(
    stop: asyncio.Event, *, poll_seconds: float | None = None, limit: int = 200
) -> None:
    """Publish until `stop` is set: at once while there is a backlog, otherwise every
    `poll_seconds`. A failure (database or channel layer down) is logged and retried with a
    growing pause (at most 5 s): nothing is marked published until it was sent."""
    poll = (
        poll_seconds
        if poll_seconds is not None
        else float(getattr(settings, "LIVE_RELAY_POLL_SECONDS", 0.05))
    )
    publish = channel_layer_publisher()
    # Its own thread, not the thread shared by Django's sync views.
    run = sync_to_async(relay_once, thread_sensitive=False)
    failures = 0
    while not stop.is_set():
        try:
            sent = await run(publish, limit)
            failures = 0
        except Exception:
            failures += 1
            logger.exception("outbox relay: publishing failed (attempt %s); retrying", failures)
            sent = 0
        if sent >= limit:
            continue
        pause = poll if failures == 0 else min(5.0, poll * 2**failures)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=pause)
