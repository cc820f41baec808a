"""Celery jobs. Each takes ids (or nothing), calls one service, and is safe to run twice: the
services record what they did in the transaction that does it (see coordination.services.jobs).

Every job is acknowledged late and re-queued if its worker dies (settings, CELERY_ block);
a failure is retried with exponential backoff, and after the last attempt parked in the
dead-letter table (`DeadLetter`, in the admin) instead of being lost.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.utils import timezone

from coordination.services.alerts import missing_measurements_check
from coordination.services.jobs import (
    dead_letter_record,
    due_timers_sweep,
    overdue_tasks_escalate,
    task_reminders_send,
)
from live.relay import channel_layer_publisher
from live.services.outbox import outbox_relay_run_once
from live.services.webhooks import webhook_deliveries_send_due
from patients.services import audit_chain_anchor, audit_chain_extend

logger = logging.getLogger(__name__)


class Job(Task):
    """Base of every Parcours job: retries with backoff, then a dead letter."""

    autoretry_for = (Exception,)
    max_retries = settings.CELERY_JOB_MAX_RETRIES
    retry_backoff = 1  # seconds: 1, 2, 4, 8... capped below
    retry_backoff_max = 600
    retry_jitter = True
    acks_late = True
    reject_on_worker_lost = True

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        # Called once the last retry has failed too (a retry raises Retry, not the error).
        dead_letter_record(
            task_name=self.name,
            task_id=task_id,
            args=list(args or ()),
            kwargs=dict(kwargs or {}),
            exception=f"{type(exc).__name__}: {exc}",
            traceback=str(einfo.traceback) if einfo is not None else "",
            attempts=self.request.retries + 1,
        )
        logger.error("job %s %s parked as a dead letter: %r", self.name, task_id, exc)


@shared_task(base=Job, name="coordination.timers_sweep")
def timers_sweep() -> dict[str, int]:
    report = due_timers_sweep()
    return {"fired": report.fired, "skipped": report.skipped, "failed": len(report.failed)}


@shared_task(base=Job, name="coordination.reminders_send")
def reminders_send() -> int:
    return len(task_reminders_send())


@shared_task(base=Job, name="coordination.overdue_escalate")
def overdue_escalate() -> int:
    return len(overdue_tasks_escalate())


@shared_task(base=Job, name="coordination.missing_measurements_check")
def missing_measurements_run() -> int:
    return len(missing_measurements_check())


@shared_task(base=Job, name="coordination.webhooks_send")
def webhooks_send() -> dict[str, int]:
    report = webhook_deliveries_send_due(limit=settings.WEBHOOK_SEND_BATCH)
    return {
        "succeeded": report.succeeded,
        "retried": report.retried,
        "failed": report.failed,
        "dropped": report.dropped,
    }


@shared_task(base=Job, name="coordination.outbox_relay_backstop")
def outbox_relay_backstop() -> int:
    """Publish the events that the web processes' relays left unpublished for longer than
    LIVE_RELAY_BACKSTOP_SECONDS (no web process running, or their relays failing), so that
    their webhook deliveries are queued and shared-layer clients get them. Clients also
    recover them from the outbox on resume; this job is the safety net, not the path."""
    older_than = timezone.now() - dt.timedelta(seconds=settings.LIVE_RELAY_BACKSTOP_SECONDS)
    published = outbox_relay_run_once(
        publish=channel_layer_publisher(), limit=500, older_than=older_than
    )
    return len(published)


@shared_task(base=Job, name="coordination.audit_chain_backstop")
def audit_chain_backstop() -> int:
    """Chain the committed audit records that no relay has chained yet (no web process or
    `run_relay` running, or their relays failing), then anchor the chain head outside the
    database at most every AUDIT_CHECKPOINT_SECONDS (patients.services.audit_chain_anchor).
    Returns how many records it chained."""
    chained = total = audit_chain_extend()
    while chained:
        chained = audit_chain_extend()
        total += chained
    audit_chain_anchor()
    return total
