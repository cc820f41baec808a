"""Acknowledging an alert: a member of the patient's care team says the alert is in hand.
The alert leaves the inbox (coordination.selectors.PENDING) until a worse repeat escalates
it again; its task, if any, is left as it is (the work is done through the task).

Locks (`alert_acknowledge`): the alert row only, which the alert engine also takes (after
the pathway's instance) to count a repeat or escalate it, so an acknowledgement and an
escalation are ordered one after the other. Nothing else is locked (the history row, the
outbox event and the audit record are inserts).
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.utils.translation import gettext as _

from coordination.errors import Conflict, InvalidInput, NotAllowed, Problem
from coordination.models import AlertEvent, AlertRecord
from coordination.selectors import access_alert, care_team_patient_ids
from core.users import User
from live import events
from live.services.outbox import event_record
from patients.models import AuditEvent
from patients.services import audit_record

MAX_NOTE = 500


class AlreadyAcknowledged(Conflict):
    """Someone acknowledged the alert first; says who and when."""

    def __init__(self, alert: AlertRecord) -> None:
        assert alert.acknowledged_at is not None
        self.acknowledged_by = alert.acknowledged_by_label
        self.acknowledged_at = alert.acknowledged_at
        super().__init__(
            _("already acknowledged by %(who)s at %(when)s")
            % {
                "who": alert.acknowledged_by_label,
                "when": date_format(localtime(alert.acknowledged_at), "SHORT_DATETIME_FORMAT"),
            }
        )


def _label(user: User) -> str:
    full = getattr(user, "get_full_name", lambda: "")()
    return str(full or user.get_username())[:150]


def alert_acknowledge(
    *,
    user: User,
    alert_id: int,
    note: str = "",
    entry_point: str = AuditEvent.EntryPoint.SYSTEM,
    client_address: str | None = None,
    now: dt.datetime | None = None,
) -> AlertRecord:
    """Acknowledge the alert as `user`; returns it, acknowledged.

    Refused, writing nothing: NotFound when `user` is not a practitioner who may see the
    alert's patient (alike for an alert that does not exist; the error names its patient for
    the audit trail only); NotAllowed for one who sees it without being a member of the
    patient's care team (a break-the-glass reader); InvalidInput for a note over MAX_NOTE
    characters; AlreadyAcknowledged (a Conflict naming who and when) when it is no longer
    pending, as for the second of two people acknowledging it at once.

    Under the alert's row lock: stamps who and when on the alert, appends an AlertEvent to
    its history, records an `alert.acknowledged` outbox event and an audit record, in one
    transaction."""
    alert = access_alert(user=user, alert_id=alert_id)
    if alert.patient_id not in care_team_patient_ids(user, [alert.patient_id]):
        raise NotAllowed(_("only a member of the patient's care team may acknowledge its alerts"))
    text = note.strip() if isinstance(note, str) else ""
    if len(text) > MAX_NOTE:
        raise InvalidInput(
            [Problem("note", _("at most %(count)s characters") % {"count": MAX_NOTE})]
        )
    with transaction.atomic():
        locked = AlertRecord.objects.select_for_update().get(pk=alert.pk)
        if not locked.pending:
            raise AlreadyAcknowledged(locked)
        now = now or timezone.now()
        label = _label(user)
        locked.acknowledged_at = now
        locked.acknowledged_by_id = user.pk
        locked.acknowledged_by_label = label
        locked.save(update_fields=["acknowledged_at", "acknowledged_by", "acknowledged_by_label"])
        entry = AlertEvent.objects.create(
            alert=locked,
            action=AlertEvent.Action.ACKNOWLEDGE,
            actor_id=user.pk,
            actor_label=label,
            note=text,
            occurred_at=now,
        )
        acknowledged_event_record(locked, now)
        audit_record(
            actor=user,  # type: ignore[arg-type]  # access_alert: a practitioner, logged in
            action=AuditEvent.Action.UPDATE,
            resource_type="AlertRecord",
            resource_id=locked.pk,
            patient_id=locked.patient_id,
            purpose=AuditEvent.Purpose.CARE_COORDINATION,
            entry_point=entry_point,
            client_address=client_address,
            detail={"action": "acknowledge", "history": entry.pk},
            now=now,
            patient_checked=True,
        )
    return locked


def acknowledged_event_record(alert: AlertRecord, now: dt.datetime) -> None:
    """The outbox event of an acknowledged alert (live views drop it from their inbox)."""
    event_record(
        type=events.ALERT_ACKNOWLEDGED,
        patient=alert.patient_id,
        payload=events.alert_payload(
            alert_id=alert.pk,
            name=alert.name,
            pathway_id=alert.care_pathway_id,
            priority=alert.priority,
            fired=alert.fired,
            task_id=alert.task_id,
            kind=alert.kind,
            score=alert.score,
            band=alert.band,
        ),
        occurred_at=now,
    )


__all__ = ["MAX_NOTE", "AlreadyAcknowledged", "acknowledged_event_record", "alert_acknowledge"]
