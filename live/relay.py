"""The outbox relay: publishes committed events to the web processes, which hand them to
their live WebSocket connections (live.consumers).

It runs as `python manage.py run_relay` (one or several processes) and, in the embedded
default, inside each web process (config.asgi starts it on ASGI lifespan startup), so that
events written by the Celery worker still reach that process's clients through its
in-memory channel layer. Several relays at once are safe: one publishes at a time, always
the unbroken run from the lowest unpublished position (live.services.outbox).

On PostgreSQL one relay at a time leads: it holds a session advisory lock on its LISTEN
connection and is woken by every commit that writes events. The others stand by, looking
every LIVE_RELAY_LISTEN_FALLBACK_SECONDS for what is left over and for the lock, which
PostgreSQL frees when the leader's connection ends (its process stopped or died). The leader
starts a pass at most once per LIVE_RELAY_GATHER_SECONDS: woken sooner after the previous
one, it waits the rest of that time, so that under load one pass publishes the events of
all the commits of that moment (a pass per commit would cost more than the requests that
wrote the events), while a commit after a quiet moment is published at once.

Routing: a pass is one message, its events in position order, sent to the channel-layer
group that every web process's dispatcher listens on (LIVE_GROUP); each process then gives
each event to its connections allowed to see it. One message per pass and per process,
whatever the number of connections, and a process that sees the positions it receives jump
knows that a message was lost or is late, and reads the missing events from the table.

A failure (the channel layer or the database down) is logged once when it starts and once
when publishing works again, not at each retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import psycopg
import redis.exceptions
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections
from django.db import utils as db_utils
from psycopg.conninfo import make_conninfo

from live.models import OutboxEvent
from live.services.outbox import Publisher, outbox_relay_run_once
from patients.services import audit_chain_extend

logger = logging.getLogger(__name__)

# The channel-layer group of the web processes' dispatchers (live.consumers).
LIVE_GROUP = "live.processes"
BATCH_TYPE = "outbox.batch"  # a pass's events: {"type": BATCH_TYPE, "events": [[...], ...]}


class LiveEvent(NamedTuple):
    """One event as the web processes pass it around: what routing needs, and `text`, the
    message clients receive, encoded once by whoever read the event."""

    position: int
    type: str
    patient: int | None
    payload: dict[str, Any]
    text: str


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


def live_event(event: OutboxEvent) -> LiveEvent:
    assert event.position is not None, "only sequenced events go live"
    text = json.dumps(event_message(event))
    return LiveEvent(event.position, event.type, event.patient_id, dict(event.payload), text)


def batch_message(batch: Sequence[OutboxEvent]) -> dict[str, Any]:
    return {"type": BATCH_TYPE, "events": [list(live_event(event)) for event in batch]}


def channel_layer_publisher(layer: Any = None) -> Publisher:
    """A publisher sending each batch, as one message, to every web process. Meant to run in
    a thread (the relay's database work is synchronous); `async_to_sync` sends on the event
    loop that started that thread when there is one, which the in-memory layer needs."""
    layer = layer or get_channel_layer()
    send = async_to_sync(layer.group_send)

    def publish(batch: Sequence[OutboxEvent]) -> None:
        if batch:
            send(LIVE_GROUP, batch_message(batch))

    return publish


def _outage_errors() -> tuple[type[BaseException], ...]:
    return (
        OSError,  # ConnectionError, TimeoutError
        db_utils.OperationalError,
        db_utils.InterfaceError,
        psycopg.OperationalError,
        redis.exceptions.ConnectionError,  # the channel layer's (channels-redis)
        redis.exceptions.TimeoutError,
    )


OUTAGE_ERRORS = _outage_errors()


def is_outage(error: BaseException) -> bool:
    """Whether `error` says a server is unreachable or ended our session (the database ends
    the session of a relay stalled past LIVE_RELAY_STALL_SECONDS), rather than a bug."""
    cause = error.__cause__
    return isinstance(error, OUTAGE_ERRORS) or isinstance(
        cause, (psycopg.errors.IdleInTransactionSessionTimeout, psycopg.errors.AdminShutdown)
    )


class Outage:
    """A dependency that fails and is retried (the channel layer, the database): logs one
    line when it starts failing and one when it works again, never one per retry. An error
    that is not an outage (a bug) is logged with its traceback, still once."""

    def __init__(self, log: logging.Logger, what: str, meanwhile: str) -> None:
        self.log, self.what, self.meanwhile = log, what, meanwhile
        self.since: float | None = None
        self.attempts = 0

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, error: BaseException) -> None:
        self.attempts += 1
        if self.since is not None:
            return
        self.since = time.monotonic()
        reason = f"{type(error).__name__}: {error}".replace("\n", " ")
        self.log.error(
            "%s failed (%s); %s",
            self.what,
            reason,
            self.meanwhile,
            exc_info=None if is_outage(error) else error,
        )

    def recovered(self) -> None:
        if self.since is None:
            return
        self.log.warning(
            "%s works again, after %.1f s and %d failed attempts",
            self.what,
            time.monotonic() - self.since,
            self.attempts,
        )
        self.since, self.attempts = None, 0


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
        self.outage = Outage(logger, "outbox relay: LISTEN", "polling instead")

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
        except psycopg.Error as error:
            self.outage.failed(error)
            await self.close()
        else:
            self.outage.recovered()

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
        except psycopg.Error as error:
            self.outage.failed(error)
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
        except psycopg.Error as error:
            self.outage.failed(error)
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
    `poll_seconds`. A failure (database or channel layer down) is retried with a growing
    pause (at most 5 s), logged when it starts and when publishing works again: nothing is
    marked published until it was sent."""
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
    outage = Outage(logger, "outbox relay: publishing", "retrying until it works")
    try:
        while not stop.is_set():
            if listener.connection is None:
                await listener.open()  # before reading: no commit can slip in between
            started = time.monotonic()
            try:
                sent = await run(publish, limit)
            except Exception as error:
                outage.failed(error)
                sent = 0
            else:
                outage.recovered()
            if sent >= limit:
                continue
            if not outage.down and await listener.wait(fallback, stop):
                if listener.leading:  # at most one pass per `gather` seconds
                    await listener.gather(gather - (time.monotonic() - started), stop)
                continue
            pause = poll if not outage.down else min(5.0, poll * 2 ** min(outage.attempts, 10))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=pause)
    finally:
        await listener.close()
