"""`/ws/updates/`: live outbox events for one user (protocol in docs/live-updates.md).

A connection is authenticated by the session cookie (Channels' AuthMiddlewareStack) or by a
single-use token from `POST /api/v1/live/tokens/` (`?token=`); config.asgi checks the Origin.
It joins the channel-layer groups of the patients its user may see, of the user and of the
user's service teams, and re-checks every event against the user's current permissions
before sending it; what it read of them is trusted for LIVE_ACCESS_CACHE_SECONDS at most, and
forgotten at once when a consent or care-team change goes by. Those readings are made for
every connection of the process together (`_ProcessWatch`): a bulk read of every connected
user's access every half delay, and a debounced bulk read of the users concerned by an
access-changing event, so that sending an event normally costs no query at all.

Resume: `?last_event_id=N` sends every visible event with a position above N from the outbox
table, in order, before anything live; live events at or below what the backlog covered, or
already sent, are dropped, so each event id reaches the client once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import time
import weakref
from collections import deque
from importlib import import_module
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.base import SessionBase
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from coordination import events
from coordination.live_tokens import live_token_redeem
from coordination.models import OutboxEvent
from coordination.relay import event_message, patient_group, team_group, user_group
from coordination.selectors import (
    NO_LIVE_ACCESS,
    LiveAccess,
    live_access_many,
    live_users_active,
    outbox_for_patients,
    outbox_last_position,
    outbox_published_after,
    outbox_settled_position,
)

# Close codes (the 4000-4999 range is the application's).
CLOSE_UNAUTHENTICATED = 4401  # no session, bad or spent token, logged out
CLOSE_FORBIDDEN = 4403  # the user was deactivated
CLOSE_BAD_REQUEST = 4400  # last_event_id is not a non-negative integer

logger = logging.getLogger(__name__)

RESUME_BATCH = 500
RECENT_IDS = 4096
# How long a bulk access read waits for more requests to join it: the connections that
# receive one access-changing event ask within a few milliseconds of each other.
ACCESS_READ_DEBOUNCE = 0.005
# The periodic bulk read runs every half cache delay, but not more often than this.
ACCESS_READ_MIN_PERIOD = 0.5


class UpdatesConsumer(AsyncJsonWebsocketConsumer):
    user_id: int
    session_key: str | None
    # A connection opened with a live token: its user's session verification hash then (a
    # new password closes it, as it ends the user's sessions). None for a session's.
    token_hash: str | None
    access: LiveAccess
    access_read_at: float
    groups_joined: set[str]
    floor: int  # every event at or below this position was sent, or was not visible
    recent: deque[int]
    recent_set: set[int]
    watcher: asyncio.Task[None] | None
    closing: bool
    groups_lock: asyncio.Lock

    async def connect(self) -> None:
        self.watcher = None
        self.closing = False
        self.groups_joined = set()
        self.groups_lock = asyncio.Lock()
        self.access, self.access_read_at = NO_LIVE_ACCESS, -math.inf
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        user = self.scope.get("user")
        self.session_key, self.token_hash = None, None
        if user is not None and user.is_authenticated:
            session = self.scope.get("session")
            self.session_key = session.session_key if isinstance(session, SessionBase) else None
        elif "token" in query:
            user = await database_sync_to_async(live_token_redeem)(query["token"][0])
            if user is not None:
                self.token_hash = user.get_session_auth_hash()
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        last: int | None = None
        if "last_event_id" in query:
            raw = query["last_event_id"][0]
            if not raw.isdigit():
                await self.accept()
                await self.close(code=CLOSE_BAD_REQUEST)
                return
            last = int(raw)
        self.user_id = int(user.pk)
        self.recent, self.recent_set = deque(), set()
        await self.accept()
        # Join the groups before reading the backlog: an event published meanwhile is then
        # either in the backlog or queued for this consumer (and de-duplicated).
        await self.refresh_access()
        if not self.access.active:
            await self.shut(CLOSE_FORBIDDEN)
            return
        if last is None:
            self.floor = int(await database_sync_to_async(outbox_last_position)())
        else:
            self.floor = last
            self.floor = await self.send_backlog(last)
        await self.send_json({"type": "welcome", "id": self.floor})
        self.watcher = asyncio.create_task(self.heartbeats())
        _watch.add(self)

    async def disconnect(self, code: int) -> None:
        _watch.discard(self)
        if self.watcher is not None:
            self.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.watcher
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined = set()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # Clients may ping to check the connection; nothing else is expected from them.
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    # --- events ---------------------------------------------------------------------------

    async def outbox_event(self, message: dict[str, Any]) -> None:
        """A live event from the relay (coordination.relay.MESSAGE_TYPE)."""
        event = message["event"]
        position = int(event["id"])
        if position <= self.floor or position in self.recent_set:
            return
        if event["event"] in events.ACCESS_CHANGING or self.access_stale():
            await self.refresh_access()
        if self.closing:
            return
        if not self.access.active:
            await self.shut(CLOSE_FORBIDDEN)
            return
        if self.visible(event["event"], event["patient"], event["payload"]):
            await self.deliver(event, message.get("text"))

    async def deliver(self, event: dict[str, Any], text: str | None = None) -> None:
        """Send an event once: the live path and the process watch's catch-up run as
        separate tasks, so the id is checked and marked before the send yields. `text`: the
        event already encoded by the relay, the same for every connection."""
        position = int(event["id"])
        if position <= self.floor or position in self.recent_set:
            return
        self.recent.append(position)
        self.recent_set.add(position)
        if len(self.recent) > RECENT_IDS:
            self.recent_set.discard(self.recent.popleft())
        if text is None:
            await self.send_json(event)
        else:
            await self.send(text_data=text)

    async def shut(self, code: int) -> None:
        """Close once, whichever of the live path and the process watch notices first."""
        if self.closing:
            return
        self.closing = True
        _watch.discard(self)
        await self.close(code=code)

    def visible(self, type: str, patient_id: int | None, payload: dict[str, Any]) -> bool:
        if patient_id is None or not self.access.sees(patient_id, timezone.now()):
            return False
        if patient_id != self.access.own_patient_id:
            return True
        # A patient's own account: its pathway, its consents, the tasks meant for it.
        return type in events.PATIENT_ACCOUNT_TYPES or (
            type in (events.TASK_CREATED, events.TASK_CHANGED)
            and payload.get("for_patient") is True
        )

    async def send_backlog(self, after: int) -> int:
        """Send every visible event after position `after`, in order; returns the position
        the backlog reached."""
        floor = after
        while True:
            batch: list[OutboxEvent] = await database_sync_to_async(_backlog)(floor)
            for row in batch:
                if self.visible(row.type, row.patient_id, row.payload):
                    await self.deliver(event_message(row))
            if not batch:
                return floor
            last = batch[-1].position
            assert last is not None
            floor = last
            if len(batch) < RESUME_BATCH:
                return floor

    # --- access ---------------------------------------------------------------------------

    def access_stale(self) -> bool:
        return time.monotonic() - self.access_read_at > _setting("LIVE_ACCESS_CACHE_SECONDS", 2.0)

    async def refresh_access(self) -> None:
        """Re-read what the user may see, in the process's next bulk read (started after
        this call, so that it sees every change committed before), and follow it."""
        read_at, access = await _watch.read_access({self.user_id})
        self.take_access(read_at, access)
        await self.follow_access()

    def take_access(self, read_at: float, access: LiveAccess) -> None:
        if read_at >= self.access_read_at:
            self.access, self.access_read_at = access, read_at

    async def follow_access(self) -> None:
        """Join the groups of what the user may see now and leave the others."""
        async with self.groups_lock:
            if self.closing:
                return
            wanted = {user_group(self.user_id)}
            wanted |= {patient_group(p) for p in self.access.patient_ids}
            wanted |= {team_group(t) for t in self.access.team_ids}
            for group in wanted - self.groups_joined:
                await self.channel_layer.group_add(group, self.channel_name)
            for group in self.groups_joined - wanted:
                await self.channel_layer.group_discard(group, self.channel_name)
            self.groups_joined = wanted

    async def catch_up(self, rows: list[OutboxEvent], bound: int) -> None:
        """Send the visible events among `rows` (every event up to `bound`, read by the
        process's watch) that the channel layer lost (a full channel, a Redis restart) and
        move the floor up to `bound`, so that a late live copy is dropped."""
        missed = [
            row
            for row in rows
            if row.position is not None
            and row.position > self.floor
            and row.position not in self.recent_set
            and row.patient_id in self.access.patient_ids
        ]
        if missed and self.access_stale():
            await self.refresh_access()
        for row in missed:
            if self.visible(row.type, row.patient_id, row.payload):
                await self.deliver(event_message(row))
        self.floor = max(self.floor, bound)
        while self.recent and self.recent[0] <= self.floor:
            self.recent_set.discard(self.recent.popleft())

    async def heartbeats(self) -> None:
        """An application heartbeat every LIVE_HEARTBEAT_SECONDS keeps idle connections
        alive through proxies."""
        interval = _setting("LIVE_HEARTBEAT_SECONDS", 25.0)
        while True:
            await asyncio.sleep(interval)
            await self.send_json({"type": "heartbeat", "id": self.floor})


class _ProcessWatch:
    """One periodic check for every live connection of this process, whatever their number:
    every LIVE_SESSION_CHECK_SECONDS, which sessions still exist (logging out deletes them)
    and which users are still active, closing the other connections; and which events every
    connection should have received by now (published more than LIVE_CATCHUP_GRACE_SECONDS
    ago), so that each can send those the channel layer lost. A handful of queries per round
    instead of a few per connection."""

    def __init__(self) -> None:
        self.consumers: weakref.WeakSet[UpdatesConsumer] = weakref.WeakSet()
        self.task: asyncio.Task[None] | None = None
        self.access_task: asyncio.Task[None] | None = None
        # The users waiting for the next bulk access read, and its outcome.
        self.pending: set[int] = set()
        self.next_read: asyncio.Future[tuple[float, dict[int, LiveAccess]]] | None = None
        self.reading: asyncio.Lock | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.readers: set[asyncio.Task[None]] = set()

    def add(self, consumer: UpdatesConsumer) -> None:
        self.consumers.add(consumer)
        # A new event loop (a test, a restarted server) needs its own tasks.
        loop = asyncio.get_running_loop()
        if self.task is None or self.task.done() or self.task.get_loop() is not loop:
            self.task = asyncio.create_task(self.run())
        if (
            self.access_task is None
            or self.access_task.done()
            or self.access_task.get_loop() is not loop
        ):
            self.access_task = asyncio.create_task(self.refresh_all())

    def discard(self, consumer: UpdatesConsumer) -> None:
        self.consumers.discard(consumer)

    async def run(self) -> None:
        while self.consumers:
            await asyncio.sleep(_setting("LIVE_SESSION_CHECK_SECONDS", 3.0))
            try:
                await self.check(list(self.consumers))
            except Exception:
                logger.exception("live connections: periodic check failed; retrying")

    async def refresh_all(self) -> None:
        """Every half cache delay, re-read the access of every connected user at once, so
        that no connection has to read its own when an event comes."""
        while self.consumers:
            ttl = _setting("LIVE_ACCESS_CACHE_SECONDS", 2.0)
            await asyncio.sleep(max(ACCESS_READ_MIN_PERIOD, ttl / 2))
            users = {c.user_id for c in list(self.consumers) if not c.closing}
            if not users:
                continue
            try:
                await self.read_access(users)
            except Exception:
                logger.exception("live connections: access refresh failed; retrying")

    async def read_access(self, user_ids: set[int]) -> tuple[float, LiveAccess]:
        """The access of these users (the first of them is returned), read in one bulk read
        that starts after this call, together with every other user asked for meanwhile,
        and handed to every connection of theirs. One read at a time: the requests made
        during a read wait for the next one."""
        loop = asyncio.get_running_loop()
        if self.loop is not loop:  # a new event loop (a test, a restarted server)
            self.loop, self.reading = loop, asyncio.Lock()
            self.next_read, self.pending = None, set()
        first = next(iter(user_ids))
        self.pending |= user_ids
        if self.next_read is None:
            self.next_read = loop.create_future()
            # Referenced until done: the loop keeps weak references to its tasks only.
            self.readers.add(task := asyncio.create_task(self._read(self.next_read)))
            task.add_done_callback(self.readers.discard)
        read_at, found = await asyncio.shield(self.next_read)
        return read_at, found[first]

    async def _read(self, outcome: asyncio.Future[tuple[float, dict[int, LiveAccess]]]) -> None:
        assert self.reading is not None
        async with self.reading:
            await asyncio.sleep(ACCESS_READ_DEBOUNCE)
            users, self.pending = self.pending, set()
            if self.next_read is outcome:
                self.next_read = None
            read_at = time.monotonic()
            try:
                found = await database_sync_to_async(live_access_many)(user_ids=users)
            except Exception as error:
                outcome.set_exception(error)
                outcome.exception()  # retrieved: the waiters see it, if any
                return
            outcome.set_result((read_at, found))
        for consumer in list(self.consumers):
            access = found.get(consumer.user_id)
            if access is None or consumer.closing:
                continue
            consumer.take_access(read_at, access)
            if not access.active:
                await consumer.shut(CLOSE_FORBIDDEN)
            else:
                await consumer.follow_access()

    async def check(self, consumers: list[UpdatesConsumer]) -> None:
        if not consumers:
            return
        codes: list[int | None] = await database_sync_to_async(_closing_codes)(
            [(c.user_id, c.session_key, c.token_hash) for c in consumers]
        )
        staying = []
        for consumer, code in zip(consumers, codes, strict=True):
            if code is None:
                staying.append(consumer)
            else:
                await consumer.shut(code)
        if not staying:
            return
        grace = dt.timedelta(seconds=_setting("LIVE_CATCHUP_GRACE_SECONDS", 2.0))
        rows, bound = await database_sync_to_async(_settled_events)(
            min(c.floor for c in staying),
            timezone.now() - grace,
            frozenset().union(*(c.access.patient_ids for c in staying)),
        )
        for consumer in staying:
            if bound > consumer.floor:
                await consumer.catch_up(rows, bound)


_watch = _ProcessWatch()


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def _settled_events(
    after: int, published_before: dt.datetime, patient_ids: frozenset[int]
) -> tuple[list[OutboxEvent], int]:
    bound = outbox_settled_position(after=after, published_before=published_before)
    if bound <= after or not patient_ids:
        return [], bound
    rows = outbox_for_patients(after=after, through=bound, patient_ids=patient_ids)
    return list(rows), bound


def _backlog(after: int) -> list[OutboxEvent]:
    return list(outbox_published_after(position=after, limit=RESUME_BATCH))


def _closing_codes(connections: list[tuple[int, str | None, str | None]]) -> list[int | None]:
    """For each (user id, session key, or the user's hash when a token opened it): None if
    the connection may stay open, else its close code. A session ends when it is logged out,
    expires (idle or absolute limit, web.sessions) or was opened with a password since
    changed; a token's connection ends when the password changes."""
    active = live_users_active(user_ids={user_id for user_id, _, _ in connections})
    sessions = _session_users({key for _, key, _ in connections if key is not None})
    codes: list[int | None] = []
    for user_id, key, token_hash in connections:
        opened_with = token_hash
        if key is not None:
            session = sessions.get(key)
            if session is None or session[0] != str(user_id):
                codes.append(CLOSE_UNAUTHENTICATED)
                continue
            opened_with = session[1]
        if user_id not in active:
            codes.append(CLOSE_FORBIDDEN)
        elif opened_with is not None and not constant_time_compare(opened_with, active[user_id]):
            # Only the current SECRET_KEY is tried: after a key rotation, a socket whose
            # session made no request since reconnects (its next request re-hashes it).
            codes.append(CLOSE_UNAUTHENTICATED)
        else:
            codes.append(None)
    return codes


def _session_users(keys: set[str]) -> dict[str, tuple[str, str]]:
    """The user id and verification hash of each session that still exists and has not
    expired."""
    engine = import_module(settings.SESSION_ENGINE)
    store_class = engine.SessionStore
    if settings.SESSION_ENGINE == "django.contrib.sessions.backends.db":
        # One query for every session (the per-key loader would make one each).
        model = store_class.get_model_class()
        rows = model.objects.filter(session_key__in=keys, expire_date__gt=timezone.now())
        decode = store_class().decode
        found = {}
        for row in rows.only("session_key", "session_data"):
            data = decode(row.session_data)
            found[row.session_key] = (str(data.get(SESSION_KEY)), str(data.get(HASH_SESSION_KEY)))
        return found
    found = {}
    for key in keys:
        store = store_class(key)
        user_id = store.get(SESSION_KEY)
        if user_id is not None:
            found[key] = (str(user_id), str(store.get(HASH_SESSION_KEY)))
    return found
