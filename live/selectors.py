"""Reads of the outbox, of webhook subscriptions and deliveries, and of live connections'
users.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from core.errors import NotFound
from core.users import User
from live.models import OutboxEvent, WebhookDelivery, WebhookSubscription


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


def outbox_published_after(*, position: int, limit: int) -> QuerySet[OutboxEvent]:
    """Sequenced events after `position`, in position order: what a reconnecting client
    missed. Not filtered by user: the live consumer checks each event against the user's
    current permissions before sending it (live.consumers)."""
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
