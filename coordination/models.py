"""Practitioners, organisations, service teams, care teams, care pathways and tasks."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase
from knox.models import AbstractAuthToken

from coordination import task_states
from patients.models import Patient
from workflows.models import PathwayInstance


class Organization(models.Model):
    class Kind(models.TextChoices):
        HOSPITAL = "hospital", _("hospital")
        PRACTICE = "practice", _("medical practice")
        HEALTH_CENTRE = "health_centre", _("health centre")
        HOME_CARE = "home_care", _("home care service")
        PHARMACY = "pharmacy", _("pharmacy")
        LABORATORY = "laboratory", _("laboratory")
        PLATFORM = "platform", _("regional health platform")
        OTHER = "other", _("other")

    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    finess = models.CharField(_("FINESS number"), max_length=9, blank=True)
    created_at = models.DateTimeField()
    version = models.PositiveIntegerField(default=1)

    def __str__(self) -> str:
        return self.name


class Practitioner(models.Model):
    """A professional using Parcours. `rpps` is the 11-digit national identifier (Luhn)."""

    class Profession(models.TextChoices):
        GP = "gp", _("general practitioner")
        SPECIALIST = "specialist", _("specialist physician")
        NURSE = "nurse", _("nurse")
        COORDINATOR = "coordinator", _("care coordinator")
        PHARMACIST = "pharmacist", _("pharmacist")
        PHYSIOTHERAPIST = "physiotherapist", _("physiotherapist")
        MIDWIFE = "midwife", _("midwife")
        DENTIST = "dentist", _("dentist")
        PODIATRIST = "podiatrist", _("podiatrist")
        DIETITIAN = "dietitian", _("dietitian")
        PSYCHOLOGIST = "psychologist", _("psychologist")
        OTHER = "other", _("other")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="practitioner"
    )
    profession = models.CharField(_("profession"), max_length=24, choices=Profession.choices)
    specialty = models.CharField(_("specialty"), max_length=100, blank=True)
    rpps = models.CharField(_("RPPS number"), max_length=11, blank=True)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="practitioners"
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    version = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["rpps"], condition=~Q(rpps=""), name="practitioner_rpps_unique"
            ),
            models.CheckConstraint(
                condition=~Q(profession="specialist") | ~Q(specialty=""),
                name="practitioner_specialist_has_specialty",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        full = self.user.get_full_name()
        return full or self.user.get_username()


class ServiceTeam(models.Model):
    """A pool of practitioners (a home-care nursing service, a hospital's remote-monitoring
    team) that takes tasks offered to it. Its members are the users of `group`, so object
    permissions granted to the team reach every member."""

    name = models.CharField(_("name"), max_length=200)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="teams"
    )
    group = models.OneToOneField(Group, on_delete=models.PROTECT, related_name="service_team")
    roles = models.JSONField(
        _("pathway roles"), default=list, blank=True, help_text=_("Roles the team can take.")
    )
    created_at = models.DateTimeField()
    version = models.PositiveIntegerField(default=1)

    def __str__(self) -> str:
        return self.name


class ServiceTeamMembership(models.Model):
    team = models.ForeignKey(ServiceTeam, on_delete=models.CASCADE, related_name="memberships")
    practitioner = models.ForeignKey(
        Practitioner, on_delete=models.CASCADE, related_name="team_memberships"
    )
    since = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "practitioner"], name="team_member_unique")
        ]

    def __str__(self) -> str:
        return f"{self.practitioner_id} in team {self.team_id}"


class CareTeam(models.Model):
    """The professionals around one patient, each playing a pathway role."""

    patient = models.OneToOneField(Patient, on_delete=models.PROTECT, related_name="care_team")
    created_at = models.DateTimeField()
    version = models.PositiveIntegerField(default=1)

    def __str__(self) -> str:
        return f"care team of patient {self.patient_id}"


class CareTeamMember(models.Model):
    """A practitioner, or a service team, playing `role` in a patient's care team."""

    care_team = models.ForeignKey(CareTeam, on_delete=models.CASCADE, related_name="members")
    practitioner = models.ForeignKey(
        Practitioner, null=True, blank=True, on_delete=models.PROTECT, related_name="care_roles"
    )
    service_team = models.ForeignKey(
        ServiceTeam, null=True, blank=True, on_delete=models.PROTECT, related_name="care_roles"
    )
    role = models.CharField(_("pathway role"), max_length=63)
    active = models.BooleanField(default=True)
    since = models.DateTimeField()
    until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(practitioner__isnull=False, service_team__isnull=True)
                | Q(practitioner__isnull=True, service_team__isnull=False),
                name="care_team_member_is_one_party",
            ),
            models.UniqueConstraint(
                fields=["care_team", "practitioner", "role"],
                condition=Q(active=True, practitioner__isnull=False),
                name="care_team_practitioner_role_unique",
            ),
            models.UniqueConstraint(
                fields=["care_team", "service_team", "role"],
                condition=Q(active=True, service_team__isnull=False),
                name="care_team_service_team_role_unique",
            ),
        ]
        indexes = [models.Index(fields=["care_team", "role"], name="care_member_role")]

    def __str__(self) -> str:
        who = (
            f"practitioner {self.practitioner_id}"
            if self.practitioner_id
            else f"team {self.service_team_id}"
        )
        return f"{who} as {self.role} in care team {self.care_team_id}"


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
                fields=["owner", "priority_rank", "due_at", "id"],
                name="task_owner_worklist",
                condition=Q(status__in=sorted(task_states.OPEN)),
            ),
            models.Index(
                fields=["offered_role", "priority_rank", "due_at", "id"],
                name="task_offered_worklist",
                condition=Q(owner__isnull=True, status__in=["ready", "requested"]),
            ),
            models.Index(fields=["patient", "status"], name="task_patient_status"),
            models.Index(fields=["care_pathway", "pathway_state"], name="task_pathway_state"),
        ]

    def __str__(self) -> str:
        return f"task {self.pk} {self.code} ({self.status})"


class TaskEvent(models.Model):
    """Append-only history of a task: every action, who did it, when."""

    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="events")
    version = models.PositiveIntegerField()
    action = models.CharField(max_length=16)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16)
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


class IdempotencyRecord(models.Model):
    """The first response to a POST sent with an `Idempotency-Key`, replayed to retries.

    `owner` is who sent it (a user or an OAuth client); `fingerprint` is a hash of the method,
    path and body, so reusing a key for another request is refused rather than replayed.
    """

    owner = models.CharField(max_length=150)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    body = models.JSONField(null=True, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "key"], name="idempotency_owner_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.owner}:{self.key}"


class PlatformAccount(models.Model):
    """The service account of a regional health platform calling the API with OAuth2 client
    credentials. Its `user` is the OAuth application's user and the actor of everything the
    platform does; it also has a practitioner profile (profession "other") so that it can be
    a member of a care team, in the role `platform`: that membership, and nothing else, is
    what lets the platform see a patient. `scopes` are the most its tokens may carry."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="platform_account"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="platform_accounts"
    )
    scopes = models.JSONField(_("OAuth scopes"), default=list)
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"platform account {self.user_id} of organisation {self.organization_id}"


class ApiToken(AbstractAuthToken):
    """A personal API token (django-rest-knox), for a user's scripts: stored as a digest, the
    token itself is shown once when it is created. A user may hold several, each named;
    revoking deletes the row (knox's model of revocation)."""

    # Annotated: the untyped knox base hides the fields from django-stubs' plugin.
    name: models.CharField[str, str] = models.CharField(_("name"), max_length=100)
    last_used_at: models.DateTimeField[dt.datetime | None, dt.datetime | None] = (
        models.DateTimeField(null=True, blank=True)
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="api_token_user_name_unique")
        ]

    def __str__(self) -> str:
        return f"API token {self.name!r} of user {self.user_id}"
