"""Tasks: opened by the engine's `task` action, then claimed, started, completed...

Locks, always in this order: the pathway's engine instance (when the task belongs to one),
then the task row (audit records take no lock: they are chained after commit). Taking the
instance first
serialises every task action of a pathway, which is what makes "the last task completed
fires tasks_completed" exact: two nurses completing the last two tasks at once cannot both
believe the other's task is still open.

Every action checks the version the caller saw (`expected_version`, when given) and the
FHIR transition table (coordination.task_states); a refused action raises before writing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from guardian.shortcuts import assign_perm, remove_perm

from coordination import task_states
from coordination.errors import Conflict, InvalidInput, NotAllowed, Problem
from coordination.models import CarePathway, Task, TaskEvent
from coordination.selectors import (
    access_task_keys,
    patient_risk_rank,
    step_task_statuses,
    step_tasks_open_locked,
    task_locked,
)
from coordination.selectors.pathways import pathway_id_from_subject
from coordination.services.risk import alert_task_closed
from core.sql import rows_insert, rows_update
from directory.models import CareTeamMember, Practitioner, ServiceTeam
from directory.selectors import care_roles, practitioner_of
from live import events
from live.services.outbox import event_record
from patients.models import AuditEvent, Patient
from patients.selectors import visible_patient_ids, visible_patients
from patients.services import audit_record
from workflows.actions import StateChange
from workflows.actors import SYSTEM
from workflows.definition.compiled import StateSpec, TaskAction
from workflows.definition.durations import add_duration
from workflows.definition.schema import TASKS_COMPLETED
from workflows.errors import ActionNotRegistered, TransitionRefused
from workflows.selectors import instance_definition, lock_instance
from workflows.services import instance_fire

logger = logging.getLogger(__name__)
MAX_NOTE = 4000


# --- opened and closed by the engine ------------------------------------------------------


def open_task_for_state(change: StateChange, action: TaskAction) -> None:
    """The engine's `task` action handler (registered in CoordinationConfig.ready)."""
    pathway_id = pathway_id_from_subject(change.instance.subject)
    if pathway_id is None:
        raise ActionNotRegistered(
            f"instance {change.instance.pk} is not a care pathway: cannot open task {action.code!r}"
        )
    pathway = CarePathway.objects.only("id", "patient_id", "care_team_id").get(pk=pathway_id)
    members = list(
        CareTeamMember.objects.filter(
            care_team_id=pathway.care_team_id, role=action.role, active=True
        ).select_related("practitioner")
    )
    people = [
        m.practitioner for m in members if m.practitioner is not None and m.practitioner.active
    ]
    teams = [m.service_team_id for m in members if m.service_team_id is not None]
    owner = people[0] if len(people) == 1 and not teams else None
    now = change.at
    task = Task.objects.create(
        care_pathway=pathway,
        patient_id=pathway.patient_id,
        code=action.code,
        title=action.title,
        description=action.description or "",
        status=task_states.READY,
        priority=action.priority,
        priority_rank=task_states.PRIORITY_RANK[action.priority],
        risk_rank=patient_risk_rank(patient_id=pathway.patient_id),
        due_at=add_duration(now, action.due) if action.due else None,
        owner=owner,
        offered_role=action.role,
        offered_team_id=teams[0] if len(teams) == 1 and not people else None,
        for_patient=action.role == "patient",
        requester_label=f"pathway:{change.definition.key}@{change.definition.version}",
        pathway_state=change.state.name,
        pathway_revision=change.entry.revision if change.entry else None,
        created_at=now,
        updated_at=now,
    )
    TaskEvent.objects.create(
        task=task,
        version=1,
        action="open",
        from_status="",
        to_status=task.status,
        actor_label=change.actor.id,
        detail={"owner": owner.pk} if owner else {},
        occurred_at=now,
    )
    if owner is not None:
        assign_perm("coordination.change_task", owner.user, task)
    task_event_record(task, events.TASK_CREATED, "open")


def cancel_tasks_of_left_state(change: StateChange, left: StateSpec) -> None:
    """The engine's exit hook: tasks still open in a state the pathway leaves are cancelled
    (they belonged to that step; re-entering the state opens them anew)."""
    pathway_id = pathway_id_from_subject(change.instance.subject)
    if pathway_id is None:
        return
    cancelled: list[int] = []
    for task in step_tasks_open_locked(pathway_id=pathway_id, state=left.name):
        task_history_record(
            task,
            "cancel",
            [task_states.CANCELLED],
            actor=None,
            actor_label=change.actor.id,
            now=change.at,
            detail={"reason": "the pathway left this step"},
        )
        rows_update([task], ["status", "version", "updated_at", "ended_at"])
        task_event_record(task, events.TASK_CHANGED, "cancel")
        cancelled.append(task.pk)
    if cancelled:
        alert_task_closed(
            task_ids=cancelled,
            care_pathway_id=pathway_id,
            definition=change.definition,
            now=change.at,
        )


def task_priority_raise(
    task: Task,
    *,
    priority: str,
    due_within: str | None,
    actor_label: str,
    now: dt.datetime,
    detail: Mapping[str, Any],
) -> bool:
    """Raise an open task's priority to `priority` when that is higher, and bring its due time
    to at most `now + due_within`; one history entry and one live event when anything
    changed. The caller holds the task's lock (or created it in this transaction). Returns
    whether the task changed."""
    if task.status not in task_states.OPEN:
        return False
    changed: dict[str, Any] = {}
    rank = task_states.PRIORITY_RANK[priority]
    if rank < task.priority_rank:
        changed["priority"] = [task.priority, priority]
        task.priority, task.priority_rank = priority, rank
    if due_within is not None:
        latest = add_duration(now, due_within)
        if task.due_at is None or task.due_at > latest:
            changed["due_at"] = [
                task.due_at.isoformat() if task.due_at else None,
                latest.isoformat(),
            ]
            task.due_at = latest
    if not changed:
        return False
    task_history_record(task, "escalate", [], None, actor_label, now, {**detail, **changed})
    rows_update([task], ["priority", "priority_rank", "due_at", "version", "updated_at"])
    task_event_record(task, events.TASK_CHANGED, "escalate")
    return True


# --- actions by people --------------------------------------------------------------------


@dataclass(frozen=True)
class TaskActionInput:
    action: str
    expected_version: int | None = None
    note: str = ""
    output: Mapping[str, Any] = field(default_factory=dict)
    new_owner_id: int | None = None  # reassign


def task_act(
    *,
    task_id: int,
    user: AbstractBaseUser,
    data: TaskActionInput,
    entry_point: str = AuditEvent.EntryPoint.SYSTEM,
    client_address: str | None = None,
    now: dt.datetime | None = None,
) -> Task:
    """Do `data.action` on the task as `user`.

    Raises NotFound (missing or not visible: the same), InvalidInput, NotAllowed, Conflict
    (stale version, or the action does not apply to the task's status). Completing the last
    open task of the pathway's current state fires `tasks_completed` in the same transaction.
    """
    rule = task_states.ACTIONS.get(data.action)
    if rule is None:
        allowed = ", ".join(task_states.ACTIONS)
        raise InvalidInput(
            [
                Problem(
                    "action",
                    _("unknown action %(action)s (%(allowed)s)")
                    % {"action": repr(data.action), "allowed": allowed},
                )
            ]
        )
    if len(data.note) > MAX_NOTE:
        raise InvalidInput([Problem("note", _("longer than %(n)d characters") % {"n": MAX_NOTE})])
    now = now or timezone.now()
    visible = access_task_keys(user=user, task_id=task_id)
    practitioner = visible.practitioner
    with transaction.atomic():
        instance = None
        if visible.instance_id is not None:
            instance = lock_instance(instance_id=visible.instance_id)
        task = task_locked(task_id=task_id)
        if data.expected_version is not None and task.version != data.expected_version:
            raise Conflict(
                _("the task changed since you read it (version %(current)s, not %(expected)s)")
                % {"current": task.version, "expected": data.expected_version},
                current_version=task.version,
            )
        previous_owner_id = task.owner_id
        _apply(task, rule, user, practitioner, data, now)
        rows_update(
            [task], ["status", "owner", "version", "updated_at", "ended_at", "note", "output"]
        )
        if previous_owner_id != task.owner_id:
            if previous_owner_id is not None:
                previous = Practitioner.objects.select_related("user").get(pk=previous_owner_id)
                remove_perm("coordination.change_task", previous.user, task)
            if task.owner is not None:
                assign_perm("coordination.change_task", task.owner.user, task)
        task_event_record(task, events.TASK_CHANGED, data.action)
        if instance is not None and task.care_pathway_id and task.status in task_states.TERMINAL:
            alert_task_closed(
                task_ids=[task.pk],
                care_pathway_id=task.care_pathway_id,
                definition=instance_definition(instance),
                now=now,
            )
        if (
            instance is not None
            and task.care_pathway_id is not None
            and data.action in ("complete", "cancel")
            and task.pathway_state == instance.state
        ):
            step_done_check(pathway_id=task.care_pathway_id, instance=instance, now=now)
        audit_record(
            actor=user,
            action=AuditEvent.Action.UPDATE,
            resource_type="Task",
            resource_id=task.pk,
            patient_id=task.patient_id,
            purpose=AuditEvent.Purpose.CARE_COORDINATION,
            entry_point=entry_point,
            client_address=client_address,
            detail={"action": data.action, "status": task.status, "version": task.version},
            patient_checked=True,  # the locked task row refers to the patient
        )
    return task


def task_actions_open(*, task: Task, user: AbstractBaseUser) -> frozenset[str]:
    """The actions of task_states.ACTIONS that `task_act` would accept from `user` on the
    task as read (the same checks, `_refusal`; nothing written): what a page offers. One can
    still be refused when sent: the task changed meanwhile, or a reassignment names someone
    the task is not for. The caller has checked that the user may see the task."""
    me = practitioner_of(user)
    return frozenset(
        name for name, rule in task_states.ACTIONS.items() if _refusal(task, rule, user, me) is None
    )


def _refusal(
    task: Task, rule: task_states.ActionRule, user: AbstractBaseUser, me: Practitioner | None
) -> Conflict | NotAllowed | None:
    """Why `user` (the practitioner `me`, if any) may not do `rule` on the task as it is,
    or None: the one statement of who may do what, for `_apply` and `task_actions_open`."""
    status = task.status
    if status in task_states.TERMINAL:
        return Conflict(
            _("the task is %(status)s: no action applies any more") % {"status": status}
        )
    is_owner = me is not None and task.owner_id == me.pk
    if rule.name == "claim":
        if task.owner_id is not None:
            return Conflict(
                _("the task is already claimed") if not is_owner else _("you own it already")
            )
        if not _eligible(task, user, me):
            return NotAllowed(_("this task is not offered to you"))
        return None
    if rule.name == "reassign":
        if not (is_owner or _is_coordinator(task, user)):
            return NotAllowed(_("only the owner or a coordinator may reassign a task"))
        return None
    if rule.name == "cancel":
        if not (is_owner or _is_coordinator(task, user) or task.requested_by_id == user.pk):
            return NotAllowed(_("only the owner, the requester or a coordinator may cancel a task"))
        return None
    if not is_owner and not (
        # taking an offered task and working on it in one gesture
        task.owner_id is None and rule.name in ("start", "complete") and _eligible(task, user, me)
    ):
        return NotAllowed(_("only the task's owner may do this; claim it first"))
    if rule.name == "release":
        if status not in (task_states.READY, task_states.IN_PROGRESS):
            return Conflict(_("a task that is %(status)s cannot be released") % {"status": status})
        return None
    path = task_states.path_to(status, rule.path[0])
    if not path or (rule.sources is not None and status not in rule.sources):
        return Conflict(
            _("cannot %(action)s a task that is %(status)s")
            % {"action": rule.name, "status": status}
        )
    return None


def _apply(
    task: Task,
    rule: task_states.ActionRule,
    user: AbstractBaseUser,
    me: Practitioner | None,
    data: TaskActionInput,
    now: dt.datetime,
) -> None:
    refusal = _refusal(task, rule, user, me)
    if refusal is not None:
        raise refusal
    status = task.status
    is_owner = me is not None and task.owner_id == me.pk
    label = f"user:{user.pk}"
    if rule.name == "claim":
        task.owner = me
        task_history_record(task, "claim", [], user, label, now, {"owner": me.pk if me else None})
        return
    if rule.name == "reassign":
        _reassign(task, user, data, label, now)
        return
    if rule.name == "cancel":
        task_history_record(task, "cancel", [task_states.CANCELLED], user, label, now, _note(data))
        return
    if not is_owner:  # an offered task taken and worked on in one gesture (see _refusal)
        task.owner = me
        task_history_record(task, "claim", [], user, label, now, {"owner": me.pk if me else None})
    if rule.name == "release":
        path = [task_states.READY] if status == task_states.IN_PROGRESS else []
        task.owner = None
        task_history_record(task, "release", path, user, label, now, _note(data))
        return
    path = task_states.path_to(status, rule.path[0])
    if rule.name == "complete":
        task.output = dict(data.output)
    task_history_record(task, rule.name, path, user, label, now, _note(data))


def _reassign(
    task: Task,
    user: AbstractBaseUser,
    data: TaskActionInput,
    label: str,
    now: dt.datetime,
) -> None:
    if data.new_owner_id is None:
        raise InvalidInput([Problem("new_owner", _("required to reassign"))])
    new_owner = Practitioner.objects.filter(pk=data.new_owner_id, active=True).first()
    if new_owner is None or not _eligible(task, new_owner.user, new_owner):
        raise InvalidInput(
            [
                Problem(
                    "new_owner",
                    _("not a member of the care team or service team this task is for"),
                )
            ]
        )
    task.owner = new_owner
    path = [task_states.READY] if task.status == task_states.IN_PROGRESS else []
    task_history_record(
        task, "reassign", path, user, label, now, {"owner": new_owner.pk, **_note(data)}
    )


def _eligible(task: Task, user: AbstractBaseUser, me: Practitioner | None) -> bool:
    """May `user` take this task: it is meant for the patient and they are the patient, or
    offered to their service team, or to a role they play in the patient's care team."""
    if task.for_patient:
        return bool(task.patient.user_id == user.pk)
    if me is None:
        return False
    if task.offered_team_id is not None:
        return bool(
            ServiceTeam.objects.filter(pk=task.offered_team_id, group__user__id=user.pk).exists()
        )
    return task.offered_role in care_roles(user=user, patient_id=task.patient_id)


def _is_coordinator(task: Task, user: AbstractBaseUser) -> bool:
    return "coordinator" in care_roles(user=user, patient_id=task.patient_id)


def _note(data: TaskActionInput) -> dict[str, Any]:
    return {"note": data.note} if data.note else {}


def task_history_record(
    task: Task,
    action: str,
    path: list[str],
    actor: AbstractBaseUser | None,
    actor_label: str,
    now: dt.datetime,
    detail: dict[str, Any],
) -> None:
    """Move the task along `path` (statuses), one history entry per step (or one for an
    action that keeps the status). The caller saves the task."""
    steps = path or [task.status]
    entries = []
    for status in steps:
        previous = task.status
        task.status = status
        task.version += 1
        entries.append(
            TaskEvent(
                task=task,
                version=task.version,
                action=action,
                from_status=previous,
                to_status=status,
                actor_id=actor.pk if actor is not None else None,
                actor_label=actor_label,
                detail=detail,
                occurred_at=now,
            )
        )
    rows_insert(entries)  # one INSERT for the steps of a move
    task.updated_at = now
    if task.status in task_states.TERMINAL:
        task.ended_at = now
    if action == "complete" and "note" in detail:
        task.note = str(detail["note"])


def step_done_check(*, pathway_id: int, instance: Any, now: dt.datetime) -> bool:
    """Fire `tasks_completed` if every task opened on entering the instance's current state
    is done (completed, cancelled or entered in error; a failed task holds the step until
    someone decides what follows). The caller holds the instance lock. Returns True if the
    pathway moved.

    Only the tasks of the latest entry into the state count: tasks of an earlier visit were
    closed when the pathway left it.
    """
    if instance.status != "active":
        return False
    state = instance_definition(instance).state(instance.state)
    if TASKS_COMPLETED not in state.transitions:
        return False
    statuses = step_task_statuses(pathway_id=pathway_id, state=instance.state)
    if not statuses or not statuses <= task_states.DONE:
        return False
    try:
        instance_fire(
            instance_id=instance.pk, event=TASKS_COMPLETED, actor=SYSTEM, payload={}, now=now
        )
    except TransitionRefused as refusal:  # a guard on tasks_completed said no: stay
        logger.info("tasks_completed refused on instance %s: %s", instance.pk, refusal.message)
        return False
    return True


def release_lost_tasks(*, patient_id: int, actor_label: str, now: dt.datetime) -> int:
    """Put back on offer the open tasks of the patient whose owner can no longer see the
    patient (left the care team, or the patient objected to sharing). Returns how many.
    Called on the directory's `patient_access_changed`, in the change's transaction."""
    released = 0
    owned = Task.objects.select_for_update().filter(
        patient_id=patient_id, status__in=task_states.OPEN, owner__isnull=False
    )
    members: dict[int, bool] = {}
    for task in owned.select_related("owner__user"):
        assert task.owner is not None
        user = task.owner.user
        if visible_patients(user).filter(pk=patient_id).exists():
            continue
        path = [task_states.READY] if task.status == task_states.IN_PROGRESS else []
        remove_perm("coordination.change_task", user, task)
        if task.owner.pk not in members:
            members[task.owner.pk] = _in_care_team(patient_id, task.owner)
        # Still a member but no longer seeing the patient: the patient objected. The task
        # goes back to them when the patient consents again (`return_regained_tasks`).
        cause = OBJECTION if members[task.owner.pk] else LEFT_TEAM
        detail = {"reason": LOST_ACCESS, "owner": task.owner.pk, "cause": cause}
        task.owner = None
        task_history_record(task, "release", path, None, actor_label, now, detail)
        task.save(update_fields=["status", "owner", "version", "updated_at", "ended_at"])
        task_event_record(task, events.TASK_CHANGED, "release")
        released += 1
    return released


# The history entries of a task's release because its owner lost access (and why), and of
# its return.
LOST_ACCESS = "owner lost access"
OBJECTION, LEFT_TEAM = "objection", "left care team"
REGAINED_ACCESS = "owner regained access"


def _in_care_team(patient_id: int, practitioner: Practitioner) -> bool:
    """Whether the practitioner is an active member of the patient's care team, in person or
    through one of their service teams."""
    return CareTeamMember.objects.filter(
        Q(practitioner=practitioner) | Q(service_team__memberships__practitioner=practitioner),
        care_team__patient_id=patient_id,
        active=True,
    ).exists()


# The actions that change who owns a task (task_act; a start or complete on an unowned task
# records a `claim` first).
_OWNERSHIP_ACTIONS = ("claim", "release", "reassign")


def return_regained_tasks(*, patient_id: int, actor_label: str, now: dt.datetime) -> int:
    """Give back to their owner the open tasks of the patient released because the patient
    objected (`release_lost_tasks`: the owner, still in the care team, lost access) once the
    owner sees the patient again (the patient gave care-team sharing again; a member who left
    the team and came back gets nothing back): only a task still open and unclaimed
    since, whose latest change of owner is that release, and only to an active practitioner
    who may change the patient (a care-team grant; a break-the-glass grant does not count).
    Each return is a `reassign` entry in the task's history with the reason
    `owner regained access`. Returns how many. Called on the directory's
    `patient_access_changed`, in the change's transaction, after `release_lost_tasks`."""
    # Read first, lock only the tasks to give back (most access changes return nothing, and
    # should not hold the patient's unclaimed tasks); a task changed in between is left.
    seen = dict(
        Task.objects.filter(
            patient_id=patient_id, status__in=task_states.OPEN, owner__isnull=True
        ).values_list("pk", "version")
    )
    if not seen:
        return 0
    changes = TaskEvent.objects.filter(task_id__in=seen, action__in=_OWNERSHIP_ACTIONS)
    last_change = {e.task_id: e for e in changes.order_by("task_id", "version")}
    owners: dict[int, int] = {}
    for task_id, last in last_change.items():
        owner_id = last.detail.get("owner")
        if (
            last.action == "release"
            and last.detail.get("reason") == LOST_ACCESS
            and last.detail.get("cause") == OBJECTION
            and isinstance(owner_id, int)
        ):
            owners[task_id] = owner_id
    if not owners:
        return 0
    practitioners = Practitioner.objects.select_related("user").in_bulk(set(owners.values()))
    may_act = {
        pk
        for pk, practitioner in practitioners.items()
        if practitioner.active
        and practitioner.user.is_active
        and visible_patient_ids(practitioner.user, "change_patient", patient_id=patient_id).exists()
    }
    to_return = [task_id for task_id, owner_id in owners.items() if owner_id in may_act]
    returned = 0
    for task in Task.objects.select_for_update().filter(pk__in=to_return).order_by("pk"):
        if (
            task.status not in task_states.OPEN
            or task.owner_id is not None
            or task.version != seen[task.pk]
        ):
            continue
        owner = practitioners[owners[task.pk]]
        task.owner = owner
        task_history_record(
            task, "reassign", [], None, actor_label, now,
            {"reason": REGAINED_ACCESS, "owner": owner.pk},
        )  # fmt: skip
        task.save(update_fields=["status", "owner", "version", "updated_at", "ended_at"])
        assign_perm("coordination.change_task", owner.user, task)
        task_event_record(task, events.TASK_CHANGED, "reassign")
        returned += 1
    return returned


def task_event_record(task: Task, type: str, action: str) -> None:
    """The outbox event of a task change, in the change's transaction (after the save)."""
    event_record(
        type=type,
        patient=task.patient_id,
        payload=events.task_payload(
            task_id=task.pk,
            version=task.version,
            status=task.status,
            action=action,
            owner_id=task.owner_id,
            offered_team_id=task.offered_team_id,
            for_patient=task.for_patient,
            pathway_id=task.care_pathway_id,
        ),
        occurred_at=task.updated_at,
    )


def patient_access_changed_receive(
    *, patient: Patient, actor_label: str, now: dt.datetime, **kwargs: Any
) -> None:
    """The receiver of directory.signals.patient_access_changed (CoordinationConfig.ready):
    tasks whose owner lost access go back on offer, and those whose owner regained it go
    back to that owner."""
    release_lost_tasks(patient_id=patient.pk, actor_label=actor_label, now=now)
    return_regained_tasks(patient_id=patient.pk, actor_label=actor_label, now=now)
