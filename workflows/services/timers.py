"""Firing due timers. Celery beat calls `fire_due_timers` periodically; it is safe to run in
several processes at once and to run again after a crash.

Each timer fires in its own transaction, which locks the instance first and then the timer row
(the same order as `instance_fire`, which locks the instance and then cancels its timers), so
sweepers and transitions never deadlock. A timer is marked fired in the transaction that fires
its event: it fires exactly once, or not at all if that transaction rolls back.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from workflows.actors import SYSTEM
from workflows.errors import NotFound, RefusalReason, TransitionRefused
from workflows.models import PathwayInstance, Timer
from workflows.selectors import instance_definition, lock_instance
from workflows.services.instances import instance_move, resolve_transition

logger = logging.getLogger(__name__)


@dataclass
class TimerSweep:
    fired: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def fire_due_timers(*, now: dt.datetime | None = None, limit: int = 500) -> TimerSweep:
    """Fire every scheduled timer due at `now` on an active instance, oldest first.

    Timers of suspended instances wait. A timer whose transition is refused (its guard is
    false) is marked skipped with the reason. A timer whose firing raises stays scheduled and
    is reported as failed; the sweep goes on with the others. Returns the ids of each kind.
    """
    now = now or timezone.now()
    sweep = TimerSweep()
    due = list(
        Timer.objects.filter(
            status=Timer.Status.SCHEDULED,
            due_at__lte=now,
            instance__status=PathwayInstance.Status.ACTIVE,
        )
        .order_by("due_at", "id")
        .values_list("id", "instance_id")[:limit]
    )
    for timer_id, instance_id in due:
        try:
            outcome = _fire_one(timer_id, instance_id, now)
        except Exception:
            # One timer's failure (its transaction rolled back) must not hold up the others:
            # it stays scheduled and is retried at the next sweep.
            logger.exception("timer %s on instance %s failed to fire", timer_id, instance_id)
            sweep.failed.append(timer_id)
            continue
        if outcome is True:
            sweep.fired.append(timer_id)
        elif outcome is False:
            sweep.skipped.append(timer_id)
    return sweep


PATHWAY_TIMER_RETRY = dt.timedelta(hours=1)


def _fire_one(timer_id: int, instance_id: int, now: dt.datetime) -> bool | None:
    """True: fired. False: skipped. None: someone else handled it, or it is not due anymore."""
    with transaction.atomic():
        try:
            instance = lock_instance(instance_id=instance_id)
        except NotFound:
            return None
        timer = (
            Timer.objects.select_for_update(skip_locked=True)
            .filter(pk=timer_id, status=Timer.Status.SCHEDULED)
            .first()
        )
        if timer is None or instance.status != PathwayInstance.Status.ACTIVE:
            return None
        payload = {"timer": timer.pk, "due_at": timer.due_at.isoformat()}
        compiled = instance_definition(instance)
        if (
            timer.state == Timer.PATHWAY
            and timer.event not in compiled.state(instance.state).transitions
        ):
            # A pathway timer waits for a state that handles its event (the hospital stay
            # does not end the prescription; it is decided on the way back).
            timer.due_at = now + PATHWAY_TIMER_RETRY
            timer.note = f"deferred: state {instance.state!r} does not handle {timer.event!r}"
            timer.save(update_fields=["due_at", "note"])
            return None
        try:
            # The refusal is kept in the timer's note: in English whatever language is active,
            # like every stored text.
            with translation.override("en"):
                if timer.state not in (instance.state, Timer.PATHWAY):
                    raise TransitionRefused(
                        RefusalReason.NOT_AVAILABLE,
                        _("the instance left state %(state)s") % {"state": repr(timer.state)},
                    )
                transition = resolve_transition(instance, compiled, timer.event, SYSTEM, payload)
        except TransitionRefused as refusal:
            timer.status, timer.resolved_at = Timer.Status.SKIPPED, now
            timer.note = refusal.message[:500]
            timer.save(update_fields=["status", "resolved_at", "note"])
            logger.info("timer %s skipped: %s", timer.pk, refusal.message)
            return False
        # Mark it first: leaving the state cancels the instance's scheduled timers.
        timer.status, timer.resolved_at = Timer.Status.FIRED, now
        timer.save(update_fields=["status", "resolved_at"])
        instance_move(instance, compiled, transition, SYSTEM, payload, now)
        return True
