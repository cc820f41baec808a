"""What the periodic jobs do: fire due timers, remind owners of tasks coming due, escalate
overdue tasks; and the dead-letter table of jobs that failed on every attempt.

Every sweep here is safe to run twice, or in two workers at once: each item is handled in its
own transaction that locks it (the pathway instance first, then the task, the order every
task service uses), and what was done is recorded in that same transaction (a timer marked
fired, a `TaskFollowUp` row unique per task and kind), so a second run finds nothing to do.
A crash half-way loses nothing: the items not yet handled are still due at the next run.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from coordination import task_states
from coordination.models import CarePathway, DeadLetter, Task, TaskFollowUp
from coordination.services.system_tasks import open_system_task, text_with_prefix
from coordination.services.tasks import task_history_record
from workflows.definition.compiled import TaskAction
from workflows.definition.durations import parse_duration
from workflows.errors import NotFound
from workflows.models import PathwayInstance
from workflows.selectors import instance_definition, lock_instance
from workflows.services import fire_due_timers

logger = logging.getLogger(__name__)

SYSTEM_LABEL = "system"
DEFAULT_ESCALATION_ROLE = "coordinator"


# --- timers ---------------------------------------------------------------------------------


@dataclass
class SweepReport:
    fired: int = 0
    skipped: int = 0
    failed: list[int] = field(default_factory=list)


def due_timers_sweep(
    *, now: dt.datetime | None = None, batch: int = 200, max_batches: int = 50
) -> SweepReport:
    """Fire every timer due at `now`, `batch` at a time (each timer in its own transaction,
    see workflows.services.timers). A timer that moves a pathway opens the new state's tasks
    through the engine's action registry. Stops when a batch makes no progress (only
    failures left: they stay scheduled for the next sweep)."""
    now = now or timezone.now()
    report = SweepReport()
    for _ in range(max_batches):
        sweep = fire_due_timers(now=now, limit=batch)
        report.fired += len(sweep.fired)
        report.skipped += len(sweep.skipped)
        report.failed.extend(t for t in sweep.failed if t not in report.failed)
        handled = len(sweep.fired) + len(sweep.skipped)
        if handled == 0 or handled + len(sweep.failed) < batch:
            break
    return report


# --- reminders and escalations --------------------------------------------------------------


def _duration(text: str) -> dt.timedelta:
    value = parse_duration(text)
    if not isinstance(value, dt.timedelta):  # months or years: not a sensible threshold
        raise ValueError(f"{text!r}: use days, hours or minutes")
    return value


def task_reminders_send(
    *, now: dt.datetime | None = None, lead: str | None = None, limit: int = 500
) -> list[int]:
    """Remind once each open task due within `lead` (PARCOURS_REMINDER_LEAD, e.g. PT2H).

    There is no e-mail: the reminder is a `remind` entry in the task's history (so the live
    layer and the worklists show it) and a `TaskFollowUp` row that makes it once only. Tasks
    given less than `lead` when opened are not reminded (they were urgent from the start), nor
    are tasks already overdue (escalation takes those). Returns the ids of the tasks reminded.
    """
    now = now or timezone.now()
    ahead = _duration(lead or settings.PARCOURS_REMINDER_LEAD)
    candidates = list(
        Task.objects.filter(
            status__in=sorted(task_states.OPEN),
            due_at__gt=now,
            due_at__lte=now + ahead,
            due_at__gte=F("created_at") + ahead,
        )
        .exclude(follow_ups__kind=TaskFollowUp.Kind.REMINDER)
        .order_by("due_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    return [task_id for task_id in candidates if _remind_one(task_id, now)]


def _remind_one(task_id: int, now: dt.datetime) -> bool:
    with transaction.atomic():
        task = Task.objects.select_for_update().filter(pk=task_id).first()
        if task is None or task.status not in task_states.OPEN or task.due_at is None:
            return False
        if TaskFollowUp.objects.filter(task=task, kind=TaskFollowUp.Kind.REMINDER).exists():
            return False
        detail = {"due_at": task.due_at.isoformat(), "owner": task.owner_id}
        task_history_record(task, "remind", [], None, SYSTEM_LABEL, now, detail)
        task.save(update_fields=["status", "version", "updated_at"])
        TaskFollowUp.objects.create(
            task=task,
            kind=TaskFollowUp.Kind.REMINDER,
            due_at=task.due_at,
            sent_at=now,
            detail=detail,
        )
    return True


def overdue_tasks_escalate(
    *, now: dt.datetime | None = None, grace: str | None = None, limit: int = 500
) -> list[int]:
    """Escalate once each open pathway task overdue by more than `grace`
    (PARCOURS_ESCALATION_GRACE): an urgent task opens for the role the definition names in the
    task's `escalate_to`, or for the care team's coordinator, in the same step (it is cancelled
    with the step's other tasks, and does not hold the step back). The overdue task records an
    `escalate` history entry. Tasks meant for the patient are not escalated; tasks of a
    suspended pathway wait until it resumes. Returns the ids of the tasks escalated."""
    now = now or timezone.now()
    late = _duration(grace or settings.PARCOURS_ESCALATION_GRACE)
    candidates = list(
        Task.objects.filter(
            status__in=sorted(task_states.OPEN),
            due_at__lt=now - late,
            care_pathway__isnull=False,
            for_patient=False,
        )
        .exclude(follow_ups__kind=TaskFollowUp.Kind.ESCALATION)
        .order_by("due_at", "id")
        .values_list("id", "care_pathway_id")[:limit]
    )
    escalated = []
    for task_id, pathway_id in candidates:
        try:
            if _escalate_one(task_id, pathway_id, now):
                escalated.append(task_id)
        except NotFound:
            continue
    return escalated


def _escalate_one(task_id: int, pathway_id: int, now: dt.datetime) -> bool:
    with transaction.atomic():
        pathway = CarePathway.objects.get(pk=pathway_id)
        if pathway.instance_id is None:
            return False
        instance = lock_instance(instance_id=pathway.instance_id)
        task = Task.objects.select_for_update().filter(pk=task_id).first()
        if task is None or task.status not in task_states.OPEN or task.due_at is None:
            return False
        if TaskFollowUp.objects.filter(task=task, kind=TaskFollowUp.Kind.ESCALATION).exists():
            return False
        if instance.status == PathwayInstance.Status.SUSPENDED:
            return False
        opened: Task | None = None
        role = DEFAULT_ESCALATION_ROLE
        if (
            instance.status == PathwayInstance.Status.ACTIVE
            and instance.state == task.pathway_state
        ):
            definition = instance_definition(instance)
            state = definition.state(instance.state)
            action = _task_action(state.tasks, task.code)
            alert = next((a for a in definition.alerts_in(state) if a.task_code == task.code), None)
            if action is not None and action.escalate_to:
                role = action.escalate_to
            elif alert is not None and alert.escalate_to:
                role = alert.escalate_to
            opened = open_system_task(
                instance=instance,
                definition=definition,
                state=state,
                code=f"escalation-{task.code}"[:63],
                title=text_with_prefix(task.title, {"en": "Overdue: ", "fr": "En retard : "}),
                role=role,
                priority=Task.Priority.URGENT,
                due=None,
                now=now,
            )
        detail: dict[str, Any] = {
            "due_at": task.due_at.isoformat(),
            "to_role": role,
            "task": opened.pk if opened else None,
        }
        task_history_record(task, "escalate", [], None, SYSTEM_LABEL, now, detail)
        task.save(update_fields=["status", "version", "updated_at"])
        TaskFollowUp.objects.create(
            task=task,
            kind=TaskFollowUp.Kind.ESCALATION,
            due_at=task.due_at,
            sent_at=now,
            opened_task=opened,
            detail=detail,
        )
    return True


def _task_action(actions: Sequence[TaskAction], code: str) -> TaskAction | None:
    return next((a for a in actions if a.code == code), None)


# --- dead letters -----------------------------------------------------------------------------


def dead_letter_record(
    *,
    task_name: str,
    task_id: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    exception: str,
    traceback: str,
    attempts: int,
    now: dt.datetime | None = None,
) -> DeadLetter:
    """Park a job that failed on its last attempt. Idempotent per Celery task id: recording
    the same failure again updates the row (last failure, attempts) rather than adding one."""
    now = now or timezone.now()
    with transaction.atomic():
        letter = DeadLetter.objects.select_for_update().filter(task_id=task_id).first()
        if letter is None:
            return DeadLetter.objects.create(
                task_name=task_name,
                task_id=task_id,
                args=list(args),
                kwargs=dict(kwargs),
                exception=exception[:10000],
                traceback=traceback[:50000],
                attempts=attempts,
                first_failed_at=now,
                last_failed_at=now,
            )
        letter.exception, letter.traceback = exception[:10000], traceback[:50000]
        letter.attempts = max(letter.attempts, attempts)
        letter.last_failed_at = now
        letter.save(update_fields=["exception", "traceback", "attempts", "last_failed_at"])
        return letter


def dead_letter_requeue(*, dead_letter_id: int, actor: Any, now: dt.datetime | None = None) -> bool:
    """Send the parked job again (a new Celery task, after commit) and mark the letter
    resolved. A letter already resolved is left alone: returns False."""
    now = now or timezone.now()
    with transaction.atomic():
        letter = DeadLetter.objects.select_for_update().get(pk=dead_letter_id)
        if letter.resolved:
            return False
        letter.resolved, letter.resolved_at = True, now
        who = getattr(actor, "username", None) or str(actor)
        letter.resolution = f"re-queued by {who}"[:200]
        letter.save(update_fields=["resolved", "resolved_at", "resolution"])
        name, args, kwargs = letter.task_name, list(letter.args), dict(letter.kwargs)
        transaction.on_commit(lambda: _send(name, args, kwargs))
    return True


def _send(name: str, args: list[Any], kwargs: dict[str, Any]) -> None:
    # The project's Celery app (config.celery, loaded with the settings) is the current one.
    current_app.send_task(name, args=args, kwargs=kwargs)
