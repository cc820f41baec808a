"""Tasks a user may see, one task's keys and locked rows, and the worklists.

A user sees a task when they may see its patient (care-team grants, see
directory.services.care_teams), when they own it, or when it is meant for them as the
patient. Fetch-one helpers raise NotFound alike for "does not exist" and "not yours".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import BooleanField, ExpressionWrapper, F, Q, QuerySet
from django.utils import timezone

from coordination import task_states
from coordination.errors import NotFound
from coordination.models import (
    CarePathway,
    Task,
    TaskFollowUp,
)
from core.sql import (
    InIds,
    column,
    from_row,
    instances,
    kept_cursor,
    key_in_range,
    locking,
    select_list,
    statement,
    table,
)
from core.users import User
from directory.models import CareTeamMember, Practitioner, ServiceTeam
from directory.selectors import practitioner_of
from patients.models import Patient
from patients.selectors import (
    patient_visible,
    patient_visible_condition,
    visible_patient_ids,
)
from workflows.definition.schema import TASKS_COMPLETED
from workflows.models import HistoryEntry, PathwayInstance
from workflows.selectors import instance_history

# Triage order: the patient's band then score (Task.risk_rank, kept by
# coordination.services.triage), then priority, then due time (NULLs last), then id.
WORKLIST_ORDER = ("risk_rank", "priority_rank", "due_at", "id")


# The same, NULL due times last on every database (PostgreSQL's default, which its indexes
# hold; SQLite puts NULLs first unless told).
WORKLIST_ORDER_BY = (
    F("risk_rank").asc(),
    F("priority_rank").asc(),
    F("due_at").asc(nulls_last=True),
    F("id").asc(),
)


def visible_tasks(user: User) -> QuerySet[Task]:
    """Every task `user` may see: a practitioner, every task of the patients they may see
    (owning a task gives no access of its own: losing access to the patient hides it); a
    patient account, the tasks meant for the patient on its own record."""
    return _visible_tasks(user, practitioner_of(user))


def _visible_tasks(user: User, practitioner: Practitioner | None) -> QuerySet[Task]:
    if not user.is_authenticated or not user.is_active:
        return Task.objects.none()
    if practitioner is not None:
        condition = Q(patient_id__in=visible_patient_ids(user))
    else:
        condition = Q(for_patient=True, patient__user_id=user.pk)
    return Task.objects.filter(condition).select_related("patient", "owner__user", "offered_team")


def access_task(*, user: User, task_id: int) -> Task:
    """The task, if `user` may see it (the rule of `visible_tasks`); NotFound alike when it
    does not exist and when it is not theirs.

    The row is read by its key first and the patient checked after: filtering the whole
    visible set by the key makes PostgreSQL build that set on every task action."""
    task = (
        Task.objects.select_related("patient", "owner__user", "offered_team")
        .filter(pk=task_id)
        .first()
    )
    if task is None:
        raise NotFound("task", task_id)
    if not _task_visible(user, task):
        raise NotFound("task", task_id, patient_id=task.patient_id, outcome="denied")
    return task


def _task_visible(user: User, task: Task) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    if practitioner_of(user) is not None:
        return patient_visible(user, task.patient_id)
    return task.for_patient and task.patient.user_id == user.pk


@dataclass(frozen=True)
class TaskKeys:
    patient_id: int
    care_pathway_id: int | None
    instance_id: int | None  # the care pathway's engine instance
    practitioner: Practitioner | None  # practitioner_of(user)


def access_task_keys(*, user: User, task_id: int) -> TaskKeys:
    """The rule of `access_task` for a service that reads the task again under its lock: in
    one statement, the task's keys, its care pathway's engine instance, whether the user may
    see its patient (patients.selectors.patient_visible_condition) and the practitioner the
    user is, if any (practitioner_of)."""
    row = None
    if user.is_authenticated and user.is_active and key_in_range(Task, task_id):
        condition, params = patient_visible_condition(user, _task_patient())
        with kept_cursor() as cursor:
            cursor.execute(_task_keys_sql(condition), [*params, user.pk, True, task_id])
            row = cursor.fetchone()
    if row is not None:
        patient_id, pathway_id, instance_id, for_patient, patient_user_id, visible = row[:6]
        practitioner = from_row(Practitioner, row, 6)[0]
        if visible if practitioner is not None else for_patient and patient_user_id == user.pk:
            return TaskKeys(patient_id, pathway_id, instance_id, practitioner)
        raise NotFound("task", task_id, patient_id=patient_id, outcome="denied")
    raise NotFound("task", task_id)


@statement
def _task_patient() -> str:
    return f"t.{column(Task, 'patient')}"


@statement
def _task_keys_sql(visible: str) -> str:
    task, patient, pathway, practitioner = (
        table(m) for m in (Task, Patient, CarePathway, Practitioner)
    )
    return (
        f"SELECT {_task_patient()}, t.{column(Task, 'care_pathway')}, "  # noqa: S608
        f"c.{column(CarePathway, 'instance')}, t.{column(Task, 'for_patient')}, "
        f"p.{column(Patient, 'user')}, CASE WHEN {visible} THEN 1 ELSE 0 END, "
        f"{select_list(Practitioner, 'pr')} FROM {task} t "
        f"JOIN {patient} p ON p.{column(Patient, 'pk')} = {_task_patient()} "
        f"LEFT JOIN {pathway} c "
        f"ON c.{column(CarePathway, 'pk')} = t.{column(Task, 'care_pathway')} "
        f"LEFT JOIN {practitioner} pr ON pr.{column(Practitioner, 'user')} = %s "
        f"AND pr.{column(Practitioner, 'active')} = %s "
        f"WHERE t.{column(Task, 'pk')} = %s"
    )


def task_locked(*, task_id: int) -> Task:
    """The task row, locked FOR UPDATE until the end of the caller's transaction (on a
    database that locks rows), read by a statement written once. NotFound if it is gone."""
    row = None
    if key_in_range(Task, task_id):
        with kept_cursor() as cursor:
            cursor.execute(_task_locked_sql(), [task_id])
            row = cursor.fetchone()
    task = None if row is None else from_row(Task, row)[0]
    if task is None:
        raise NotFound("task", task_id)
    return task


@statement
def _task_locked_sql() -> str:
    lock = locking()
    return (
        f"SELECT {select_list(Task, 't')} FROM {table(Task)} t "  # noqa: S608
        f"WHERE t.{column(Task, 'pk')} = %s{lock}"
    )


def step_tasks_open_locked(*, pathway_id: int, state: str) -> list[Task]:
    """The pathway's tasks still open in `state`, locked FOR UPDATE (where rows lock), by a
    statement written once: asked on every move of a pathway, mostly to find none."""
    return instances(Task, _step_open_sql(), [pathway_id, state, *sorted(task_states.OPEN)])


@statement
def _step_open_sql() -> str:
    lock = locking()
    statuses = ", ".join(["%s"] * len(task_states.OPEN))
    return (
        f"SELECT {select_list(Task, 't')} FROM {table(Task)} t "  # noqa: S608
        f"WHERE t.{column(Task, 'care_pathway')} = %s AND t.{column(Task, 'pathway_state')} = %s "
        f"AND t.{column(Task, 'status')} IN ({statuses}) ORDER BY t.{column(Task, 'pk')}{lock}"
    )


def task_patient_id(*, task_id: int) -> int | None:
    """The patient of the task, or None if there is no such task: unfiltered, for the audit
    trail of a refused access (which names the patient it targeted), never for answering."""
    if not key_in_range(Task, task_id):
        return None
    return Task.objects.filter(pk=task_id).values_list("patient_id", flat=True).first()


def step_task_statuses(*, pathway_id: int, state: str) -> set[str]:
    """The statuses of the tasks opened by the latest entry of the pathway into `state`
    (the tasks of its highest engine revision there), in one statement; empty if none."""
    with kept_cursor() as cursor:
        cursor.execute(_step_statuses_sql(), [pathway_id, state, pathway_id, state])
        return {status for (status,) in cursor.fetchall()}


@statement
def _step_statuses_sql() -> str:
    pathway, state, revision, status = (
        column(Task, name)
        for name in ("care_pathway", "pathway_state", "pathway_revision", "status")
    )
    return (
        f"SELECT DISTINCT {status} FROM {table(Task)} WHERE {pathway} = %s "  # noqa: S608
        f"AND {state} = %s AND {revision} = (SELECT MAX({revision}) FROM {table(Task)} "
        f"WHERE {pathway} = %s AND {state} = %s)"
    )


def worklist_mine(user: User) -> QuerySet[Task]:
    """Open tasks the user owns, most pressing first (priority, then due time)."""
    practitioner = practitioner_of(user)
    if practitioner is None:
        return Task.objects.none()
    return _worklist(user).filter(_mine(practitioner))


def worklist_unclaimed(user: User) -> QuerySet[Task]:
    """Tasks nobody has claimed that are offered to the user: to one of their service teams,
    or to a role they play in the patient's care team."""
    practitioner = practitioner_of(user)
    if practitioner is None:
        return Task.objects.none()
    return _worklist(user).filter(_offered(user, practitioner))


def worklist_overdue(user: User, now: dt.datetime | None = None) -> QuerySet[Task]:
    """The user's own open tasks and those offered to them that are overdue
    (`overdue_condition`)."""
    now = now or timezone.now()
    practitioner = practitioner_of(user)
    if practitioner is None:
        return Task.objects.none()
    return _worklist(user).filter(
        _mine(practitioner) | _offered(user, practitioner), overdue_condition(now)
    )


def overdue_condition(now: dt.datetime) -> Q:
    """The one definition of an overdue task, for the overdue list and every "overdue" label:
    open, and past its due time or opened by the escalation of a task that was (its title
    says "Overdue: ..."; it has no due time of its own, and is as late as the task it is
    about)."""
    escalations = TaskFollowUp.objects.filter(
        kind=TaskFollowUp.Kind.ESCALATION, opened_task__isnull=False
    ).values("opened_task_id")
    return Q(status__in=sorted(task_states.OPEN)) & (Q(due_at__lt=now) | Q(pk__in=escalations))


def with_overdue(tasks: QuerySet[Task], now: dt.datetime | None = None) -> QuerySet[Task]:
    """`tasks`, each with `overdue` (`overdue_condition`), computed in the same query."""
    condition = overdue_condition(now or timezone.now())
    return tasks.annotate(overdue=ExpressionWrapper(condition, output_field=BooleanField()))


def task_overdue(task: Task, now: dt.datetime | None = None) -> bool:
    """Whether one task is overdue (`overdue_condition`)."""
    return Task.objects.filter(Q(pk=task.pk), overdue_condition(now or timezone.now())).exists()


def _worklist(user: User) -> QuerySet[Task]:
    """The tasks of the patients the user may see (the rule of `visible_tasks`), in
    worklist order. The patients are read first and given to the task query as a constant
    set (see core.sql.id_sets): the query then walks the open tasks in worklist
    order and stops at the end of the page, whatever the size of the set.

    Every worklist holds open tasks only, and says so here at the top of the condition:
    that is what lets PostgreSQL use the partial index `task_open_worklist` (open tasks in
    worklist order) when a list's own conditions are an OR, as the overdue list's are (its
    planner does not prove the index's predicate through the OR: it read and sorted every
    overdue task instead, 9 ms against 1 ms for the ordered walk on the benchmark's data)."""
    visible = InIds("patient_id", visible_patient_ids(user))
    return (
        Task.objects.filter(visible, status__in=sorted(task_states.OPEN))
        .select_related("patient", "owner__user", "offered_team")
        .order_by(*WORKLIST_ORDER_BY)
    )


def _mine(practitioner: Practitioner) -> Q:
    """Owned by the practitioner (`_worklist` keeps the open tasks only)."""
    return Q(owner_id=practitioner.pk)


def _offered(user: User, practitioner: Practitioner) -> Q:
    """Unclaimed and offered to the user: to one of their service teams, or to a role they
    play in the patient's care team (in person or through a team). The (role, patient)
    pairs of the user's active memberships are read in one query through the membership
    foreign-key indexes, and each role becomes `offered_role = r AND patient_id IN (its
    patients)`, the patients as a constant set, rather than an EXISTS on the care team for
    every candidate task."""
    my_teams = ServiceTeam.objects.filter(Q(group__user__id=user.pk)).values("pk")
    active = CareTeamMember.objects.filter(active=True)
    pairs = (
        active.filter(practitioner_id=practitioner.pk)
        .values_list("role", "care_team__patient_id")
        .union(
            active.filter(service_team_id__in=my_teams).values_list(
                "role", "care_team__patient_id"
            ),
            all=True,
        )
    )
    patients_by_role: dict[str, set[int]] = {}
    for role, patient_id in pairs:
        patients_by_role.setdefault(role, set()).add(patient_id)
    plays_role = Q(pk__in=[])
    for role, patients in sorted(patients_by_role.items()):
        plays_role |= Q(offered_role=role) & Q(InIds("patient_id", patients))
    return Q(owner__isnull=True, status__in=[task_states.READY, task_states.REQUESTED]) & (
        Q(offered_team_id__in=my_teams) | (Q(offered_team__isnull=True) & plays_role)
    )


def tasks_for_patient(user: User, patient_id: int) -> QuerySet[Task]:
    return visible_tasks(user).filter(patient_id=patient_id).order_by(*WORKLIST_ORDER_BY)


@dataclass(frozen=True)
class TaskStep:
    """Where a task stands in its pathway: the step (state) it was opened in, the pathway's
    engine instance, the move that left that step since (None while the pathway is still
    there), and whether that move is this task's completion (the last task of the step done,
    `tasks_completed` fired in the same transaction)."""

    state: str
    instance: PathwayInstance
    left_by: HistoryEntry | None
    moved_by_task: bool


def task_pathway_step(task: Task) -> TaskStep | None:
    """The step of a task the caller may see (None for a task outside any pathway). The
    visit of the step is the latest entry into it at or before the task was opened (the task
    keeps its revision; a task the system opened later in the step does not)."""
    if task.care_pathway_id is None or not task.pathway_state:
        return None
    pathway = (
        CarePathway.objects.select_related("instance__definition")
        .filter(pk=task.care_pathway_id)
        .first()
    )
    if pathway is None or pathway.instance is None:
        return None
    history = instance_history(instance_id=pathway.instance.pk)
    entered = task.pathway_revision
    if entered is None:
        entry = (
            history.filter(to_state=task.pathway_state, occurred_at__lte=task.created_at)
            .order_by("-revision")
            .first()
        )
        entered = entry.revision if entry is not None else 0
    left = history.filter(revision__gt=entered, from_state=task.pathway_state).first()
    moved_by_task = (
        left is not None
        and task.status == task_states.COMPLETED
        and left.event == TASKS_COMPLETED
        and left.occurred_at == task.ended_at
    )
    return TaskStep(task.pathway_state, pathway.instance, left, moved_by_task)
