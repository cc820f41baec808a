"""Webhook subscriptions and deliveries: matching, signing, retries, access, leases.

Deliveries go to a real HTTP server on 127.0.0.1 started by the test (the test settings
allow private addresses, as the embedded default does).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connections, transaction
from django.test import override_settings
from django.utils import timezone

from coordination.models import Task
from coordination.services import TaskActionInput, task_act
from coordination.tasks import webhooks_send
from core.errors import Conflict, InvalidInput, NotFound
from directory.models import CareTeamMember
from directory.services import care_team_member_add, care_team_member_remove
from live.models import WebhookDelivery, WebhookSubscription
from live.services.outbox import event_record, outbox_relay_run_once
from live.services.webhooks import (
    LEASE,
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    SendOutcome,
    _claim_due,
    _record,
    signature_header,
    webhook_deliveries_queue,
    webhook_deliveries_replay_failed,
    webhook_deliveries_send_due,
    webhook_delivery_replay,
    webhook_subscription_create,
    webhook_subscription_deactivate,
)
from patients.models import AuditEvent
from tests.coordination.conftest import Scene, make_patient, make_practitioner

NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class FakeEvent:
    id: int
    type: str
    patient_id: int | None
    occurred_at: dt.datetime = NOW
    payload: dict[str, object] = field(default_factory=lambda: {"task": 7, "version": 2})
    position: int | None = None


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A real HTTP server recording what it receives and answering `status`."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.status = 200
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.received.append(Received(dict(self.headers), self.rfile.read(length)))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/parcours"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def _subscribe(scene: Scene, url: str, **extra: Any) -> tuple[WebhookSubscription, str]:
    values: dict[str, Any] = {"event_types": ["task.changed"], **extra}
    return webhook_subscription_create(owner=scene.gp.user, url=url, now=NOW, **values)


# Subscriptions.


def test_creating_a_subscription_returns_its_secret_once_stored(scene: Scene) -> None:
    subscription, secret = _subscribe(scene, "https://platform.example.org/hooks")

    assert secret.startswith("whsec_")
    assert len(secret) > 40
    stored = WebhookSubscription.objects.get(pk=subscription.pk)
    assert (stored.secret, stored.event_types, stored.owner_id) == (
        secret,
        ["task.changed"],
        scene.gp.user.pk,
    )


@pytest.mark.parametrize(
    ("url", "types", "message"),
    [
        ("ftp://platform.example.org/x", ["task.changed"], "url: must be an https:// URL"),
        ("https://user:pw@platform.example.org/", ["task.changed"], "url: must not carry"),
        ("https://platform.example.org/", ["task.moved"], "event_types: unknown: task.moved"),
        ("https://platform.example.org/", [], "event_types: a non-empty list"),
    ],
)
def test_a_bad_subscription_is_refused_naming_the_field(
    scene: Scene, url: str, types: list[str], message: str
) -> None:
    with pytest.raises(InvalidInput) as error:
        webhook_subscription_create(owner=scene.gp.user, url=url, event_types=types)

    assert str(error.value).startswith(message)
    assert WebhookSubscription.objects.count() == 0


def test_an_address_inside_private_networks_is_refused(scene: Scene) -> None:
    with (
        override_settings(WEBHOOK_ALLOW_PRIVATE_ADDRESSES=False),
        pytest.raises(InvalidInput) as error,
    ):
        webhook_subscription_create(
            owner=scene.gp.user, url="https://127.0.0.1/x", event_types=["*"]
        )

    assert str(error.value) == (
        "url: 127.0.0.1 resolves to 127.0.0.1, which is not a public address"
    )


def test_a_patient_filter_the_owner_cannot_see_reads_as_unknown(scene: Scene) -> None:
    stranger = make_patient()

    with pytest.raises(InvalidInput) as error:
        _subscribe(scene, "https://platform.example.org/", patient_id=stranger.pk)

    assert str(error.value) == f"patient: no patient with id {stranger.pk}"


def test_only_the_owner_can_deactivate_a_subscription(scene: Scene) -> None:
    subscription, _ = _subscribe(scene, "https://platform.example.org/")

    with pytest.raises(NotFound):
        webhook_subscription_deactivate(owner=scene.nurse.user, subscription_id=subscription.pk)

    subscription.refresh_from_db()
    assert subscription.active is True


# Queueing.


def test_an_event_is_queued_once_per_matching_subscription(scene: Scene) -> None:
    mine, _ = _subscribe(scene, "https://a.example.org/")
    _subscribe(scene, "https://b.example.org/", event_types=["pathway.moved"])
    event = FakeEvent(id=41, type="task.changed", patient_id=scene.patient.pk, position=17)

    first = webhook_deliveries_queue(events=[event], now=NOW)
    again = webhook_deliveries_queue(events=[event], now=NOW)

    assert (first, again) == (1, 0)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.subscription_id, delivery.event_id, delivery.position, delivery.status) == (
        mine.pk,
        41,
        17,
        "pending",
    )
    assert delivery.body == (
        f'{{"id":17,"occurred_at":"2026-11-02T09:00:00Z","patient":{scene.patient.pk},'
        '"payload":{"task":7,"version":2},"type":"task.changed"}'
    )


def test_events_of_patients_the_owner_cannot_see_are_not_queued(scene: Scene) -> None:
    _subscribe(scene, "https://a.example.org/", event_types=["*"])
    stranger = make_patient()

    queued = webhook_deliveries_queue(
        events=[FakeEvent(id=1, type="task.changed", patient_id=stranger.pk)], now=NOW
    )

    assert queued == 0
    assert WebhookDelivery.objects.count() == 0


def test_a_patient_filter_keeps_other_patients_events_out(scene: Scene) -> None:
    other = make_patient()
    care_team_member_add(patient=other, role="gp", practitioner=scene.gp, actor=None)
    _subscribe(scene, "https://a.example.org/", patient_id=scene.patient.pk)

    webhook_deliveries_queue(
        events=[
            FakeEvent(id=1, type="task.changed", patient_id=other.pk),
            FakeEvent(id=2, type="task.changed", patient_id=scene.patient.pk),
        ],
        now=NOW,
    )

    assert list(WebhookDelivery.objects.values_list("event_id", flat=True)) == [2]


def test_events_about_no_patient_go_to_staff_subscriptions_only(scene: Scene) -> None:
    staff = make_practitioner("coordinator")
    staff.user.is_staff = True
    staff.user.save(update_fields=["is_staff"])
    webhook_subscription_create(owner=staff.user, url="https://s.example.org/", event_types=["*"])
    _subscribe(scene, "https://a.example.org/", event_types=["*"])

    webhook_deliveries_queue(events=[FakeEvent(id=5, type="task.changed", patient_id=None)])

    assert list(WebhookDelivery.objects.values_list("subscription__owner_id", flat=True)) == [
        staff.user.pk
    ]


# Sending.


def test_a_delivery_is_posted_signed_and_recorded(scene: Scene, receiver: Receiver) -> None:
    subscription, secret = _subscribe(scene, receiver.url)
    webhook_deliveries_queue(
        events=[FakeEvent(id=9, type="task.changed", patient_id=scene.patient.pk, position=4)],
        now=NOW,
    )
    audit_before = AuditEvent.objects.count()

    report = webhook_deliveries_send_due(now=NOW)

    assert (report.succeeded, report.retried, report.failed, report.dropped) == (1, 0, 0, 0)
    [received] = receiver.received
    delivery = WebhookDelivery.objects.get()
    assert received.body == delivery.body.encode()
    # The event's position (commit order, as on the live WebSocket), not its row id.
    assert received.headers["Parcours-Event-Id"] == "4"
    assert json.loads(received.body)["id"] == 4
    assert received.headers["Parcours-Event-Type"] == "task.changed"
    assert received.headers["Parcours-Delivery-Id"] == str(delivery.pk)
    timestamp = int(NOW.timestamp())
    expected_mac = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + received.body, hashlib.sha256
    ).hexdigest()
    assert received.headers["Parcours-Signature"] == f"t={timestamp},v1={expected_mac}"
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 200)
    export = AuditEvent.objects.order_by("-seq").first()
    assert AuditEvent.objects.count() == audit_before + 1
    assert export is not None
    assert (export.action, export.actor_id, export.patient_id, export.resource_id) == (
        "export",
        scene.gp.user.pk,
        scene.patient.pk,
        str(delivery.pk),
    )
    assert subscription.pk == delivery.subscription_id


def test_signature_header_matches_the_documented_recipe() -> None:
    header = signature_header(secret="whsec_test", timestamp=1700000000, body=b'{"id":1}')

    assert header == (
        "t=1700000000,v1="
        + hmac.new(b"whsec_test", b'1700000000.{"id":1}', hashlib.sha256).hexdigest()
    )


def test_a_failed_delivery_is_retried_later_then_succeeds(scene: Scene, receiver: Receiver) -> None:
    _subscribe(scene, receiver.url)
    webhook_deliveries_queue(
        events=[FakeEvent(id=9, type="task.changed", patient_id=scene.patient.pk)], now=NOW
    )
    receiver.status = 503

    first = webhook_deliveries_send_due(now=NOW)
    too_early = webhook_deliveries_send_due(now=NOW + RETRY_DELAYS[0] - dt.timedelta(seconds=1))
    receiver.status = 204
    second = webhook_deliveries_send_due(now=NOW + RETRY_DELAYS[0])

    assert (first.retried, too_early.retried + too_early.succeeded, second.succeeded) == (1, 0, 1)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 2, 204)
    assert len(receiver.received) == 2
    assert receiver.received[0].body == receiver.received[1].body


def test_a_delivery_gives_up_after_the_last_attempt(scene: Scene) -> None:
    _subscribe(scene, "https://a.example.org/")
    webhook_deliveries_queue(
        events=[FakeEvent(id=9, type="task.changed", patient_id=scene.patient.pk)], now=NOW
    )
    calls: list[str] = []

    def refuse(url: str, body: bytes, headers: Any) -> SendOutcome:
        calls.append(url)
        return SendOutcome(status_code=None, error="ConnectionError: refused")

    moment = NOW
    for wait in (dt.timedelta(0), *RETRY_DELAYS):
        moment += wait
        webhook_deliveries_send_due(now=moment, sender=refuse)
    webhook_deliveries_send_due(now=moment + dt.timedelta(days=30), sender=refuse)

    delivery = WebhookDelivery.objects.get()
    assert len(calls) == MAX_ATTEMPTS
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (
        "failed",
        MAX_ATTEMPTS,
        None,
    )
    assert delivery.last_error == "ConnectionError: refused"


def test_a_delivery_is_dropped_when_the_owner_lost_access(scene: Scene) -> None:
    _subscribe(scene, "https://a.example.org/")
    webhook_deliveries_queue(
        events=[FakeEvent(id=9, type="task.changed", patient_id=scene.patient.pk)], now=NOW
    )
    membership = CareTeamMember.objects.get(practitioner=scene.gp, active=True)
    care_team_member_remove(member_id=membership.pk, actor=None)
    sent: list[str] = []

    def send(url: str, body: bytes, headers: Any) -> SendOutcome:
        sent.append(url)
        return SendOutcome(200, "")

    report = webhook_deliveries_send_due(now=NOW, sender=send)

    delivery = WebhookDelivery.objects.get()
    assert (report.dropped, sent) == (1, [])
    assert (delivery.status, delivery.last_error) == (
        "dropped",
        "the subscription's owner no longer has access to this patient",
    )


def test_deactivating_drops_pending_deliveries(scene: Scene) -> None:
    subscription, _ = _subscribe(scene, "https://a.example.org/")
    webhook_deliveries_queue(
        events=[FakeEvent(id=9, type="task.changed", patient_id=scene.patient.pk)], now=NOW
    )

    webhook_subscription_deactivate(owner=scene.gp.user, subscription_id=subscription.pk)
    report = webhook_deliveries_send_due(now=NOW)

    assert report.succeeded + report.retried == 0
    assert WebhookDelivery.objects.get().status == "dropped"
    assert WebhookSubscription.objects.get().active is False


def test_a_claim_left_by_a_dead_worker_is_sent_again_after_the_lease(scene: Scene) -> None:
    _subscribe(scene, "https://a.example.org/")
    webhook_deliveries_queue(
        events=[FakeEvent(id=9, type="task.changed", patient_id=scene.patient.pk)], now=NOW
    )
    [stale] = _claim_due(now=NOW, limit=10)  # a worker claims, then dies before recording

    during_lease = webhook_deliveries_send_due(
        now=NOW + LEASE / 2, sender=lambda *a: SendOutcome(200, "")
    )
    after_lease = webhook_deliveries_send_due(
        now=NOW + LEASE, sender=lambda *a: SendOutcome(200, "")
    )
    late = _record(stale, SendOutcome(500, ""), now=NOW + LEASE)  # the dead worker's late answer

    delivery = WebhookDelivery.objects.get()
    assert (during_lease.succeeded, after_lease.succeeded) == (0, 1)
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)
    assert late == "stale"
    assert delivery.last_status_code == 200


# With the outbox and the periodic job.


def test_a_task_change_reaches_the_platform_through_relay_and_job(
    scene: Scene, receiver: Receiver
) -> None:
    _subscribe(scene, receiver.url, event_types=["task.changed"])
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")

    with transaction.atomic():
        task_act(
            task_id=visit.pk,
            user=scene.nurse.user,
            data=TaskActionInput(action="start", expected_version=None, note="", output={}),
            entry_point="system",
        )
    published = outbox_relay_run_once(publish=lambda events: None)
    result = webhooks_send()

    [event] = [e for e in published if e.type == "task.changed"]
    assert result == {"succeeded": 1, "retried": 0, "failed": 0, "dropped": 0}
    [received] = receiver.received
    assert received.headers["Parcours-Event-Id"] == str(event.position)
    assert json.loads(received.body)["payload"] == event.payload


def test_the_event_id_a_platform_receives_is_its_commit_order(
    postgres_transactional, receiver: Receiver
) -> None:
    # Transaction A takes the smaller row id but commits after B: a platform ordering or
    # resuming by Parcours-Event-Id must see B first.
    scene_patient = make_patient()
    gp = make_practitioner("gp")
    care_team_member_add(patient=scene_patient, role="gp", practitioner=gp, actor=None)
    webhook_subscription_create(owner=gp.user, url=receiver.url, event_types=["consent.changed"])
    holding, release = threading.Event(), threading.Event()
    ids: dict[str, int] = {}

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                ids["a"] = event_record(
                    type="consent.changed", patient=scene_patient, payload={"given": True}
                ).pk
                holding.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert holding.wait(timeout=30)
    with transaction.atomic():
        ids["b"] = event_record(
            type="consent.changed", patient=scene_patient, payload={"given": False}
        ).pk
    outbox_relay_run_once(publish=lambda events: None)
    release.set()
    thread.join(timeout=30)
    outbox_relay_run_once(publish=lambda events: None)

    webhook_deliveries_send_due(now=timezone.now() + dt.timedelta(seconds=1))

    received = sorted(receiver.received, key=lambda r: int(r.headers["Parcours-Event-Id"]))
    assert ids["a"] < ids["b"]
    assert [json.loads(r.body)["payload"]["given"] for r in received] == [False, True]
    assert [r.headers["Parcours-Event-Id"] for r in received] == [
        str(json.loads(r.body)["id"]) for r in received
    ]


# Replaying failed deliveries.


def _failed_delivery(scene: Scene, url: str = "https://a.example.org/") -> WebhookDelivery:
    """A delivery that failed on every attempt (the receiver was down for a day)."""
    _subscribe(scene, url)
    webhook_deliveries_queue(
        events=[FakeEvent(id=9, type="task.changed", patient_id=scene.patient.pk, position=5)],
        now=NOW,
    )
    moment = NOW
    for wait in (dt.timedelta(0), *RETRY_DELAYS):
        moment += wait
        webhook_deliveries_send_due(
            now=moment, sender=lambda *a: SendOutcome(None, "ConnectionError: refused")
        )
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed"
    return delivery


def test_the_owner_replays_a_failed_delivery_and_it_is_sent_again(
    scene: Scene, receiver: Receiver
) -> None:
    failed = _failed_delivery(scene, receiver.url)
    later = NOW + dt.timedelta(days=2)

    replayed = webhook_delivery_replay(delivery_id=failed.pk, actor=scene.gp.user, now=later)
    report = webhook_deliveries_send_due(now=later)

    delivery = WebhookDelivery.objects.get()
    assert (replayed.status, replayed.attempts, replayed.next_attempt_at) == ("pending", 0, later)
    assert report.succeeded == 1
    assert (delivery.status, delivery.attempts, delivery.replays) == ("succeeded", 1, 1)
    assert (delivery.replayed_at, delivery.replayed_by) == (later, scene.gp.user.username)
    [received] = receiver.received
    assert received.body == delivery.body.encode()
    assert received.headers["Parcours-Event-Id"] == "5"


def test_a_replayed_delivery_that_fails_again_gets_the_whole_retry_schedule(scene: Scene) -> None:
    failed = _failed_delivery(scene)
    later = NOW + dt.timedelta(days=2)
    webhook_delivery_replay(delivery_id=failed.pk, actor=scene.gp.user, now=later)

    webhook_deliveries_send_due(now=later, sender=lambda *a: SendOutcome(503, ""))

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.next_attempt_at == later + RETRY_DELAYS[0]


@pytest.mark.parametrize("who", ["nurse", "outsider", "staff without the permission"])
def test_only_the_owner_or_operations_staff_may_replay(scene: Scene, who: str) -> None:
    failed = _failed_delivery(scene)
    user = {
        "nurse": scene.nurse.user,
        "outsider": scene.outsider.user,
        "staff without the permission": get_user_model().objects.create_user(
            username="synthetic-staff", is_staff=True
        ),
    }[who]

    with pytest.raises(NotFound):
        webhook_delivery_replay(delivery_id=failed.pk, actor=user)
    with pytest.raises(NotFound):
        webhook_deliveries_replay_failed(subscription_id=failed.subscription_id, actor=user)

    assert WebhookDelivery.objects.get().status == "failed"


def test_operations_staff_with_the_permission_may_replay(scene: Scene) -> None:
    failed = _failed_delivery(scene)
    staff = get_user_model().objects.create_user(username="synthetic-ops", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="change_webhookdelivery"))
    staff = get_user_model().objects.get(pk=staff.pk)  # fresh permission cache

    replayed = webhook_delivery_replay(delivery_id=failed.pk, actor=staff)

    assert (replayed.status, replayed.replayed_by) == ("pending", "synthetic-ops")


def test_only_a_failed_delivery_is_replayed(scene: Scene) -> None:
    _subscribe(scene, "https://a.example.org/")
    webhook_deliveries_queue(
        events=[FakeEvent(id=9, type="task.changed", patient_id=scene.patient.pk)], now=NOW
    )
    pending = WebhookDelivery.objects.get()

    with pytest.raises(Conflict, match="only a failed delivery can be replayed; this one is"):
        webhook_delivery_replay(delivery_id=pending.pk, actor=scene.gp.user)

    assert WebhookDelivery.objects.get().replays == 0


def test_a_deactivated_subscription_s_deliveries_are_not_replayed(scene: Scene) -> None:
    failed = _failed_delivery(scene)
    webhook_subscription_deactivate(owner=scene.gp.user, subscription_id=failed.subscription_id)

    with pytest.raises(Conflict, match="deactivated"):
        webhook_delivery_replay(delivery_id=failed.pk, actor=scene.gp.user)

    assert WebhookDelivery.objects.get().status == "failed"


def test_replaying_a_subscription_s_failed_deliveries_leaves_the_others(scene: Scene) -> None:
    failed = _failed_delivery(scene)
    webhook_deliveries_queue(
        events=[FakeEvent(id=10, type="task.changed", patient_id=scene.patient.pk)], now=NOW
    )
    later = NOW + dt.timedelta(days=2)

    count = webhook_deliveries_replay_failed(
        subscription_id=failed.subscription_id, actor=scene.gp.user, now=later
    )

    assert count == 1
    assert sorted(
        WebhookDelivery.objects.values_list("event_id", "status", "attempts", "replays")
    ) == [(9, "pending", 0, 1), (10, "pending", 0, 0)]
