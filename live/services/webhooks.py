"""Webhook subscriptions and deliveries to platforms.

A delivery is an HTTP POST of one event, as JSON, to a subscription's URL, signed with the
subscription's secret:

    Parcours-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>

Receivers recompute the HMAC over the timestamp, a dot and the raw body, compare in constant
time, refuse timestamps older than a few minutes (replays), and de-duplicate by
`Parcours-Event-Id` (delivery is at least once). That id, and the body's `id`, is the event's
position, in commit order, as on the live WebSocket (the outbox row id is not: a transaction
holding a smaller row id can commit later). docs/webhooks.md is the receiver's guide.

Lifecycle and locks:
- `webhook_deliveries_queue` runs after an event committed (the outbox relay calls it): one
  row per matching subscription, unique per (subscription, event), so queueing twice is
  harmless. The owner's access to the event's patient is checked here and again at sending.
- `webhook_deliveries_send_due` claims due rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so
  several workers share the work) by pushing their due time one lease ahead and counting the
  attempt, commits, and only then sends: no row lock is held during the HTTP call. A worker
  that dies mid-send leaves the row due again when the lease ends. The outcome is recorded
  in a second short transaction, only if the row is still at the attempt this worker claimed.
- Failures are retried on `RETRY_DELAYS`; after the last one the delivery is `failed`, kept
  with its last status code and error for the platform and operations staff to see, who can
  replay it (`webhook_delivery_replay`) once the receiver works again: it is due at once and
  gets the whole retry schedule again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import Conflict, InvalidInput, NotFound, Problem
from core.sql import any_row, column, statement, table
from live.events import TYPES as EVENT_TYPES
from live.models import WebhookDelivery, WebhookSubscription
from patients.models import AuditEvent, Patient
from patients.selectors import patient_visible, visible_patients
from patients.services import audit_record

# Waits after attempt 1, 2, ...; the attempt after the last wait is the last one.
RETRY_DELAYS = (
    dt.timedelta(minutes=1),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
    dt.timedelta(hours=6),
    dt.timedelta(hours=12),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
LEASE = dt.timedelta(seconds=60)  # longer than a send can take (timeout below)
SEND_TIMEOUT = (3.05, 10.0)  # connect, read (seconds)
ALL_EVENTS = "*"
USER_AGENT = "Parcours-Webhooks/1"


class DeliverableEvent(Protocol):
    """What the relay hands over: a committed, sequenced outbox event."""

    @property
    def id(self) -> int: ...
    @property
    def position(self) -> int | None: ...
    @property
    def type(self) -> str: ...
    @property
    def patient_id(self) -> int | None: ...
    @property
    def occurred_at(self) -> dt.datetime: ...
    @property
    def payload(self) -> Mapping[str, object]: ...


@dataclass(frozen=True)
class SendOutcome:
    status_code: int | None
    error: str
    dropped: bool = False  # not sent and never to be: the address is not a public one


Sender = Callable[[str, bytes, Mapping[str, str]], SendOutcome]


# Subscriptions.


def webhook_subscription_create(
    *,
    owner: AbstractBaseUser,
    url: str,
    event_types: Sequence[str],
    patient_id: int | None = None,
    description: str = "",
    now: dt.datetime | None = None,
) -> tuple[WebhookSubscription, str]:
    """A new subscription and its secret (returned once; the caller shows it to the owner).

    InvalidInput names each bad field: a URL that is not https (http is allowed only where
    `WEBHOOK_ALLOW_PRIVATE_ADDRESSES` is on, for development), an address inside private
    networks, unknown event types, a patient the owner may not see (answered like one that
    does not exist).
    """
    problems = [*_url_problems(url), *_event_type_problems(event_types)]
    patient: Patient | None = None
    if patient_id is not None:
        patient = visible_patients(owner).filter(pk=patient_id).first()
        if patient is None:
            problems.append(Problem("patient", _("no patient with id %(id)s") % {"id": patient_id}))
    if len(description) > 200:
        problems.append(Problem("description", _("at most %(n)d characters") % {"n": 200}))
    if problems:
        raise InvalidInput(problems)
    secret = "whsec_" + secrets.token_urlsafe(32)
    subscription = WebhookSubscription.objects.create(
        owner_id=owner.pk,
        url=url,
        event_types=sorted(set(event_types)),
        patient=patient,
        secret=secret,
        description=description,
        created_at=now or timezone.now(),
    )
    return subscription, secret


def webhook_subscription_deactivate(*, owner: AbstractBaseUser, subscription_id: int) -> None:
    """Stop a subscription: no new deliveries; pending ones are dropped. Kept for its log."""
    with transaction.atomic():
        subscription = (
            WebhookSubscription.objects.select_for_update()
            .filter(pk=subscription_id, owner_id=owner.pk)
            .first()
        )
        if subscription is None:
            raise NotFound("webhook subscription", subscription_id)
        if not subscription.active:
            return
        subscription.active = False
        subscription.version += 1
        subscription.save(update_fields=["active", "version"])
        subscription.deliveries.filter(status=WebhookDelivery.Status.PENDING).update(
            status=WebhookDelivery.Status.DROPPED,
            next_attempt_at=None,
            last_error="the subscription was deactivated",
        )


def _url_problems(url: str) -> list[Problem]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return [Problem("url", _("not a URL: %(problem)s") % {"problem": exc})]
    allow_private = settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES
    if parts.scheme != "https" and not (allow_private and parts.scheme == "http"):
        return [Problem("url", _("must be an https:// URL"))]
    if not parts.hostname:
        return [Problem("url", _("has no host"))]
    if parts.username or parts.password:
        return [Problem("url", _("must not carry credentials; use the signing secret"))]
    if len(url) > 500:
        return [Problem("url", _("at most %(n)d characters") % {"n": 500})]
    if not allow_private:
        try:
            _checked_address(parts.hostname, port or 443)
        except _NotPublic as refused:
            return [Problem("url", str(refused))]
        except (OSError, UnicodeError) as exc:
            return [
                Problem(
                    "url",
                    _("%(host)s does not resolve: %(problem)s")
                    % {"host": parts.hostname, "problem": exc},
                )
            ]
    return []


def _event_type_problems(event_types: Sequence[str]) -> list[Problem]:
    if isinstance(event_types, str) or not event_types:
        return [
            Problem(
                "event_types",
                _("a non-empty list of event types, or [%(all)s]") % {"all": repr(ALL_EVENTS)},
            )
        ]
    unknown = sorted({t for t in event_types if t != ALL_EVENTS and t not in EVENT_TYPES})
    if unknown:
        known = ", ".join(sorted(EVENT_TYPES))
        return [
            Problem(
                "event_types",
                _("unknown: %(unknown)s (known: %(known)s)")
                % {"unknown": ", ".join(unknown), "known": known},
            )
        ]
    return []


# Queueing.


def webhook_deliveries_queue(
    *, events: Iterable[DeliverableEvent], now: dt.datetime | None = None
) -> int:
    """Queue each committed event for every active subscription it matches. Returns how many
    deliveries were created; events already queued for a subscription are skipped, so the
    relay may call this again for the same events after a crash."""
    now = now or timezone.now()
    events = list(events)
    if not events or not any_row(_active_any_sql()):
        return 0
    subscriptions = list(
        WebhookSubscription.objects.filter(active=True).select_related("owner").order_by("pk")
    )
    if not subscriptions:
        return 0
    visible = _visible_patient_ids(subscriptions, events)
    queued = set(
        WebhookDelivery.objects.filter(event_id__in=[e.id for e in events]).values_list(
            "subscription_id", "event_id"
        )
    )
    rows = [
        WebhookDelivery(
            subscription=subscription,
            event_id=event.id,
            position=event.position,
            event_type=event.type,
            patient_id=event.patient_id,
            body=_body(event),
            next_attempt_at=now,
            created_at=now,
        )
        for event in events
        for subscription in subscriptions
        if (subscription.pk, event.id) not in queued
        and _matches(subscription, event, visible[subscription.owner_id])
    ]
    # A relay racing this one may insert the same rows meanwhile: the unique constraint
    # keeps one of each.
    WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


@statement
def _active_any_sql() -> str:
    """Whether any subscription is active: asked on each relay pass, mostly to learn none is."""
    model = WebhookSubscription
    return f"SELECT 1 FROM {table(model)} WHERE {column(model, 'active')} = TRUE LIMIT 1"  # noqa: S608


def _matches(
    subscription: WebhookSubscription, event: DeliverableEvent, visible: Collection[int]
) -> bool:
    types = subscription.event_types
    if ALL_EVENTS not in types and event.type not in types:
        return False
    if subscription.patient_id is not None and subscription.patient_id != event.patient_id:
        return False
    # Events about no patient carry no patient data, but they say nothing to a platform
    # either: only operations staff receive them.
    if event.patient_id is None:
        return bool(subscription.owner.is_staff)
    return event.patient_id in visible


def _visible_patient_ids(
    subscriptions: Sequence[WebhookSubscription], events: Sequence[DeliverableEvent]
) -> dict[int, set[int]]:
    patient_ids = {e.patient_id for e in events if e.patient_id is not None}
    result: dict[int, set[int]] = {}
    for subscription in subscriptions:
        if subscription.owner_id in result:
            continue
        owner = subscription.owner
        result[subscription.owner_id] = (
            set(visible_patients(owner).filter(pk__in=patient_ids).values_list("pk", flat=True))
            if patient_ids and owner.is_active
            else set()
        )
    return result


def _body(event: DeliverableEvent) -> str:
    document = {
        "id": event.position,
        "type": event.type,
        "patient": event.patient_id,
        "occurred_at": event.occurred_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "payload": dict(event.payload),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_id(delivery: WebhookDelivery) -> int:
    """The id receivers see for the delivery's event: its position (the row id for a
    delivery queued before positions were sent, whose body carries that id)."""
    return delivery.position if delivery.position is not None else delivery.event_id


# Replaying failed deliveries.


def webhook_delivery_replay(
    *, delivery_id: int, actor: AbstractBaseUser, now: dt.datetime | None = None
) -> WebhookDelivery:
    """Send a failed delivery again: due at once, with the whole retry schedule again, the
    same body and the same event id (receivers that got it after all drop the copy). Who
    replayed it, and when, is kept on the row.

    Only the subscription's owner or operations staff (the permission
    `live.change_webhookdelivery`) may: for anyone else the delivery is NotFound.
    Conflict if it is not failed (still pending, succeeded, dropped) or the subscription was
    deactivated. The owner's access to the patient is checked again at sending, as always.
    """
    now = now or timezone.now()
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(of=("self",))
            .select_related("subscription")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or not _may_replay(actor, delivery.subscription):
            raise NotFound("webhook delivery", delivery_id)
        if delivery.status != WebhookDelivery.Status.FAILED:
            raise Conflict(
                _("only a failed delivery can be replayed; this one is %(status)s")
                % {"status": delivery.status}
            )
        if not delivery.subscription.active:
            raise Conflict(_("the subscription was deactivated: its deliveries are not sent"))
        delivery.status = WebhookDelivery.Status.PENDING
        delivery.attempts = 0
        delivery.next_attempt_at = now
        delivery.replays += 1
        delivery.replayed_at = now
        delivery.replayed_by = _label(actor)
        delivery.save(
            update_fields=[
                "status", "attempts", "next_attempt_at", "replays", "replayed_at", "replayed_by"
            ]
        )  # fmt: skip
    return delivery


def webhook_deliveries_replay_failed(
    *, subscription_id: int, actor: AbstractBaseUser, now: dt.datetime | None = None
) -> int:
    """Replay every failed delivery of a subscription (after a receiver's long outage), as
    `webhook_delivery_replay` does each. Returns how many. NotFound for anyone but the
    owner or operations staff; Conflict if the subscription was deactivated."""
    now = now or timezone.now()
    with transaction.atomic():
        subscription = (
            WebhookSubscription.objects.select_for_update().filter(pk=subscription_id).first()
        )
        if subscription is None or not _may_replay(actor, subscription):
            raise NotFound("webhook subscription", subscription_id)
        if not subscription.active:
            raise Conflict(_("the subscription was deactivated: its deliveries are not sent"))
        # Failed rows are left alone by the sending job (it claims pending ones only).
        return subscription.deliveries.filter(status=WebhookDelivery.Status.FAILED).update(
            status=WebhookDelivery.Status.PENDING,
            attempts=0,
            next_attempt_at=now,
            replays=F("replays") + 1,
            replayed_at=now,
            replayed_by=_label(actor),
        )


REPLAY_PERMISSION = "live.change_webhookdelivery"


def _label(actor: AbstractBaseUser) -> str:
    return (getattr(actor, "username", "") or str(actor.pk))[:150]


def _may_replay(actor: AbstractBaseUser, subscription: WebhookSubscription) -> bool:
    if not actor.is_active:
        return False
    if subscription.owner_id == actor.pk:
        return True
    has_perm = getattr(actor, "has_perm", None)  # PermissionsMixin
    return callable(has_perm) and bool(has_perm(REPLAY_PERMISSION))


# Sending.


def signature_header(*, secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass(frozen=True)
class SendReport:
    succeeded: int = 0
    retried: int = 0
    failed: int = 0
    dropped: int = 0
    stale: int = 0  # answers recorded too late: another worker had claimed the row again


def webhook_deliveries_send_due(
    *,
    now: dt.datetime | None = None,
    limit: int = 50,
    sender: Sender | None = None,
) -> SendReport:
    """Send the deliveries due at `now` (at most `limit`). Safe to run in several processes
    at once and to run again after a crash (see the module docstring)."""
    now = now or timezone.now()
    send = sender or _http_send
    counts = {"succeeded": 0, "retried": 0, "failed": 0, "dropped": 0, "stale": 0}
    for delivery in _claim_due(now=now, limit=limit):
        subscription = delivery.subscription
        reason = _drop_reason(delivery)
        if reason:
            _finish(delivery, status=WebhookDelivery.Status.DROPPED, error=reason)
            counts["dropped"] += 1
            continue
        body = delivery.body.encode("utf-8")
        timestamp = int(now.timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Parcours-Event-Id": str(event_id(delivery)),
            "Parcours-Event-Type": delivery.event_type,
            "Parcours-Delivery-Id": str(delivery.pk),
            "Parcours-Signature": signature_header(
                secret=subscription.secret, timestamp=timestamp, body=body
            ),
        }
        outcome = send(subscription.url, body, headers)
        counts[_record(delivery, outcome, now=now)] += 1
    return SendReport(**counts)


def _claim_due(*, now: dt.datetime, limit: int) -> list[WebhookDelivery]:
    with transaction.atomic():
        due = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
            .select_related("subscription", "subscription__owner")
            .order_by("next_attempt_at", "pk")[:limit]
        )
        claimed = list(due)
        for delivery in claimed:
            delivery.attempts += 1
            delivery.next_attempt_at = now + LEASE
            delivery.last_attempt_at = now
        WebhookDelivery.objects.bulk_update(
            claimed, ["attempts", "next_attempt_at", "last_attempt_at"]
        )
    return claimed


def _drop_reason(delivery: WebhookDelivery) -> str:
    subscription = delivery.subscription
    if not subscription.active:
        return "the subscription was deactivated"
    owner = subscription.owner
    if not owner.is_active:
        return "the subscription's owner was deactivated"
    if delivery.patient_id is not None and not (patient_visible(owner, delivery.patient_id)):
        return "the subscription's owner no longer has access to this patient"
    return ""


def _record(delivery: WebhookDelivery, outcome: SendOutcome, *, now: dt.datetime) -> str:
    if outcome.dropped:
        _finish(delivery, status=WebhookDelivery.Status.DROPPED, error=outcome.error)
        return "dropped"
    ok = outcome.status_code is not None and 200 <= outcome.status_code < 300
    if ok:
        status, next_at, kind = WebhookDelivery.Status.SUCCEEDED, None, "succeeded"
    elif delivery.attempts >= MAX_ATTEMPTS:
        status, next_at, kind = WebhookDelivery.Status.FAILED, None, "failed"
    else:
        wait = RETRY_DELAYS[delivery.attempts - 1]
        status, next_at, kind = WebhookDelivery.Status.PENDING, now + wait, "retried"
    error = outcome.error or ("" if ok else f"answered HTTP {outcome.status_code}")
    with transaction.atomic():
        # Only if nobody claimed the row again meanwhile (our lease ran out).
        updated = WebhookDelivery.objects.filter(
            pk=delivery.pk, attempts=delivery.attempts, status=WebhookDelivery.Status.PENDING
        ).update(
            status=status,
            next_attempt_at=next_at,
            last_status_code=outcome.status_code,
            last_error=error[:500],
        )
        if not updated:
            return "stale"
        if ok and delivery.patient_id is not None:
            # Data about a patient left for an outside system: an export, in the trail.
            audit_record(
                actor=delivery.subscription.owner,
                action=AuditEvent.Action.EXPORT,
                resource_type="WebhookDelivery",
                resource_id=delivery.pk,
                patient_id=delivery.patient_id,
                purpose=AuditEvent.Purpose.CARE_COORDINATION,
                entry_point=AuditEvent.EntryPoint.SYSTEM,
                detail={"event_id": delivery.event_id, "url": delivery.subscription.url},
            )
    return kind


def _finish(delivery: WebhookDelivery, *, status: str, error: str) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk, attempts=delivery.attempts).filter(
        Q(status=WebhookDelivery.Status.PENDING)
    ).update(status=status, next_attempt_at=None, last_error=error[:500])


def _http_send(url: str, body: bytes, headers: Mapping[str, str]) -> SendOutcome:
    """POST `body` to `url`, connecting to the address its host name resolved to when it was
    checked, not to a second resolution: a DNS answer that changes between the check and the
    connection (rebinding) cannot turn a public name into a private address. TLS still
    verifies the certificate against the host name, and the Host header carries it."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    host, port = parts.hostname or "", parts.port or (443 if https else 80)
    try:
        address = _checked_address(host, port)
    except _NotPublic as refused:
        return SendOutcome(status_code=None, error=str(refused), dropped=True)
    except (OSError, UnicodeError) as exc:  # a DNS failure: likely passing, retried
        return SendOutcome(status_code=None, error=f"{host} does not resolve: {exc}")
    timeout = urllib3.Timeout(connect=SEND_TIMEOUT[0], read=SEND_TIMEOUT[1])
    pool: urllib3.HTTPConnectionPool
    if https:
        pool = urllib3.HTTPSConnectionPool(
            address, port, timeout=timeout, retries=False, maxsize=1,
            server_hostname=host, assert_hostname=host,
            cert_reqs="CERT_REQUIRED", ca_certs=certifi.where(),
        )  # fmt: skip
    else:  # development only (WEBHOOK_ALLOW_PRIVATE_ADDRESSES)
        pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False, maxsize=1)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = host if parts.port is None else f"{host}:{parts.port}"
    try:
        response = pool.urlopen(
            "POST", target, body=body, headers={**headers, "Host": host_header},
            redirect=False, retries=False,
        )  # fmt: skip
    except urllib3.exceptions.HTTPError as exc:
        return SendOutcome(status_code=None, error=f"{type(exc).__name__}: {exc}")
    finally:
        pool.close()
    return SendOutcome(status_code=response.status, error="")


class _NotPublic(Exception):
    pass


def _checked_address(host: str, port: int) -> str:
    """The address to connect to for `host`, resolved once: every address the name resolves
    to must be a public one (unless WEBHOOK_ALLOW_PRIVATE_ADDRESSES), else _NotPublic.

    Webhooks must not become a way to reach the hosting network (SSRF). Checked at
    subscription, and at each send on the very address the send then connects to, since DNS
    answers change. A name that does not resolve (OSError) is a problem at subscription; at a
    send it is likely a passing DNS failure, and the send is retried."""
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        for address in addresses:
            if not address.is_global:
                raise _NotPublic(f"{host} resolves to {address}, which is not a public address")
    return str(addresses[0])
