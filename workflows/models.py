"""Pathway definitions, running instances, their history and their timers."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class PathwayDefinition(models.Model):
    """One version of a pathway. Immutable once active: only `status` may change."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        ACTIVE = "active", _("active")
        RETIRED = "retired", _("retired")

    class Format(models.TextChoices):
        YAML = "yaml", "YAML"
        JSON = "json", "JSON"

    key = models.CharField(max_length=64)
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=500)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    source = models.TextField(help_text=_("The document as uploaded."))
    source_format = models.CharField(max_length=8, choices=Format.choices)
    document = models.JSONField()
    checksum = models.CharField(
        max_length=64, help_text=_("SHA-256 of the document in canonical JSON.")
    )
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField()
    published_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "version"], name="pathway_key_version_unique"),
        ]
        indexes = [models.Index(fields=["key", "status", "-version"], name="pathway_key_status")]
        ordering = ["key", "-version"]

    def __str__(self) -> str:
        return f"{self.key}@{self.version}"


class PathwayInstance(models.Model):
    """A pathway running for one subject. `revision` increases with every recorded change."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        SUSPENDED = "suspended", _("suspended")
        COMPLETED = "completed", _("completed")
        CANCELLED = "cancelled", _("cancelled")

    definition = models.ForeignKey(
        PathwayDefinition, on_delete=models.PROTECT, related_name="instances"
    )
    state = models.CharField(max_length=63)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    subject = models.CharField(
        max_length=100,
        blank=True,
        db_index=True,
        help_text=_("Opaque reference to what the instance is about, for the app that started it."),
    )
    context = models.JSONField(default=dict, blank=True)
    revision = models.PositiveIntegerField(default=1)
    started_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["definition", "status"], name="instance_def_status")]

    def __str__(self) -> str:
        return f"instance {self.pk} ({self.state}, {self.status})"


class HistoryEntry(models.Model):
    """Append-only record of every change of an instance. Never updated, never deleted.

    On PostgreSQL a trigger (migration 0002) refuses UPDATE and DELETE on this table.
    """

    class Kind(models.TextChoices):
        START = "start", _("start")
        TRANSITION = "transition", _("transition")
        STATUS = "status", _("status change")
        MIGRATION = "migration", _("version migration")

    # No index of its own: the unique (instance, revision) index serves every lookup by
    # instance, and one index fewer to update on every transition.
    instance = models.ForeignKey(
        PathwayInstance, on_delete=models.PROTECT, related_name="history", db_index=False
    )
    revision = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    event = models.CharField(max_length=63)
    from_state = models.CharField(max_length=63, blank=True)
    to_state = models.CharField(max_length=63)
    actor = models.CharField(max_length=150)
    actor_roles = models.JSONField(default=list, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["instance", "revision"], name="history_instance_revision_unique"
            ),
        ]
        ordering = ["instance", "revision"]
        verbose_name_plural = "history entries"

    def __str__(self) -> str:
        return f"{self.instance_id}#{self.revision} {self.from_state}->{self.to_state}"


class Timer(models.Model):
    """A timer scheduled on entering a state; cancelled when the instance leaves it. A timer
    of the whole pathway (the definition's top-level `timers`) has no state (`PATHWAY`) and
    is cancelled only when the pathway ends."""

    PATHWAY = ""  # `state` of a pathway timer

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("scheduled")
        FIRED = "fired", _("fired")
        CANCELLED = "cancelled", _("cancelled")
        SKIPPED = "skipped", _("skipped")

    instance = models.ForeignKey(PathwayInstance, on_delete=models.PROTECT, related_name="timers")
    state = models.CharField(max_length=63)
    event = models.CharField(max_length=63)
    due_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    created_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["due_at"],
                name="timer_due_scheduled",
                condition=Q(status="scheduled"),
            ),
            models.Index(
                fields=["instance"],
                name="timer_instance_scheduled",
                condition=Q(status="scheduled"),
            ),
        ]

    def __str__(self) -> str:
        return f"timer {self.event} at {self.due_at:%Y-%m-%d %H:%M} ({self.status})"
