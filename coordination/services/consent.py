"""What a withdrawn remote-monitoring consent closes.

While a patient withdraws `remote_monitoring`, their devices' readings are refused and no
measurement is expected of them (coordination.services.alerts). The work already opened
because a measurement was missing then asks for something the patient has refused: on the
withdrawal, in its transaction, each such task still open is cancelled and its alert leaves
the inbox, acknowledged by the system with the reason, and the pathway's risk is computed
again. Alerts raised by readings received before the withdrawal stay: those readings were
sent with consent and still need looking at.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from coordination import task_states
from coordination.models import AlertEvent, AlertRecord, CarePathway, Task
from coordination.selectors import PENDING
from coordination.services.acknowledgements import acknowledged_event_record
from coordination.services.risk import alert_task_closed
from coordination.services.tasks import task_event_record, task_history_record
from core.sql import rows_update
from live import events
from patients.models import Consent, Patient
from workflows.selectors import compiled_definition_by_id

WITHDRAWN_REASON = "remote monitoring consent withdrawn"
SYSTEM_LABEL = "system"


def missing_measurement_work_close(*, patient_id: int, actor_label: str, now: dt.datetime) -> int:
    """Cancel the open tasks of the patient's pending missing-measurement alerts and
    acknowledge those alerts (by the system, with the reason); returns how many alerts."""
    alerts = list(
        AlertRecord.objects.select_for_update()
        .filter(PENDING, patient_id=patient_id, kind=AlertRecord.Kind.MISSING)
        .order_by("pk")
    )
    if not alerts:
        return 0
    tasks = {
        t.pk: t
        for t in Task.objects.select_for_update()
        .filter(pk__in=[a.task_id for a in alerts if a.task_id], status__in=task_states.OPEN)
        .order_by("pk")
    }
    closed: dict[int, list[int]] = defaultdict(list)
    for task in tasks.values():
        task_history_record(
            task,
            "cancel",
            [task_states.CANCELLED],
            actor=None,
            actor_label=actor_label,
            now=now,
            detail={"reason": WITHDRAWN_REASON},
        )
        rows_update([task], ["status", "version", "updated_at", "ended_at"])
        task_event_record(task, events.TASK_CHANGED, "cancel")
        if task.care_pathway_id is not None:
            closed[task.care_pathway_id].append(task.pk)
    for alert in alerts:
        alert.acknowledged_at = now
        alert.acknowledged_by = None
        alert.acknowledged_by_label = SYSTEM_LABEL
        alert.save(update_fields=["acknowledged_at", "acknowledged_by", "acknowledged_by_label"])
        AlertEvent.objects.create(
            alert=alert,
            action=AlertEvent.Action.ACKNOWLEDGE,
            actor=None,
            actor_label=SYSTEM_LABEL,
            note=WITHDRAWN_REASON,
            occurred_at=now,
        )
        acknowledged_event_record(alert, now)
    pathways = CarePathway.objects.filter(pk__in=closed).select_related("instance__definition")
    for pathway in pathways:
        instance = pathway.instance
        if instance is None:
            continue
        definition = compiled_definition_by_id(instance.definition_id, instance.definition.checksum)
        alert_task_closed(
            task_ids=closed[pathway.pk], care_pathway_id=pathway.pk, definition=definition, now=now
        )
    return len(alerts)


def consent_changed_receive(
    *,
    patient: Patient,
    scope: str,
    given: bool,
    actor_label: str,
    now: dt.datetime,
    **kwargs: Any,
) -> None:
    """The receiver of directory.signals.consent_changed (CoordinationConfig.ready)."""
    if scope == Consent.Scope.REMOTE_MONITORING and not given:
        missing_measurement_work_close(patient_id=patient.pk, actor_label=actor_label, now=now)
