"""The event outbox: services record events in their own transaction; the relay publishes
them after commit.

Ordering. Row ids come from a sequence and are not commit-ordered: a transaction holding
id 10 can commit after one holding id 11. `outbox_sequence` therefore gives each committed,
unsequenced row a `position` (max + 1, in id order) while holding a transaction-level lock
(a PostgreSQL advisory lock; SQLite's IMMEDIATE transactions already serialise writers), so
positions are gap-free and every position becomes visible before any larger one. A row that
commits late simply gets a later position: a client resuming "after position p" still
receives it.

Publishing. `outbox_relay_run_once` claims sequenced, unpublished rows with
`SELECT ... FOR UPDATE SKIP LOCKED` (several relays share the work, none takes a row another
holds), publishes them, and marks them published in the same transaction. A relay killed
half-way rolls back its claim and the rows are published again later: delivery is at least
once, receivers de-duplicate by position.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence

from django.db import connection, transaction
from django.db.models import F, Max
from django.utils import timezone

from coordination import events
from coordination.models import OutboxEvent
from coordination.services.webhooks import webhook_deliveries_queue
from patients.models import Patient
from patients.services.rows import rows_insert, rows_update

logger = logging.getLogger(__name__)

# Key of the PostgreSQL advisory lock serialising position assignment ("parcours outbox").
SEQUENCE_LOCK_KEY = 0x7061726F7574

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
    if not OutboxEvent.objects.filter(position__isnull=True).exists():
        return 0
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEQUENCE_LOCK_KEY])
        pending = list(
            OutboxEvent.objects.filter(position__isnull=True).order_by("id").only("id")[:limit]
        )
        if not pending:
            return 0
        last = OutboxEvent.objects.aggregate(last=Max("position"))["last"] or 0
        for offset, row in enumerate(pending, start=1):
            row.position = last + offset
            row.sequenced_at = now
        rows_update(pending, ["position", "sequenced_at"])
    return len(pending)


def outbox_relay_run_once(
    *, publish: Publisher, limit: int = 200, older_than: dt.datetime | None = None
) -> list[OutboxEvent]:
    """Sequence what committed since last time, then claim up to `limit` unpublished rows
    (skipping rows another relay holds), hand them to `publish` in position order, queue
    their webhook deliveries and mark them published, all in one transaction. Returns the
    published rows.

    If `publish` raises, nothing is marked and the rows are claimed again by the next run.
    `older_than` limits the claim to events that occurred before it (the periodic backstop
    job, which only takes over what the web processes' relays left behind).
    """
    outbox_sequence(limit=max(limit, 500))
    unpublished = OutboxEvent.objects.filter(position__isnull=False, published_at__isnull=True)
    if older_than is not None:
        unpublished = unpublished.filter(occurred_at__lt=older_than)
    if not unpublished.exists():
        return []
    with transaction.atomic():
        claimed = list(unpublished.select_for_update(skip_locked=True).order_by("position")[:limit])
        if not claimed:
            return []
        publish(claimed)
        webhook_deliveries_enqueue(events=claimed)
        now = timezone.now()
        for row in claimed:
            row.published_at = now
            row.attempts += 1
        OutboxEvent.objects.filter(pk__in=[row.pk for row in claimed]).update(
            published_at=now, attempts=F("attempts") + 1
        )
    return claimed


def webhook_deliveries_enqueue(*, events: Sequence[OutboxEvent]) -> None:
    """Queue the webhook deliveries of the events the relay is publishing, inside the
    transaction that marks them published, so queued deliveries commit together with the
    mark (and a relay that dies queues them again, once: deliveries are unique per
    subscription and event). Sending is a periodic job (coordination.tasks)."""
    webhook_deliveries_queue(events=events)
