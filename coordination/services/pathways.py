"""Care pathways: a patient, an engine instance and a care team.

The engine knows roles, not users: a user fires an event with the roles they play in the
patient's care team (directly, or through a service team). Every service here locks the
engine instance first (through the engine), then rows of this app. Audit records take no
lock (they are chained after commit).

A start creates its instance rather than locking one: it locks the patient's care team row
first (as directory.services.care_teams does before its own writes), so that two starts of
one pathway for one patient are serialised and the second sees the first; nothing that holds
an instance, pathway or task lock waits for a care team row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from coordination.errors import NotAllowed, PathwayRunning
from coordination.models import CarePathway
from coordination.selectors import pathway_patient_id
from coordination.selectors.pathways import (
    pathway_id_from_subject,
    running_care_pathways,
    subject_of,
)
from coordination.services.tasks import step_done_check
from coordination.services.triage import patient_risk_sync
from directory.models import CareTeam
from directory.selectors import PATIENT_ROLE, care_roles
from directory.services.care_teams import care_team_for_patient
from live import events
from live.services.outbox import event_record
from patients.models import AuditEvent, Patient
from patients.services import audit_record
from workflows.actions import StateChange
from workflows.actors import Actor
from workflows.models import HistoryEntry
from workflows.selectors import compiled_definition, definition_latest_active, lock_instance
from workflows.services import (
    FireResult,
    instance_cancel,
    instance_fire,
    instance_resume,
    instance_start,
    instance_suspend,
)


def actor_for(user: AbstractBaseUser | None, patient_id: int) -> Actor:
    if user is None:
        return Actor(id="system", is_system=True)
    return Actor(id=f"user:{user.pk}", roles=care_roles(user=user, patient_id=patient_id))


def care_pathway_start(
    *,
    patient: Patient,
    key: str,
    user: AbstractBaseUser | None,
    context: Mapping[str, Any] | None = None,
    entry_point: str = AuditEvent.EntryPoint.SYSTEM,
    ask_before_concurrent: bool = False,
) -> CarePathway:
    """Start the latest active version of pathway `key` for the patient. The initial state's
    tasks open for the care team in the same transaction. `user` must play a role in the
    patient's care team (None: the system, e.g. a platform's integration).

    Refuses with PathwayRunning (a Conflict naming the running ones), writing nothing, while
    the patient has a care pathway of `key` (any version) that has not ended, unless the
    version being started has `allow_concurrent`. Locks the patient's care team row before
    that check (see the module docstring), so two simultaneous starts give one pathway and one
    Conflict. With `allow_concurrent` and `ask_before_concurrent`, a start while one runs is
    refused too, `confirmable`: the caller shows the running ones and starts again without
    asking once the user has confirmed (the web does; the API starts at once)."""
    actor = actor_for(user, patient.pk)
    if user is not None and not actor.roles - {PATIENT_ROLE}:
        raise NotAllowed(_("only a member of the patient's care team may start a pathway"))
    with transaction.atomic():
        team = care_team_for_patient(patient=patient)
        if not compiled_definition(definition_latest_active(key=key)).allow_concurrent:
            team = CareTeam.objects.select_for_update().get(pk=team.pk)
            _refuse_if_running(patient_id=patient.pk, key=key)
        elif ask_before_concurrent:
            _refuse_if_running(patient_id=patient.pk, key=key, confirmable=True)
        # The row exists before the engine runs the initial state's on_enter, so that the
        # task handler finds the patient and the team through the instance's subject.
        pathway = CarePathway.objects.create(
            patient=patient,
            care_team=team,
            started_by_id=user.pk if user is not None else None,
            created_at=timezone.now(),
        )
        instance = instance_start(
            key=key, actor=actor, context=dict(context or {}), subject=subject_of(pathway)
        )
        pathway.instance = instance
        pathway.save(update_fields=["instance"])
        event_record(
            type=events.PATHWAY_STARTED,
            patient=patient,
            payload=events.pathway_payload(
                pathway_id=pathway.pk,
                instance_id=instance.pk,
                revision=instance.revision,
                status=instance.status,
                state=instance.state,
                event="start",
            ),
            occurred_at=instance.started_at,
        )
        audit_record(
            actor=user,
            action=AuditEvent.Action.CREATE,
            resource_type="CarePathway",
            resource_id=pathway.pk,
            patient_id=patient.pk,
            purpose=AuditEvent.Purpose.CARE_COORDINATION,
            entry_point=entry_point,
            detail={"pathway": f"{key}@{instance.definition.version}"},
        )
    return pathway


def _refuse_if_running(*, patient_id: int, key: str, confirmable: bool = False) -> None:
    running = running_care_pathways(patient_id=patient_id, key=key)
    instance = running[0].instance if running else None
    if instance is None:  # running ones have an instance: the filter is on its status
        return
    first = running[0]
    if confirmable:
        message = _(
            "the patient already follows this pathway (care pathway %(pathway)s, %(key)s "
            "version %(version)s, in state %(state)s): confirm to start another alongside it"
        )
    else:
        message = _(
            "the patient already follows this pathway: care pathway %(pathway)s "
            "(%(key)s version %(version)s, %(status)s, in state %(state)s); "
            "it must end before another starts"
        )
    raise PathwayRunning(
        message
        % {
            "pathway": first.pk,
            "key": instance.definition.key,
            "version": instance.definition.version,
            "status": instance.status,
            "state": instance.state,
        },
        running=running,
        confirmable=confirmable,
    )


def pathway_move_record(change: StateChange) -> None:
    """The engine's move hook (registered in CoordinationConfig.ready): every move of a care
    pathway, whoever caused it (a person, a timer, tasks_completed), writes its outbox event
    in the engine's transaction."""
    pathway_id = pathway_id_from_subject(change.instance.subject)
    if pathway_id is None or change.entry is None:
        return
    patient_id = pathway_patient_id(pathway_id=pathway_id)
    if patient_id is None:
        raise CarePathway.DoesNotExist(f"instance {change.instance.pk} moves pathway {pathway_id}")
    event_record(
        type=events.PATHWAY_MOVED,
        patient=patient_id,
        payload=events.pathway_payload(
            pathway_id=pathway_id,
            instance_id=change.instance.pk,
            revision=change.entry.revision,
            status=change.instance.status,
            state=change.entry.to_state,
            from_state=change.entry.from_state,
            event=change.entry.event,
        ),
        occurred_at=change.at,
    )


def care_pathway_fire(
    *,
    pathway: CarePathway,
    event: str,
    user: AbstractBaseUser | None,
    payload: Mapping[str, Any] | None = None,
    expected_revision: int | None = None,
    entry_point: str = AuditEvent.EntryPoint.SYSTEM,
) -> FireResult:
    """Fire `event` as `user`, with the roles they play in the care team. Refusals come from
    the engine (TransitionRefused, StaleRevision) and write nothing."""
    actor = actor_for(user, pathway.patient_id)
    if pathway.instance_id is None:
        raise NotAllowed(_("this pathway has not started"))
    with transaction.atomic():
        result = instance_fire(
            instance_id=pathway.instance_id,
            event=event,
            actor=actor,
            payload=payload,
            expected_revision=expected_revision,
        )
        audit_record(
            actor=user,
            action=AuditEvent.Action.UPDATE,
            resource_type="CarePathway",
            resource_id=pathway.pk,
            patient_id=pathway.patient_id,
            purpose=AuditEvent.Purpose.CARE_COORDINATION,
            entry_point=entry_point,
            detail={"event": event, "to": result.instance.state},
        )
    return result


STATUS_EVENTS = {
    "suspend": events.PATHWAY_SUSPENDED,
    "resume": events.PATHWAY_RESUMED,
    "cancel": events.PATHWAY_CANCELLED,
}


def _status_change(
    service: Any,
    pathway: CarePathway,
    user: AbstractBaseUser | None,
    reason: str,
    what: str,
    entry_point: str,
) -> None:
    actor = actor_for(user, pathway.patient_id)
    if user is not None and not actor.roles - {PATIENT_ROLE}:
        refusals = {
            "suspend": _("only a professional of the patient's care team may suspend a pathway"),
            "resume": _("only a professional of the patient's care team may resume a pathway"),
            "cancel": _("only a professional of the patient's care team may cancel a pathway"),
        }
        raise NotAllowed(refusals[what])
    if pathway.instance_id is None:
        raise NotAllowed(_("this pathway has not started"))
    with transaction.atomic():
        entry: HistoryEntry = service(instance_id=pathway.instance_id, actor=actor, reason=reason)
        event_record(
            type=STATUS_EVENTS[what],
            patient=pathway.patient_id,
            payload=events.pathway_payload(
                pathway_id=pathway.pk,
                instance_id=pathway.instance_id,
                revision=entry.revision,
                status=entry.instance.status,
                state=entry.to_state,
                event=entry.event,
            ),
            occurred_at=entry.occurred_at,
        )
        if what == "resume":
            # Tasks may have been completed while the pathway was suspended.
            step_done_check(
                pathway_id=pathway.pk,
                instance=lock_instance(instance_id=pathway.instance_id),
                now=timezone.now(),
            )
        audit_record(
            actor=user,
            action=AuditEvent.Action.UPDATE,
            resource_type="CarePathway",
            resource_id=pathway.pk,
            patient_id=pathway.patient_id,
            purpose=AuditEvent.Purpose.CARE_COORDINATION,
            entry_point=entry_point,
            detail={"status": what, "reason": reason[:200]},
        )
        # Only active pathways count in the patient's triage rank: bring the patient's open
        # tasks in step once this commits (holding no lock then, as patient_risk_sync needs).
        patient_id = pathway.patient_id
        transaction.on_commit(lambda: patient_risk_sync(patient_id=patient_id))


def care_pathway_suspend(
    *,
    pathway: CarePathway,
    user: AbstractBaseUser | None,
    reason: str = "",
    entry_point: str = AuditEvent.EntryPoint.SYSTEM,
) -> None:
    _status_change(instance_suspend, pathway, user, reason, "suspend", entry_point)


def care_pathway_resume(
    *,
    pathway: CarePathway,
    user: AbstractBaseUser | None,
    reason: str = "",
    entry_point: str = AuditEvent.EntryPoint.SYSTEM,
) -> None:
    """Resume; if every task of the current step was done meanwhile, the pathway moves on."""
    _status_change(instance_resume, pathway, user, reason, "resume", entry_point)


def care_pathway_cancel(
    *,
    pathway: CarePathway,
    user: AbstractBaseUser | None,
    reason: str = "",
    entry_point: str = AuditEvent.EntryPoint.SYSTEM,
) -> None:
    """Cancel the pathway; the engine's exit hook cancels its open tasks."""
    _status_change(instance_cancel, pathway, user, reason, "cancel", entry_point)
