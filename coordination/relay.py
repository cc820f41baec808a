"""The outbox relay: publishes committed events to the channel layer groups of the live
WebSocket connections (coordination.consumers).

It runs as `python manage.py run_relay` (one or several processes) and, in the embedded
default, inside each web process (config.asgi starts it on ASGI lifespan startup), so that
events written by the Celery worker still reach that process's clients through its
in-memory channel layer. Several relays at once are safe: see coordination.services.outbox.

On PostgreSQL one relay at a time leads: it holds a session advisory lock on its LISTEN
connection and is woken by every commit that writes events. The others stand by, looking
every LIVE_RELAY_LISTEN_FALLBACK_SECONDS for what is left over and for the lock, which
PostgreSQL frees when the leader's connection ends (its process stopped or died). The leader
starts a pass at most once per LIVE_RELAY_GATHER_SECONDS: woken sooner after the previous
one, it waits the rest of that time, so that under load one pass publishes the events of
all the commits of that moment (a pass per commit would cost more than the requests that
wrote the events), while a commit after a quiet moment is published at once.

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
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections
from psycopg.conninfo import make_conninfo

from coordination import events
from coordination.models import OutboxEvent
from coordination.services.outbox import Publisher, outbox_relay_run_once
from patients.services import audit_chain_extend

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
    """One pass: publish what committed (returns how many events), then chain the audit
    records that committed (patients.services.audit_chain_extend), so the trail is
    tamper-evident within a pass of every commit."""
    close_old_connections()
    published = len(outbox_relay_run_once(publish=publish, limit=limit))
    audit_chain_extend()
    return published


NOTIFY_CHANNEL = "parcours_outbox"  # see coordination/migrations/0008_outbox_notify.py
# Key of the session advisory lock held by the leading relay ("parcours relay").
LEADER_LOCK_KEY = 0x7061726F726C


class _Listener:
    """A connection of its own to PostgreSQL, holding the leader's lock and LISTENing on the
    outbox channel once it leads: committed events wake the relay at once. A relay that does
    not lead keeps the connection to ask for the lock again. Anything going wrong with it (no
    PostgreSQL, a lost connection) only makes the relay fall back to polling; it tries to
    listen again later."""

    RETRY_SECONDS = 5.0

    def __init__(self) -> None:
        self.connection: psycopg.AsyncConnection[Any] | None = None
        self.leading = False
        self.retry_at = 0.0

    async def open(self) -> None:
        database = settings.DATABASES["default"]
        if "postgresql" not in str(database["ENGINE"]) or time.monotonic() < self.retry_at:
            return
        conninfo = make_conninfo(
            **{
                key: str(database[name])
                for key, name in (
                    ("dbname", "NAME"),
                    ("user", "USER"),
                    ("password", "PASSWORD"),
                    ("host", "HOST"),
                    ("port", "PORT"),
                )
                if database.get(name)
            }
        )
        try:
            self.connection = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
            await self.lead()
        except psycopg.Error:
            logger.warning("outbox relay: cannot LISTEN, polling instead", exc_info=True)
            await self.close()

    async def lead(self) -> None:
        """Take the leader's lock if it is free, and then LISTEN."""
        assert self.connection is not None
        cursor = await self.connection.execute("SELECT pg_try_advisory_lock(%s)", [LEADER_LOCK_KEY])
        row = await cursor.fetchone()
        if row is not None and row[0]:
            await self.connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self.leading = True

    async def wait(self, timeout: float, stop: asyncio.Event) -> bool:
        """Leading: wait for a notification, at most `timeout` seconds, or until `stop` is set
        (looked at twice a second). Standing by: wait `timeout` seconds, then ask for the lock
        again. False if there is no connection."""
        if self.connection is None:
            return False
        deadline = time.monotonic() + timeout
        try:
            while not stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if not self.leading:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=min(left, 0.5))
                    continue
                async for _ in self.connection.notifies(timeout=min(left, 0.5), stop_after=1):
                    return True
            if not self.leading and not stop.is_set():
                await self.lead()
        except psycopg.Error:
            logger.warning("outbox relay: LISTEN connection lost, polling", exc_info=True)
            await self.close()
            return False
        return True

    async def gather(self, seconds: float, stop: asyncio.Event) -> None:
        """Let `seconds` pass, if any (or `stop` be set), then take the notifications that
        came meanwhile: the pass that follows reads what their commits wrote. A commit after
        that pass has read notifies again and wakes the next wait."""
        if self.connection is None:
            return
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=seconds)
        try:
            async for _ in self.connection.notifies(timeout=0.0):
                pass
        except psycopg.Error:
            logger.warning("outbox relay: LISTEN connection lost, polling", exc_info=True)
            await self.close()

    async def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(psycopg.Error):
                await self.connection.close()
        self.connection = None
        self.leading = False
        self.retry_at = time.monotonic() + self.RETRY_SECONDS


async def relay_forever(
    stop: asyncio.Event, *, poll_seconds: float | None = None, limit: int = 200
) -> None:
    """Publish until `stop` is set: at once while there is a backlog; otherwise, on
    PostgreSQL, as soon as a transaction writing events commits (LISTEN/NOTIFY), with a poll
    every LIVE_RELAY_LISTEN_FALLBACK_SECONDS as a safety net; without notifications, every
    `poll_seconds`. A failure (database or channel layer down) is logged and retried with a
    growing pause (at most 5 s): nothing is marked published until it was sent."""
    poll = (
        poll_seconds
        if poll_seconds is not None
        else float(getattr(settings, "LIVE_RELAY_POLL_SECONDS", 0.05))
    )
    fallback = max(poll, float(getattr(settings, "LIVE_RELAY_LISTEN_FALLBACK_SECONDS", 1.0)))
    gather = float(getattr(settings, "LIVE_RELAY_GATHER_SECONDS", 0.05))
    publish = channel_layer_publisher()
    # Its own thread, not the thread shared by Django's sync views.
    run = sync_to_async(relay_once, thread_sensitive=False)
    listener = _Listener()
    failures = 0
    try:
        while not stop.is_set():
            if listener.connection is None:
                await listener.open()  # before reading: no commit can slip in between
            started = time.monotonic()
            try:
                sent = await run(publish, limit)
                failures = 0
            except Exception:
                failures += 1
                logger.exception("outbox relay: publishing failed (attempt %s); retrying", failures)
                sent = 0
            if sent >= limit:
                continue
            if failures == 0 and await listener.wait(fallback, stop):
                if listener.leading:  # at most one pass per `gather` seconds
                    await listener.gather(gather - (time.monotonic() - started), stop)
                continue
            pause = poll if failures == 0 else min(5.0, poll * 2**failures)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=pause)
    finally:
        await listener.close()
