"""The event outbox: services record events in their own transaction; the relay publishes
them after commit.

Ordering. Row ids come from a sequence and are not commit-ordered: a transaction holding
id 10 can commit after one holding id 11. `outbox_sequence` therefore gives each committed,
unsequenced row a `position` (max + 1, in id order) while holding a transaction-level lock
(a PostgreSQL advisory lock; SQLite's IMMEDIATE transactions already serialise writers), so
positions are gap-free and every position becomes visible before any larger one. A row that
commits late simply gets a later position: a client resuming "after position p" still
receives it.

Publishing. One relay publishes at a time, and always the unbroken run that starts at the
lowest unpublished position: `outbox_relay_run_once` takes a transaction-level lock (a
PostgreSQL advisory lock; on SQLite the IMMEDIATE transaction), claims the lowest
unpublished rows in position order, publishes them, and marks them published in the same
transaction. Another relay waits for that transaction to end, then goes on from where it
stopped: relays never overtake one another, whatever their number and timing, so batches
leave in position order (several relays taking rows side by side with SKIP LOCKED once let
a standby send positions 201-400 while the leader, stalled, still held 1-200).

A relay stalled in the middle of its pass (a pause of its process, a slow channel layer)
holds up the others, but not for ever: its transaction may stay idle at most
LIVE_RELAY_STALL_SECONDS, after which PostgreSQL ends its session, its claim rolls back and
the next relay publishes the same rows again. Delivery is therefore at least once, and
receivers de-duplicate by position (each web process hands every position on once:
live.consumers).
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from collections.abc import Callable, Mapping, Sequence

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core.sql import (
    any_row,
    column,
    instances,
    kept_cursor,
    locking,
    rows_insert,
    rows_update,
    select_list,
    statement,
    table,
)
from live import events
from live.models import OutboxEvent
from live.services.webhooks import webhook_deliveries_queue
from patients.models import Patient

logger = logging.getLogger(__name__)

# Key of the PostgreSQL advisory lock serialising position assignment ("parcours outbox").
SEQUENCE_LOCK_KEY = 0x7061726F7574
# Key of the PostgreSQL advisory lock held by the relay that is publishing ("parcours publi").
PUBLISH_LOCK_KEY = 0x7061727075626C69

Publisher = Callable[[Sequence[OutboxEvent]], None]


def event_record(
    *,
    type: str,
    patient: Patient | int | None,
    payload: Mapping[str, object],
    occurred_at: dt.datetime | None = None,
) -> OutboxEvent:
    """Write one event in the caller's transaction (it commits or rolls back with the change
    it describes). `patient` may be given as an id. Raises AssertionError outside a
    transaction: an event recorded on its own could describe a change that never commits."""
    assert connection.in_atomic_block, "event_record must run inside the change's transaction"
    assert type in events.TYPES, f"unknown event type {type!r}"
    patient_id = patient.pk if isinstance(patient, Patient) else patient
    event = OutboxEvent(
        type=type,
        patient_id=patient_id,
        payload=dict(payload),
        occurred_at=occurred_at or timezone.now(),
    )
    rows_insert([event])
    return event


def outbox_sequence(*, limit: int = 500, now: dt.datetime | None = None) -> int:
    """Give positions to committed rows that have none, in id order. Returns how many.

    Holds the sequencing lock until its commit, so two relays never hand out the same
    position and a larger position never commits before a smaller one.
    """
    now = now or timezone.now()
    # Looked at first without a transaction: on SQLite every transaction takes the write
    # lock, and a relay polling an empty outbox must not hold up writers.
    if not any_row(_sql().unsequenced_any):
        return 0
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with kept_cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEQUENCE_LOCK_KEY])
        with kept_cursor() as cursor:
            cursor.execute(_sql().unsequenced_ids, [limit])
            pending = [OutboxEvent(id=pk) for (pk,) in cursor.fetchall()]
            if not pending:
                return 0
            cursor.execute(_sql().last_position)
            row = cursor.fetchone()
        last = int(row[0]) if row is not None and row[0] is not None else 0
        for offset, event in enumerate(pending, start=1):
            event.position = last + offset
            event.sequenced_at = now
        rows_update(pending, ["position", "sequenced_at"])
    return len(pending)


def outbox_relay_run_once(
    *, publish: Publisher, limit: int = 200, older_than: dt.datetime | None = None
) -> list[OutboxEvent]:
    """Sequence what committed since last time, then, holding the publication lock, claim the
    (at most `limit`) lowest unpublished rows, hand them to `publish` in position order,
    queue their webhook deliveries and mark them published, all in one transaction. Returns
    the published rows.

    Another relay holding the publication lock is waited for (see the module docstring), at
    most twice LIVE_RELAY_STALL_SECONDS: it either finishes or is ended by then, otherwise
    the database's lock timeout error is raised. If `publish` raises, nothing is marked and
    the rows are claimed again by the next run. `older_than`: publish only events that
    occurred before it (the periodic backstop job, which takes over only what the web
    processes' relays left behind): the run still starts at the lowest unpublished position
    and stops before the first event that is too recent, so it stays unbroken.
    """
    outbox_sequence(limit=max(limit, 500))
    sql = _sql()
    if older_than is None:
        if not any_row(sql.unpublished_any):
            return []
    else:
        first = connection.ops.adapt_datetimefield_value(older_than)
        if not any_row(sql.lowest_unpublished_before, [first]):
            return []
    with transaction.atomic():
        _publication_lock()
        claimed = instances(OutboxEvent, sql.claim, [limit])
        if older_than is not None:
            claimed = list(itertools.takewhile(lambda e: e.occurred_at < older_than, claimed))
        if not claimed:
            return []
        publish(claimed)
        webhook_deliveries_enqueue(events=claimed)
        now = timezone.now()
        for row in claimed:
            row.published_at = now
            row.attempts += 1  # the row is locked: this is its count
        rows_update(claimed, ["published_at", "attempts"])
    return claimed


def _publication_lock() -> None:
    """Make this transaction the only one publishing, until it ends (PostgreSQL; SQLite's
    IMMEDIATE transaction already holds the database's write lock). Bounded both ways: this
    transaction may stay idle (publishing, between two statements) at most
    LIVE_RELAY_STALL_SECONDS before PostgreSQL ends its session, and it waits for a lock at
    most twice that (by then the holder has finished or been ended)."""
    if connection.vendor != "postgresql":
        return
    stall_ms = int(float(getattr(settings, "LIVE_RELAY_STALL_SECONDS", 10.0)) * 1000)
    with kept_cursor() as cursor:
        cursor.execute(
            "SELECT set_config('idle_in_transaction_session_timeout', %s, true),"
            " set_config('lock_timeout', %s, true)",
            [str(stall_ms), str(2 * stall_ms)],
        )
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PUBLISH_LOCK_KEY])


class _Statements:
    """The relay's statements, written once per process: it runs them on every pass."""

    def __init__(self) -> None:
        model = OutboxEvent
        pk, position, published, occurred = (
            f"o.{column(model, name)}" for name in ("pk", "position", "published_at", "occurred_at")
        )
        rows = f"FROM {table(model)} o WHERE"
        unpublished = f"{position} IS NOT NULL AND {published} IS NULL"
        claim = f"SELECT {select_list(model, 'o')} {rows}"
        # Only quoted names from the model's metadata go into the text (hence noqa: S608).
        self.unsequenced_any = f"SELECT 1 {rows} {position} IS NULL LIMIT 1"
        self.unsequenced_ids = f"SELECT {pk} {rows} {position} IS NULL ORDER BY {pk} LIMIT %s"
        self.last_position = f"SELECT MAX({position}) FROM {table(model)} o"  # noqa: S608
        self.unpublished_any = f"SELECT 1 {rows} {unpublished} LIMIT 1"
        lowest = f"SELECT {occurred} AS occurred_at {rows} {unpublished} ORDER BY {position}"
        self.lowest_unpublished_before = (
            f"SELECT 1 FROM ({lowest} LIMIT 1) lowest WHERE lowest.occurred_at < %s"  # noqa: S608
        )
        # No SKIP LOCKED: rows another relay holds are waited for, never jumped over.
        self.claim = f"{claim} {unpublished} ORDER BY {position} LIMIT %s{locking()}"


@statement
def _sql() -> _Statements:
    return _Statements()


def webhook_deliveries_enqueue(*, events: Sequence[OutboxEvent]) -> None:
    """Queue the webhook deliveries of the events the relay is publishing, inside the
    transaction that marks them published, so queued deliveries commit together with the
    mark (and a relay that dies queues them again, once: deliveries are unique per
    subscription and event). Sending is a periodic job (coordination.tasks)."""
    webhook_deliveries_queue(events=events)
