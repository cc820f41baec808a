"""The outbox of domain events, and the webhook subscriptions and deliveries fed from it.

The tables keep the names they had when these models were coordination's (db_table)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from patients.models import Patient


class WebhookSubscription(models.Model):
    """A platform's request to receive events by HTTP POST.

    Events are delivered only while the owner may still see the event's patient (checked when
    a delivery is queued and again when it is sent). `secret` signs every delivery (HMAC-SHA256
    over the timestamp and the body); it is shown once, when the subscription is created.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="webhook_subscriptions"
    )
    url = models.URLField(_("URL"), max_length=500)
    event_types = models.JSONField(_("event types"), default=list)
    patient = models.ForeignKey(
        Patient, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    secret = models.CharField(max_length=128)
    active = models.BooleanField(default=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    created_at = models.DateTimeField()
    version = models.PositiveIntegerField(default=1)

    class Meta:
        db_table = "coordination_webhooksubscription"

    def __str__(self) -> str:
        return f"webhook {self.pk} -> {self.url}"


class WebhookDelivery(models.Model):
    """One event sent (or to be sent) to one subscription, with the outcome of its attempts.

    `body` is frozen when the delivery is queued, so every retry sends the same bytes;
    `(subscription, event_id)` is unique, so queueing an event twice delivers it once.
    `event_id` is the outbox row id (internal); `position` is the event's commit-order
    position, the id receivers see (the `Parcours-Event-Id` header, the body's `id`), as live
    clients do. A delivery is a row with a due time (`next_attempt_at`), swept by a periodic
    job. A failed delivery can be replayed (`replays`, `replayed_at`, `replayed_by`).
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")  # every attempt failed: given up
        DROPPED = "dropped", _("dropped")  # the owner lost access, or the subscription ended

    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_id = models.BigIntegerField()
    # Null only for deliveries queued before positions were sent: those carry `event_id`.
    position = models.BigIntegerField(null=True, blank=True)
    event_type = models.CharField(max_length=64)
    patient = models.ForeignKey(
        Patient, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    body = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    replays = models.PositiveSmallIntegerField(default=0)
    replayed_at = models.DateTimeField(null=True, blank=True)
    replayed_by = models.CharField(max_length=150, blank=True)

    class Meta:
        db_table = "coordination_webhookdelivery"
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "event_id"], name="webhook_delivery_event_unique"
            )
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="webhook_delivery_due",
            )
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} of event {self.event_id} ({self.status})"


class OutboxEvent(models.Model):
    """One domain change, written by the service that made it, in the same transaction.

    `id` comes from a sequence: it is unique but NOT in commit order (a transaction holding
    id 10 may commit after one holding id 11). The relay therefore gives each committed row a
    `position`, gap-free and in the order it saw the rows committed, under a lock; clients
    see, de-duplicate by and resume from `position` (docs/live-updates.md).
    """

    id = models.BigAutoField(primary_key=True)
    type = models.CharField(max_length=63)
    patient = models.ForeignKey(
        Patient, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    occurred_at = models.DateTimeField()
    payload = models.JSONField(default=dict)
    # Publish bookkeeping, written by the relay only.
    position = models.BigIntegerField(null=True, blank=True, unique=True)
    sequenced_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "coordination_outboxevent"
        indexes = [
            models.Index(
                fields=["id"], name="outbox_unsequenced", condition=Q(position__isnull=True)
            ),
            models.Index(
                fields=["position"],
                name="outbox_unpublished",
                condition=Q(position__isnull=False, published_at__isnull=True),
            ),
            models.Index(fields=["patient", "position"], name="outbox_patient_position"),
        ]

    def __str__(self) -> str:
        return f"event {self.pk} {self.type} (position {self.position})"
