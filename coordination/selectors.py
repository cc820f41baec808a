"""Reads of coordination data for a user, filtered by what that user may see.

A user sees a task when they may see its patient (care-team grants, see
services.care_teams), when they own it, or when it is meant for them as the patient.
Fetch-one helpers raise NotFound alike for "does not exist" and "not yours".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import cast

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db.models import Case, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from coordination import task_states
from coordination.errors import NotFound
from coordination.models import (
    BAND_RANK,
    RISK_RANK_NONE,
    RISK_SCORES,
    AlertRecord,
    ApiToken,
    CarePathway,
    CareTeamMember,
    Organization,
    OutboxEvent,
    PlatformAccount,
    Practitioner,
    RiskBand,
    ServiceTeam,
    Task,
    WebhookDelivery,
    WebhookSubscription,
    risk_rank,
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
from patients.models import Observation, Patient
from patients.selectors import (
    patient_visible,
    patient_visible_condition,
    visible_patient_ids,
    visible_patient_ids_by_user,
)
from workflows.models import PathwayInstance

User = AbstractBaseUser | AnonymousUser

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


def practitioner_of(user: User) -> Practitioner | None:
    """The active practitioner the user is, if any. Asked on nearly every request: read by a
    statement written once (core.sql)."""
    if not user.is_authenticated:
        return None
    with kept_cursor() as cursor:
        cursor.execute(_practitioner_sql(), [user.pk, True])
        row = cursor.fetchone()
    return None if row is None else from_row(Practitioner, row)[0]


@statement
def _practitioner_sql() -> str:
    return (
        f"SELECT {select_list(Practitioner, 'p')} FROM {table(Practitioner)} p "  # noqa: S608
        f"WHERE p.{column(Practitioner, 'user')} = %s AND p.{column(Practitioner, 'active')} = %s"
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


def pathway_patient_id(*, pathway_id: int) -> int | None:
    """The patient of the care pathway, or None if there is no such pathway."""
    with kept_cursor() as cursor:
        cursor.execute(_pathway_patient_sql(), [pathway_id])
        row = cursor.fetchone()
    return None if row is None else int(row[0])


@statement
def _pathway_patient_sql() -> str:
    return (
        f"SELECT c.{column(CarePathway, 'patient')} FROM {table(CarePathway)} c "  # noqa: S608
        f"WHERE c.{column(CarePathway, 'pk')} = %s"
    )


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
    """The user's own open tasks and those offered to them, past their due time."""
    now = now or timezone.now()
    practitioner = practitioner_of(user)
    if practitioner is None:
        return Task.objects.none()
    return _worklist(user).filter(
        _mine(practitioner) | _offered(user, practitioner), due_at__lt=now
    )


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


def visible_care_pathways(user: User) -> QuerySet[CarePathway]:
    """Pathways of the patients the user may see; a patient sees their own."""
    if not user.is_authenticated or not user.is_active:
        return CarePathway.objects.none()
    return (
        CarePathway.objects.filter(
            Q(patient_id__in=visible_patient_ids(user)) | Q(patient__user_id=user.pk)
        )
        .select_related("instance__definition", "patient")
        .defer("instance__definition__source", "instance__definition__document")
    )


def access_care_pathway(*, user: User, pathway_id: int) -> CarePathway:
    """The care pathway, if `user` may see it (the rule of `visible_care_pathways`);
    NotFound alike when it does not exist and when it is not theirs (the error names its
    patient for the audit trail only)."""
    pathway = visible_care_pathways(user).filter(pk=pathway_id).first()
    if pathway is None:
        patient_id = (
            pathway_patient_id(pathway_id=pathway_id)
            if key_in_range(CarePathway, pathway_id)
            else None
        )
        if patient_id is None:
            raise NotFound("care pathway", pathway_id)
        raise NotFound("care pathway", pathway_id, patient_id=patient_id, outcome="denied")
    return pathway


PATIENT_ROLE = "patient"


def care_roles(*, user: User, patient_id: int) -> frozenset[str]:
    """The pathway roles `user` plays in the patient's care team (active memberships, in
    person or through a service team), plus `patient` for the patient's own account. Read
    from the memberships themselves: it holds even when the patient objected to sharing."""
    if not user.is_authenticated or not user.is_active or not key_in_range(Patient, patient_id):
        return frozenset()  # (an id beyond the keys' range is no patient's)
    members = CareTeamMember.objects.filter(care_team__patient_id=patient_id, active=True)
    direct = members.filter(practitioner__user__id=user.pk).values_list("role", flat=True)
    via_team = members.filter(service_team__group__user__id=user.pk).values_list("role", flat=True)
    roles = set(direct) | set(via_team)
    if Patient.objects.filter(pk=patient_id, user_id=user.pk).exists():
        roles.add(PATIENT_ROLE)
    return frozenset(roles)


def care_team_members(*, patient: Patient) -> QuerySet[CareTeamMember]:
    """Active members of the patient's care team; the caller has checked access to it."""
    return CareTeamMember.objects.filter(care_team__patient=patient, active=True).select_related(
        "practitioner__user", "service_team"
    )


# The directory (organisations, practitioners, teams) is not patient data: any professional
# may read it.


def organization_list() -> QuerySet[Organization]:
    return Organization.objects.all()


def organization_get(*, organization_id: int) -> Organization:
    organization = organization_list().filter(pk=organization_id).first()
    if organization is None:
        raise NotFound("organization", organization_id)
    return organization


def practitioner_list() -> QuerySet[Practitioner]:
    return Practitioner.objects.filter(active=True).select_related("user")


def practitioner_get(*, practitioner_id: int, active_only: bool = True) -> Practitioner:
    rows = practitioner_list() if active_only else Practitioner.objects.select_related("user")
    practitioner = rows.filter(pk=practitioner_id).first()
    if practitioner is None:
        raise NotFound("practitioner", practitioner_id)
    return practitioner


def service_team_list() -> QuerySet[ServiceTeam]:
    return ServiceTeam.objects.prefetch_related("memberships")


def service_team_get(*, team_id: int) -> ServiceTeam:
    team = ServiceTeam.objects.filter(pk=team_id).first()
    if team is None:
        raise NotFound("service team", team_id)
    return team


def webhook_subscription_list(*, owner: User) -> QuerySet[WebhookSubscription]:
    """The subscriptions `owner` made (nobody else's)."""
    return WebhookSubscription.objects.filter(owner_id=owner.pk)


def webhook_subscription_get(*, owner: User, subscription_id: int) -> WebhookSubscription:
    subscription = webhook_subscription_list(owner=owner).filter(pk=subscription_id).first()
    if subscription is None:
        raise NotFound("webhook subscription", subscription_id)
    return subscription


def webhook_delivery_list(
    *, owner: User, subscription_id: int, status: str | None = None
) -> QuerySet[WebhookDelivery]:
    subscription = webhook_subscription_get(owner=owner, subscription_id=subscription_id)
    deliveries = WebhookDelivery.objects.filter(subscription=subscription)
    return deliveries.filter(status=status) if status else deliveries


def webhook_delivery_get(*, owner: User, subscription_id: int, delivery_id: int) -> WebhookDelivery:
    """A delivery of one of `owner`'s subscriptions (NotFound for anyone else's)."""
    delivery = webhook_delivery_list(owner=owner, subscription_id=subscription_id).filter(
        pk=delivery_id
    )
    found = delivery.first()
    if found is None:
        raise NotFound("webhook delivery", delivery_id)
    return found


# --- the event outbox -----------------------------------------------------------------------


def outbox_published_after(*, position: int, limit: int) -> QuerySet[OutboxEvent]:
    """Sequenced events after `position`, in position order: what a reconnecting client
    missed. Not filtered by user: the live consumer checks each event against the user's
    current permissions before sending it (coordination.consumers)."""
    return OutboxEvent.objects.filter(position__gt=position).order_by("position")[:limit]


def outbox_last_position() -> int:
    """The position of the latest sequenced event (0 when there is none)."""
    last = (
        OutboxEvent.objects.filter(position__isnull=False)
        .order_by("-position")
        .values_list("position", flat=True)
        .first()
    )
    return last or 0


@dataclass(frozen=True)
class LiveAccess:
    """What a live connection of `user` may receive, read at one moment."""

    active: bool
    patient_ids: frozenset[int]  # patients whose events it receives
    own_patient_id: int | None  # a patient account's own record (restricted event types)
    team_ids: frozenset[int]
    # The patients seen through break-the-glass grants only, and when the last one ends:
    # past that moment their events stop at once, whatever the age of this reading.
    expiries: Mapping[int, dt.datetime] = field(default_factory=dict)

    def sees(self, patient_id: int, now: dt.datetime) -> bool:
        if patient_id not in self.patient_ids:
            return False
        ends = self.expiries.get(patient_id)
        return ends is None or now < ends


NO_LIVE_ACCESS = LiveAccess(False, frozenset(), None, frozenset())


def live_access(*, user_id: int) -> LiveAccess:
    """The same visibility rule as the API (`visible_patients`), for a user id; an inactive
    or deleted user may see nothing."""
    return live_access_many(user_ids={user_id})[user_id]


def live_access_many(
    *, user_ids: Collection[int], now: dt.datetime | None = None
) -> dict[int, LiveAccess]:
    """`live_access` of each of `user_ids`, in a handful of queries whatever their number:
    a practitioner receives the events of the patients it may see (`visible_patients`), a
    patient account those of its own record, and any other user nothing."""
    wanted = set(user_ids)
    active: set[int] = set()
    practitioners: set[int] = set()
    own: dict[int, int] = {}
    teams: dict[int, set[int]] = {}
    ids = list(wanted)
    for start in range(0, len(ids), _LIVE_CHUNK):
        chunk = ids[start : start + _LIVE_CHUNK]
        active |= set(
            get_user_model()
            .objects.filter(pk__in=chunk, is_active=True)
            .values_list("pk", flat=True)
        )
        practitioners |= set(
            Practitioner.objects.filter(user_id__in=chunk, active=True).values_list(
                "user_id", flat=True
            )
        )
        own.update(Patient.objects.filter(user_id__in=chunk).values_list("user_id", "pk"))
        for user_id, team_id in ServiceTeam.objects.filter(group__user__id__in=chunk).values_list(
            "group__user__id", "pk"
        ):
            teams.setdefault(user_id, set()).add(team_id)
    practitioners &= active
    visible = visible_patient_ids_by_user(user_ids=practitioners, now=now)
    found: dict[int, LiveAccess] = {}
    for user_id in wanted:
        if user_id not in active:
            found[user_id] = NO_LIVE_ACCESS
            continue
        team_ids = frozenset(teams.get(user_id, ()))
        if user_id in practitioners:
            seen = visible[user_id]
            expiries = {p: ends for p, ends in seen.items() if ends is not None}
            found[user_id] = LiveAccess(True, frozenset(seen), None, team_ids, expiries)
        else:
            own_id = own.get(user_id)
            patients = frozenset() if own_id is None else frozenset({own_id})
            found[user_id] = LiveAccess(True, patients, own_id, team_ids)
    return found


_LIVE_CHUNK = 500


def live_users_active(*, user_ids: set[int]) -> dict[int, str]:
    """Those of `user_ids` that are active users, each with its session verification hash
    (Django's, derived from the password): a session opened before the password last
    changed carries another one and no longer authenticates."""
    users = get_user_model().objects.filter(pk__in=user_ids, is_active=True)
    return {int(user.pk): user.get_session_auth_hash() for user in users.only("pk", "password")}


def outbox_between(*, after: int, through: int, limit: int) -> QuerySet[OutboxEvent]:
    """Sequenced events with a position in (after, through], in position order (at most
    `limit`): what a web process did not receive from the channel layer. Not filtered by
    user, like `outbox_published_after`."""
    return OutboxEvent.objects.filter(position__gt=after, position__lte=through).order_by(
        "position"
    )[:limit]


def outbox_settled_after(
    *, position: int, sequenced_before: dt.datetime, limit: int
) -> list[OutboxEvent]:
    """The events after `position`, in position order (at most `limit`), up to the first one
    sequenced at or after `sequenced_before`: by then the relay has had time to publish them,
    and a web process that has not received them reads them here (a lost message, a channel
    layer down, no relay running). Every position below a sequenced one is sequenced, so the
    answer has no gap."""
    rows = list(outbox_published_after(position=position, limit=limit))
    settled = []
    for row in rows:
        if row.sequenced_at is None or row.sequenced_at >= sequenced_before:
            break
        settled.append(row)
    return settled


def platform_account_for_user(*, user_id: int | None) -> PlatformAccount | None:
    """The platform account whose service user is `user_id`, if any (OAuth client
    credentials act as that user)."""
    if user_id is None:
        return None
    return PlatformAccount.objects.filter(user_id=user_id).first()


def api_token_list(*, user: User) -> QuerySet[ApiToken]:
    """The user's own personal API tokens that have not expired, newest first (never anyone
    else's)."""
    if not user.is_authenticated:
        return cast("QuerySet[ApiToken]", ApiToken.objects.none())
    unexpired = Q(expiry__isnull=True) | Q(expiry__gt=timezone.now())
    rows = ApiToken.objects.filter(unexpired, user_id=user.pk).order_by("-created", "-digest")
    return cast("QuerySet[ApiToken]", rows)  # knox's manager is untyped


# --- alerts ---------------------------------------------------------------------------------


# The inbox's order, on the annotations of `visible_alerts`: the patient's band then score,
# the alert's priority, its task's due time (NULLs last), then id.
ALERT_ORDER = ("patient_risk_rank", "alert_priority_rank", "task_due_at", "id")


def risk_rank_expression(prefix: str = "") -> Case:
    """coordination.models.risk_rank in SQL, on the pathway reached through `prefix`."""
    band = Case(
        *(When(**{f"{prefix}risk_band": b, "then": Value(r)}) for b, r in BAND_RANK.items()),
        default=Value(BAND_RANK[RiskBand.LOW]),
        output_field=IntegerField(),
    )
    top = RISK_SCORES - 1
    return Case(
        When(
            **{f"{prefix}risk_score__gte": top},
            then=band * Value(RISK_SCORES),
        ),
        default=band * Value(RISK_SCORES) + Value(top) - F(f"{prefix}risk_score"),
        output_field=IntegerField(),
    )


def patient_risk_rank_subquery(patient_ref: str = "patient_id") -> Coalesce:
    """The patient's current rank (the smallest over their active pathways) for the row's
    `patient_ref`, RISK_RANK_NONE when none is active."""
    ranks = (
        CarePathway.objects.filter(
            patient_id=OuterRef(patient_ref), instance__status=PathwayInstance.Status.ACTIVE
        )
        .annotate(rank=risk_rank_expression())
        .order_by("rank")
        .values("rank")[:1]
    )
    return Coalesce(Subquery(ranks), Value(RISK_RANK_NONE), output_field=IntegerField())


def patient_risk_rank(*, patient_id: int) -> int:
    """The patient's current triage rank: the highest band, then score, over their active
    pathways (coordination.models.risk_of_rank gives the band and score back)."""
    ranks = [
        risk_rank(band, score)
        for band, score in CarePathway.objects.filter(
            patient_id=patient_id, instance__status=PathwayInstance.Status.ACTIVE
        ).values_list("risk_band", "risk_score")
    ]
    return min(ranks, default=RISK_RANK_NONE)


def patient_alerts(user: User, *, patient_id: int) -> QuerySet[AlertRecord]:
    """One patient's alerts a practitioner may see, the latest first (the patient page's
    history; the inbox, across patients, is in triage order: `visible_alerts`)."""
    if practitioner_of(user) is None:
        return AlertRecord.objects.none()
    return AlertRecord.objects.filter(
        patient_id=patient_id, patient_id__in=visible_patient_ids(user)
    ).order_by("-last_seen_at", "-id")


def visible_alerts(user: User) -> QuerySet[AlertRecord]:
    """Alerts raised on the pathways of the patients a practitioner may see, in triage
    order (ALERT_ORDER: the patient's band and score first); nothing for anyone else (a
    patient's portal does not list alerts). Each row carries `patient_risk_rank`,
    `alert_priority_rank` and `task_due_at`."""
    if practitioner_of(user) is None:
        return AlertRecord.objects.none()
    return (
        AlertRecord.objects.filter(patient_id__in=visible_patient_ids(user))
        .select_related("patient", "task", "care_pathway__instance__definition")
        .defer(
            "care_pathway__instance__definition__source",
            "care_pathway__instance__definition__document",
        )
        .annotate(
            patient_risk_rank=patient_risk_rank_subquery(),
            alert_priority_rank=Case(
                *(When(priority=p, then=Value(r)) for p, r in task_states.PRIORITY_RANK.items()),
                default=Value(task_states.PRIORITY_RANK["routine"]),
                output_field=IntegerField(),
            ),
            task_due_at=F("task__due_at"),
        )
        .order_by(
            "patient_risk_rank",
            "alert_priority_rank",
            F("task_due_at").asc(nulls_last=True),
            "id",
        )
    )


def alert_observations(alerts: Collection[AlertRecord]) -> dict[int, Observation]:
    """The observations that raised `alerts` (rows of `visible_alerts`, so of patients the
    reader may see), by id, in one query."""
    wanted = {(a.observation_id, a.patient_id) for a in alerts if a.observation_id is not None}
    if not wanted:
        return {}
    rows = Observation.objects.filter(
        pk__in=sorted({o for o, _ in wanted}), patient_id__in=sorted({p for _, p in wanted})
    ).only("id", "patient_id", "code", "value", "unit", "effective_at")
    return {o.pk: o for o in rows if (o.pk, o.patient_id) in wanted}


def portal_patient(user: User) -> Patient | None:
    """The patient record of a patient's own portal account; None for anyone else
    (practitioners included, even if they also have a record)."""
    if not user.is_authenticated or not user.is_active or practitioner_of(user) is not None:
        return None
    return Patient.objects.filter(user_id=user.pk).first()
