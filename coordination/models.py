"""Practitioners, organisations, service teams, care teams, care pathways and tasks."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from coordination import task_states
from directory.models import CareTeam, Practitioner, ServiceTeam
from patients.models import Patient
from workflows.models import PathwayInstance


class RiskBand(models.TextChoices):
    LOW = "low", _("low")
    MEDIUM = "medium", _("medium")
    HIGH = "high", _("high")


BAND_RANK = {RiskBand.HIGH: 0, RiskBand.MEDIUM: 1, RiskBand.LOW: 2}
# The least priority the work of an alert gets when its pathway is in a band.
PRIORITY_FOR_BAND = {RiskBand.HIGH: "asap", RiskBand.MEDIUM: "urgent"}

# Triage order in one number, smallest first: the band (high first), then the score
# (highest first), as `band rank * RISK_SCORES + (RISK_SCORES - 1 - score)`. Scores above
# RISK_SCORES - 1 rank with it. Kept on open tasks (Task.risk_rank) so that a worklist walks
# one index in triage order; see coordination.services.triage.
RISK_SCORES = 10_000
RISK_RANK_NONE = BAND_RANK[RiskBand.LOW] * RISK_SCORES + RISK_SCORES - 1  # low band, score 0


def risk_rank(band: str, score: int) -> int:
    """The triage rank of a (band, score) pair: smaller is more pressing."""
    return (
        BAND_RANK[RiskBand(band)] * RISK_SCORES
        + RISK_SCORES
        - 1
        - min(max(score, 0), RISK_SCORES - 1)
    )


def risk_of_rank(rank: int) -> tuple[str, int]:
    """The (band, score) a rank stands for (the inverse of `risk_rank`)."""
    band_rank, rest = divmod(rank, RISK_SCORES)
    return _BAND_OF_RANK[band_rank], RISK_SCORES - 1 - rest


_BAND_OF_RANK = {r: str(b.value) for b, r in BAND_RANK.items()}


class CarePathway(models.Model):
    """A patient following a pathway: the engine instance plus who looks after it."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="pathways")
    care_team = models.ForeignKey(CareTeam, on_delete=models.PROTECT, related_name="pathways")
    # Null only inside the transaction that starts the pathway (the engine instance is
    # created after this row, whose id it carries as its subject).
    instance = models.OneToOneField(
        PathwayInstance, null=True, on_delete=models.PROTECT, related_name="care_pathway"
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    # Triage: the sum of the scores of the pathway's open alerts (one per alert name), and
    # its band per the pathway's `monitoring.triage.bands`. Kept by coordination.services.alerts.
    risk_score = models.PositiveSmallIntegerField(default=0, db_default=0)
    risk_band = models.CharField(
        max_length=8, choices=RiskBand.choices, default=RiskBand.LOW, db_default=RiskBand.LOW
    )
    risk_updated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"pathway {self.pk} of patient {self.patient_id}"


class Task(models.Model):
    """A piece of work for a professional (or the patient), following the FHIR Task states.

    Owned by a practitioner, or offered to a role in the patient's care team or to a service
    team until someone claims it. `version` increases with every change: every action checks
    the version the caller saw, so two nurses completing a task at once get one success and
    one conflict.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        REQUESTED = "requested", _("requested")
        RECEIVED = "received", _("received")
        ACCEPTED = "accepted", _("accepted")
        REJECTED = "rejected", _("rejected")
        READY = "ready", _("ready")
        CANCELLED = "cancelled", _("cancelled")
        IN_PROGRESS = "in-progress", _("in progress")
        ON_HOLD = "on-hold", _("on hold")
        FAILED = "failed", _("failed")
        COMPLETED = "completed", _("completed")
        ENTERED_IN_ERROR = "entered-in-error", _("entered in error")

    class Priority(models.TextChoices):
        ROUTINE = "routine", _("routine")
        URGENT = "urgent", _("urgent")
        ASAP = "asap", _("as soon as possible")
        STAT = "stat", _("immediately")

    care_pathway = models.ForeignKey(
        CarePathway, null=True, blank=True, on_delete=models.PROTECT, related_name="tasks"
    )
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="tasks")
    code = models.CharField(max_length=63)
    title = models.JSONField(help_text=_("Text, or a mapping of language codes to text."))
    description = models.JSONField(default=str, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.READY)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.ROUTINE)
    priority_rank = models.PositiveSmallIntegerField(default=3)  # stat 0 ... routine 3
    # The patient's triage rank (`risk_rank` of the highest band and score over their active
    # pathways) while the task is open: kept by coordination.services.triage, read by the
    # worklists' order. The database default serves rows written in SQL (benchmarks).
    risk_rank = models.PositiveSmallIntegerField(default=RISK_RANK_NONE, db_default=RISK_RANK_NONE)
    due_at = models.DateTimeField(null=True, blank=True)
    owner = models.ForeignKey(
        Practitioner, null=True, blank=True, on_delete=models.PROTECT, related_name="tasks"
    )
    offered_role = models.CharField(max_length=63, blank=True)
    offered_team = models.ForeignKey(
        ServiceTeam, null=True, blank=True, on_delete=models.PROTECT, related_name="offered_tasks"
    )
    for_patient = models.BooleanField(default=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requester_label = models.CharField(max_length=150)
    pathway_state = models.CharField(max_length=63, blank=True)
    pathway_revision = models.PositiveIntegerField(null=True, blank=True)
    note = models.TextField(blank=True)
    output = models.JSONField(default=dict, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["owner", "risk_rank", "priority_rank", "due_at", "id"],
                name="task_owner_worklist",
                condition=Q(status__in=sorted(task_states.OPEN)),
            ),
            # The open tasks in worklist order, carrying every column the worklist filters
            # read (PostgreSQL): the unclaimed and overdue lists walk it in order, filter
            # on the index entries and stop at the end of the page.
            models.Index(
                fields=["risk_rank", "priority_rank", "due_at", "id"],
                name="task_open_worklist",
                condition=Q(status__in=sorted(task_states.OPEN)),
                include=["owner", "status", "patient", "offered_role", "offered_team"],
            ),
            models.Index(fields=["patient", "status"], name="task_patient_status"),
            models.Index(fields=["care_pathway", "pathway_state"], name="task_pathway_state"),
        ]

    def __str__(self) -> str:
        return f"task {self.pk} {self.code} ({self.status})"


class TaskEvent(models.Model):
    """Append-only history of a task: every action, who did it, when."""

    class Action(models.TextChoices):
        # `open` when the engine creates the task; the others are task_states.ACTIONS.
        OPEN = "open", _("creation")
        CLAIM = "claim", _("claim")
        RELEASE = "release", _("release")
        START = "start", _("start")
        HOLD = "hold", _("put on hold")
        RESUME = "resume", _("resumption")
        COMPLETE = "complete", _("completion")
        FAIL = "fail", _("failure")
        CANCEL = "cancel", _("cancellation")
        REASSIGN = "reassign", _("reassignment")
        # By the system: an overdue task escalated, or an alert raising the task's priority;
        # a reminder before the due time.
        ESCALATE = "escalate", _("escalation")
        REMIND = "remind", _("reminder")

    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="events")
    version = models.PositiveIntegerField()
    action = models.CharField(max_length=16, choices=Action.choices)
    from_status = models.CharField(max_length=16, blank=True, choices=Task.Status.choices)
    to_status = models.CharField(max_length=16, choices=Task.Status.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=150)
    detail = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "version"], name="task_event_version_unique")
        ]
        ordering = ["task", "version"]

    def __str__(self) -> str:
        return f"task {self.task_id} v{self.version}: {self.action} -> {self.to_status}"


# django-guardian direct foreign-key permission tables for the models holding patient data.


class CarePathwayUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(CarePathway, on_delete=models.CASCADE)


class CarePathwayGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(CarePathway, on_delete=models.CASCADE)


class TaskUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Task, on_delete=models.CASCADE)


class TaskGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Task, on_delete=models.CASCADE)


# --- background jobs --------------------------------------------------------------------


class DeadLetter(models.Model):
    """A Celery job that failed on every attempt (retried with backoff first). Kept for a person
    to look at in the admin and re-queue once the cause is fixed."""

    task_name = models.CharField(max_length=200)
    task_id = models.CharField(max_length=64, unique=True)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    exception = models.TextField()
    traceback = models.TextField(blank=True)
    attempts = models.PositiveIntegerField()
    first_failed_at = models.DateTimeField()
    last_failed_at = models.DateTimeField()
    resolved = models.BooleanField(default=False)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["resolved", "-last_failed_at"], name="dead_letter_open")]

    def __str__(self) -> str:
        return f"{self.task_name} {self.task_id} ({'resolved' if self.resolved else 'open'})"


class TaskFollowUp(models.Model):
    """A reminder or an escalation of a task: at most one of each kind per task, so a sweep
    that runs twice (or in two workers at once) sends it once."""

    class Kind(models.TextChoices):
        REMINDER = "reminder", _("reminder")
        ESCALATION = "escalation", _("escalation")

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="follow_ups")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    due_at = models.DateTimeField()
    sent_at = models.DateTimeField()
    # The escalation task opened for it, when there was someone to escalate to.
    opened_task = models.ForeignKey(
        Task, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "kind"], name="task_follow_up_once")]

    def __str__(self) -> str:
        return f"{self.kind} of task {self.task_id}"


class AlertRecord(models.Model):
    """An alert raised on a care pathway (a device-data condition, or a measurement that did
    not arrive). Repeats within the debounce window add to `repeats` instead of opening new
    tasks."""

    class Kind(models.TextChoices):
        CONDITION = "condition", _("condition on measurements")
        MISSING = "missing", _("missing measurement")

    care_pathway = models.ForeignKey(CarePathway, on_delete=models.PROTECT, related_name="alerts")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=80)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    state = models.CharField(max_length=63)
    event = models.CharField(max_length=63, blank=True)
    priority = models.CharField(max_length=8, choices=Task.Priority.choices)
    observation_id = models.BigIntegerField(null=True, blank=True)
    fired = models.BooleanField(default=False)
    refusal = models.CharField(max_length=500, blank=True)
    task = models.ForeignKey(
        Task, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    raised_at = models.DateTimeField()
    repeats = models.PositiveIntegerField(default=0)
    last_seen_at = models.DateTimeField()
    # Triage points of this alert (its first score rule that held, at the worst reading).
    score = models.PositiveSmallIntegerField(default=0, db_default=0)
    # The pathway's band when the alert was raised or last escalated.
    band = models.CharField(
        max_length=8, choices=RiskBand.choices, default=RiskBand.LOW, db_default=RiskBand.LOW
    )
    escalated_at = models.DateTimeField(null=True, blank=True)
    # Who acknowledged the alert, and when (coordination.services.alert_acknowledge); the
    # alert then leaves the inbox until a worse repeat escalates it again.
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_by_label = models.CharField(max_length=150, blank=True, db_default="")

    class Meta:
        indexes = [
            models.Index(fields=["care_pathway", "name", "-raised_at"], name="alert_debounce"),
        ]

    def __str__(self) -> str:
        return f"alert {self.name} on pathway {self.care_pathway_id}"

    @property
    def pending(self) -> bool:
        """Whether the alert waits in the inbox: never acknowledged, or escalated since."""
        return self.acknowledged_at is None or (
            self.escalated_at is not None and self.escalated_at > self.acknowledged_at
        )


class AlertEvent(models.Model):
    """Append-only history of what people did about an alert: who, what, when. (Its raising
    and escalations are the alert's own fields: `raised_at`, `repeats`, `escalated_at`.)"""

    class Action(models.TextChoices):
        ACKNOWLEDGE = "acknowledge", _("acknowledgement")

    alert = models.ForeignKey(AlertRecord, on_delete=models.PROTECT, related_name="events")
    action = models.CharField(max_length=16, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=150)
    note = models.CharField(max_length=500, blank=True)
    occurred_at = models.DateTimeField()

    class Meta:
        ordering = ["alert", "occurred_at", "id"]

    def __str__(self) -> str:
        return f"alert {self.alert_id}: {self.action} by {self.actor_label}"


class PathwayParameter(models.Model):
    """One setting of a per-patient parameter of a care pathway (`monitoring.parameters` of
    its definition, read as `params.<name>` by alert and score conditions). Append-only: the
    current value of a name is its latest row (highest id; rows of a pathway are written
    under its instance lock, so id order is the order they were set), the definition's
    `default` when it has none. Written by coordination.services.parameters only."""

    care_pathway = models.ForeignKey(
        CarePathway, on_delete=models.PROTECT, related_name="parameters"
    )
    name = models.CharField(max_length=63)
    value = models.DecimalField(max_digits=12, decimal_places=4)
    # The value in effect before this one (the definition's default if none was set).
    previous_value = models.DecimalField(max_digits=12, decimal_places=4)
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    set_by_label = models.CharField(max_length=150)
    # The care-team roles the user held when setting it (sorted, comma-separated).
    set_by_roles = models.CharField(max_length=200, blank=True)
    set_at = models.DateTimeField()
    reason = models.CharField(max_length=500)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="pathway_parameter_has_reason")
        ]
        indexes = [
            models.Index(fields=["care_pathway", "name", "-id"], name="pathway_parameter_latest")
        ]

    def __str__(self) -> str:
        return f"{self.name}={self.value} on pathway {self.care_pathway_id}"
