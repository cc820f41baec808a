"""`/ws/updates/`: live outbox events for one user (protocol in docs/live-updates.md).

A connection is authenticated by the session cookie (Channels' AuthMiddlewareStack) or by a
single-use token from `POST /api/v1/live/tokens/` (`?token=`); config.asgi checks the Origin.

Delivery, in position order with no gap. Each web process receives every batch the relay
publishes once, on a channel of its own in the channel-layer group
live.relay.LIVE_GROUP, and `_Dispatcher` hands each event, in position order, to
the process's connections whose user may see the event's patient. It keeps `through`, the
position up to which it has handed every event on. An event further on than the next
position means that the events between were lost by the channel layer (a full buffer, a
Redis restart) or are late (another relay's message, from a machine whose clock is behind):
they are read from the outbox table and handed on first, and a late copy is ignored. Every
LIVE_SESSION_CHECK_SECONDS it also reads from the table the events sequenced more than
LIVE_CATCHUP_GRACE_SECONDS ago that it has not handed on (a lost last message, the channel
layer down, no relay running). Each connection sends what it is handed, in that order, after
a last permission check, from a task of its own (a slow client holds up nobody else). So a
connection never sends an event before a smaller position it should have sent, and the
largest id a client received is always a safe resume point. Connections use no channel
layer themselves: a channel layer that is down closes none of them, and events then come
from the table, later.

Permissions: each connection re-checks every event against the user's current permissions
before sending it; what it read of them is trusted for LIVE_ACCESS_CACHE_SECONDS at most,
and re-read before an event that changes them (consent, care team) is handed on. Those
readings are made for every connection of the process together (`_ProcessWatch`): a bulk
read of every connected user's access every half delay, and a debounced bulk read of the
users concerned by an access-changing event, so that sending an event normally costs no
query at all.

Resume: `?last_event_id=N` sends every visible event with a position above N from the outbox
table, in order, before anything live; live events at or below what the backlog covered are
dropped, so each event id reaches the client once.
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
from collections.abc import Callable, Sequence
from importlib import import_module
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.base import SessionBase
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.module_loading import import_string

from live import events
from live.models import OutboxEvent
from live.relay import BATCH_TYPE, LIVE_GROUP, LiveEvent, Outage, live_event
from live.selectors import (
    NO_LIVE_ACCESS,
    LiveAccess,
    live_users_active,
    outbox_between,
    outbox_last_position,
    outbox_published_after,
    outbox_settled_after,
)
from live.tokens import live_token_redeem

# Close codes (the 4000-4999 range is the application's).
CLOSE_UNAUTHENTICATED = 4401  # no session, bad or spent token, logged out
CLOSE_FORBIDDEN = 4403  # the user was deactivated
CLOSE_BAD_REQUEST = 4400  # last_event_id is not a non-negative integer
CLOSE_SERVER_ERROR = 1011  # the server failed (e.g. the database): reconnect and resume

logger = logging.getLogger(__name__)

RESUME_BATCH = 500
# Events waiting to be sent on one connection (a client that does not read): past this, they
# are dropped and the connection reads what it missed from the table when it can send again.
MAX_PENDING = 10_000
# How long a bulk access read waits for more requests to join it: the connections that
# receive one access-changing event ask within a few milliseconds of each other.
ACCESS_READ_DEBOUNCE = 0.005
# The periodic bulk read runs every half cache delay, but not more often than this.
ACCESS_READ_MIN_PERIOD = 0.5

try:  # what the ASGI server raises when sending to a client that left
    from uvicorn.protocols.utils import ClientDisconnected as ClientGone
except ImportError:  # pragma: no cover - another ASGI server
    ClientGone = ConnectionError  # type: ignore[misc,assignment]

_opening = Outage(logger, "live updates: opening a connection", "closing them with 1011")
_sending = Outage(logger, "live updates: sending on a connection", "closing them with 1011")


class UpdatesConsumer(AsyncJsonWebsocketConsumer):
    # No channel of its own: events come from the process's dispatcher.
    channel_layer_alias = None

    user_id: int
    session_key: str | None
    # A connection opened with a live token: its user's session verification hash then (a
    # new password closes it, as it ends the user's sessions). None for a session's.
    token_hash: str | None
    access: LiveAccess
    access_read_at: float
    floor: int  # every event at or below this position was sent, or is not for this user
    pending: deque[LiveEvent]
    wake: asyncio.Event
    resync: bool
    pump_task: asyncio.Task[None] | None
    closing: bool
    accepted: bool

    async def connect(self) -> None:
        self.user_id, self.session_key, self.floor = 0, None, 0
        self.access, self.access_read_at = NO_LIVE_ACCESS, -math.inf
        self.pending, self.wake, self.resync = deque(), asyncio.Event(), False
        self.pump_task, self.closing, self.accepted = None, False, False
        try:
            await self.open()
        except ClientGone:
            self.closing = True  # the client left while opening: its disconnect follows
            self.leave()
        except Exception as error:
            _opening.failed(error)
            await self.fail()
        else:
            _opening.recovered()

    async def open(self) -> None:
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
            await self.accept_once()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        last: int | None = None
        if "last_event_id" in query:
            raw = query["last_event_id"][0]
            if not raw.isdigit():
                await self.accept_once()
                await self.close(code=CLOSE_BAD_REQUEST)
                return
            last = int(raw)
        self.user_id = int(user.pk)
        await self.accept_once()
        await self.refresh_access()
        if not self.access.active:
            await self.shut(CLOSE_FORBIDDEN)
            return
        # Joined before reading the table: an event handed on meanwhile is either in what is
        # read, or queued for this connection (and dropped if the reading covered it).
        await _dispatcher.join(self)
        _watch.add(self)
        if last is None:
            self.floor = int(await database_sync_to_async(outbox_last_position)())
        else:
            self.floor = last
            await self.send_backlog()
        if self.closing:
            return
        await self.send_json({"type": "welcome", "id": self.floor})
        self.pump_task = asyncio.create_task(self.pump())

    async def accept_once(self) -> None:
        if not self.accepted:
            self.accepted = True
            await self.accept()

    async def disconnect(self, code: int) -> None:
        self.closing = True
        self.leave()
        if self.pump_task is not None and self.pump_task is not asyncio.current_task():
            self.pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.pump_task

    def leave(self) -> None:
        _watch.discard(self)
        _dispatcher.leave(self)
        self.pending.clear()
        self.wake.set()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # Clients may ping to check the connection; nothing else is expected from them.
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    # --- events ---------------------------------------------------------------------------

    def enqueue(self, event: LiveEvent) -> None:
        """An event handed on by the dispatcher (in position order), to send after the ones
        before it. Never waits: a connection that falls MAX_PENDING events behind drops
        them and reads from the table instead."""
        if self.closing:
            return
        if len(self.pending) >= MAX_PENDING:
            self.pending.clear()
            self.resync = True
        self.pending.append(event)
        self.wake.set()

    async def pump(self) -> None:
        """Send the events handed on, in order; when there is none for
        LIVE_HEARTBEAT_SECONDS, a heartbeat (it keeps idle connections alive through
        proxies). A failure of the server closes the connection with 1011."""
        interval = _setting("LIVE_HEARTBEAT_SECONDS", 25.0)
        try:
            while not self.closing:
                if self.resync:
                    self.resync = False
                    await self.send_backlog()
                    continue
                if not self.pending:
                    self.wake.clear()
                    try:
                        await asyncio.wait_for(self.wake.wait(), timeout=interval)
                    except TimeoutError:
                        await self.heartbeat()
                    continue
                event = self.pending.popleft()
                if event.position <= self.floor:
                    continue
                if self.access_stale():
                    await self.refresh_access()
                if self.shut_meanwhile():
                    return
                if not self.access.active:
                    await self.shut(CLOSE_FORBIDDEN)
                    return
                await self.send_event(event)
                _sending.recovered()
        except ClientGone:
            return  # the client left while an event was on its way: its disconnect follows
        except Exception as error:
            _sending.failed(error)
            await self.fail()

    async def heartbeat(self) -> None:
        # Nothing waits to be sent: every event the dispatcher handed on so far was sent or
        # was not for this user, so its position is a safe resume point too.
        self.floor = max(self.floor, _dispatcher.through)
        await self.send_json({"type": "heartbeat", "id": self.floor})

    async def send_event(self, event: LiveEvent) -> None:
        """Send `event` if it comes after the floor and the user may see it; either way the
        floor moves up to it. Callers go in position order."""
        if event.position <= self.floor:
            return
        self.floor = event.position
        if self.visible(event.type, event.patient, event.payload):
            await self.send(text_data=event.text)

    def shut_meanwhile(self) -> bool:
        """Whether the connection was closed while this task was waiting."""
        return self.closing

    async def shut(self, code: int) -> None:
        """Close once, whichever of the sender, the dispatcher and the process watch notices
        first."""
        if self.closing:
            return
        self.closing = True
        self.leave()
        await self.close(code=code)

    async def fail(self) -> None:
        """The server failed: close with 1011 (accepting first, so that the client gets the
        code rather than a refused handshake)."""
        if self.closing:
            return
        with contextlib.suppress(Exception):
            await self.accept_once()
        with contextlib.suppress(Exception):
            await self.shut(CLOSE_SERVER_ERROR)

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

    async def send_backlog(self) -> None:
        """Send every visible event after the floor from the table, in order, to its end."""
        while not self.closing:
            if self.access_stale():
                await self.refresh_access()
            batch: list[OutboxEvent] = await database_sync_to_async(_backlog)(self.floor)
            for row in batch:
                await self.send_event(live_event(row))
            if len(batch) < RESUME_BATCH:
                return

    # --- access ---------------------------------------------------------------------------

    def access_stale(self) -> bool:
        return time.monotonic() - self.access_read_at > _setting("LIVE_ACCESS_CACHE_SECONDS", 2.0)

    async def refresh_access(self) -> None:
        """Re-read what the user may see, in the process's next bulk read (started after
        this call, so that it sees every change committed before)."""
        read_at, access = await _watch.read_access({self.user_id})
        self.take_access(read_at, access)

    def take_access(self, read_at: float, access: LiveAccess) -> None:
        if read_at >= self.access_read_at:
            self.access, self.access_read_at = access, read_at
            _dispatcher.index(self)


class _Dispatcher:
    """Hands every event, once and in position order, to this process's connections (see the
    module docstring). One per process and event loop; it listens from the first connection
    on."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything: the state of a previous event loop is of no use in a new one."""
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[None] | None = None
        self.lock = asyncio.Lock()
        self.layer: Any = None
        self.channel: str | None = None
        self.through = 0  # every event up to this position was handed on
        self.consumers: set[UpdatesConsumer] = set()
        self.by_patient: dict[int, set[UpdatesConsumer]] = {}
        self.by_user: dict[int, set[UpdatesConsumer]] = {}
        self.by_team: dict[int, set[UpdatesConsumer]] = {}
        self.keys: dict[UpdatesConsumer, tuple[frozenset[int], int, frozenset[int]]] = {}
        self.channel_outage = Outage(
            logger,
            "live updates: the channel layer",
            "events are read from the outbox table meanwhile",
        )
        self.table_outage = Outage(
            logger, "live updates: reading the outbox table", "retrying at the next check"
        )

    async def join(self, consumer: UpdatesConsumer) -> None:
        """From now on, hand `consumer` every event after `through` that its user may see.
        The first connection of a quiet process starts from the table's last position."""
        loop = asyncio.get_running_loop()
        if self.loop is not loop:  # a new event loop (a test, a restarted server)
            self.reset()
            self.loop = loop
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self.listen())
        async with self.lock:
            if not self.consumers:
                last = await database_sync_to_async(outbox_last_position)()
                self.through = max(self.through, int(last))
            self.consumers.add(consumer)
            self.index(consumer)

    def leave(self, consumer: UpdatesConsumer) -> None:
        self.consumers.discard(consumer)
        self.index(consumer)

    def index(self, consumer: UpdatesConsumer) -> None:
        """Route to `consumer` by what its user may see now (nothing once it left)."""
        old = self.keys.pop(consumer, None)
        if old is not None:
            patients, user, teams = old
            for key, table in [
                *((p, self.by_patient) for p in patients),
                (user, self.by_user),
                *((t, self.by_team) for t in teams),
            ]:
                found = table.get(key)
                if found is not None:
                    found.discard(consumer)
                    if not found:
                        del table[key]
        if consumer not in self.consumers:
            return
        access = consumer.access
        keys = (access.patient_ids, consumer.user_id, access.team_ids)
        self.keys[consumer] = keys
        for patient in access.patient_ids:
            self.by_patient.setdefault(patient, set()).add(consumer)
        self.by_user.setdefault(consumer.user_id, set()).add(consumer)
        for team in access.team_ids:
            self.by_team.setdefault(team, set()).add(consumer)

    async def listen(self) -> None:
        """Receive the relay's batches and hand them on; a channel layer that fails is
        retried (logged when it fails and when it works again)."""
        self.layer = layer = get_channel_layer()
        if layer is None:
            return  # no channel layer: events come from the table only
        self.channel = channel = await layer.new_channel()
        subscribed = False
        while True:
            try:
                if not subscribed:
                    await layer.group_add(LIVE_GROUP, channel)
                    subscribed = True
                message = await layer.receive(channel)
            except Exception as error:
                self.channel_outage.failed(error)
                subscribed = False
                attempts = min(self.channel_outage.attempts, 5)
                await asyncio.sleep(min(5.0, 0.2 * 2**attempts))
                continue
            self.channel_outage.recovered()  # a message came: it works (not merely answers)
            if not isinstance(message, dict) or message.get("type") != BATCH_TYPE:
                continue
            try:
                await self.hand_on([LiveEvent(*item) for item in message["events"]])
            except Exception as error:
                self.table_outage.failed(error)

    async def hand_on(self, batch: Sequence[LiveEvent]) -> None:
        """Hand on the events of `batch` after `through`, in order, reading from the table
        first the events between `through` and the first of them, if any."""
        async with self.lock:
            for event in sorted(batch, key=lambda e: e.position):
                if event.position <= self.through:
                    continue  # handed on already: a late or repeated copy
                if not self.consumers:
                    self.through = event.position
                    continue
                if event.position > self.through + 1:
                    await self.fill(event.position - 1)
                await self.hand(event)
                self.through = event.position
        self.table_outage.recovered()

    async def fill(self, upto: int) -> None:
        """Hand on the events after `through` up to `upto` from the table (the lock held)."""
        while self.through < upto:
            rows = await database_sync_to_async(_between)(self.through, upto)
            if not rows:
                self.through = upto  # no such rows: nothing to hand on
                return
            for row in rows:
                await self.hand(live_event(row))
                assert row.position is not None
                self.through = row.position

    async def settle(self) -> None:
        """Hand on the events sequenced more than LIVE_CATCHUP_GRACE_SECONDS ago that did
        not come through the channel layer; and renew this process's membership of the
        group (lost if Redis restarted; expired after a day otherwise)."""
        if self.loop is not asyncio.get_running_loop():
            return
        if self.layer is not None and self.channel is not None:
            try:
                await self.layer.group_add(LIVE_GROUP, self.channel)
            except Exception as error:
                self.channel_outage.failed(error)
        if not self.consumers:
            return
        grace = _setting("LIVE_CATCHUP_GRACE_SECONDS", 2.0)
        try:
            async with self.lock:
                while self.consumers:
                    before = timezone.now() - dt.timedelta(seconds=grace)
                    rows = await database_sync_to_async(_settled)(self.through, before)
                    for row in rows:
                        await self.hand(live_event(row))
                        assert row.position is not None
                        self.through = row.position
                    if len(rows) < RESUME_BATCH:
                        break
        except Exception as error:
            self.table_outage.failed(error)
        else:
            self.table_outage.recovered()

    async def hand(self, event: LiveEvent) -> None:
        """Give `event` to the connections whose user may see its patient; before an event
        that changes who may see it, re-read the access of the users it concerns."""
        if event.patient is None:
            return  # about no patient: never sent live
        if event.type in events.ACCESS_CHANGING:
            users = {c.user_id for c in self.concerned(event) if not c.closing}
            if users:
                await _watch.read_access(users)
        for consumer in tuple(self.by_patient.get(event.patient, ())):
            consumer.enqueue(event)

    def concerned(self, event: LiveEvent) -> set[UpdatesConsumer]:
        found = set(self.by_patient.get(event.patient or 0, ()))
        if event.type == events.CARE_TEAM_CHANGED:
            user, team = event.payload.get("user"), event.payload.get("service_team")
            if isinstance(user, int):
                found |= self.by_user.get(user, set())
            if isinstance(team, int):
                found |= self.by_team.get(team, set())
        return found


_dispatcher = _Dispatcher()


class _ProcessWatch:
    """One periodic check for every live connection of this process, whatever their number:
    every LIVE_SESSION_CHECK_SECONDS, which sessions still exist (logging out deletes them)
    and which users are still active, closing the other connections; then the dispatcher's
    look at the table for events the channel layer did not bring. A handful of queries per
    round instead of a few per connection."""

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
        self.checking = Outage(logger, "live connections: the periodic check", "retrying")
        self.refreshing = Outage(logger, "live connections: the access refresh", "retrying")

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
            except Exception as error:
                self.checking.failed(error)
            else:
                self.checking.recovered()
            await _dispatcher.settle()

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
            except Exception as error:
                self.refreshing.failed(error)
            else:
                self.refreshing.recovered()

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
                found = await database_sync_to_async(_access_reader())(user_ids=users)
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

    async def check(self, consumers: list[UpdatesConsumer]) -> None:
        if not consumers:
            return
        codes: list[int | None] = await database_sync_to_async(_closing_codes)(
            [(c.user_id, c.session_key, c.token_hash) for c in consumers]
        )
        for consumer, code in zip(consumers, codes, strict=True):
            if code is not None:
                await consumer.shut(code)


_watch = _ProcessWatch()


def _access_reader() -> Callable[..., dict[int, LiveAccess]]:
    """What connections may receive, for many users at once (settings.LIVE_ACCESS_READER,
    `directory.selectors.live_access_many`): the directory, above this app, knows it."""
    reader: Callable[..., dict[int, LiveAccess]] = import_string(settings.LIVE_ACCESS_READER)
    return reader


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def _backlog(after: int) -> list[OutboxEvent]:
    return list(outbox_published_after(position=after, limit=RESUME_BATCH))


def _between(after: int, upto: int) -> list[OutboxEvent]:
    return list(outbox_between(after=after, through=upto, limit=RESUME_BATCH))


def _settled(after: int, before: dt.datetime) -> list[OutboxEvent]:
    return outbox_settled_after(position=after, sequenced_before=before, limit=RESUME_BATCH)


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
