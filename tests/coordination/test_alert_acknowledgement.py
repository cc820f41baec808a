"""Acknowledging an alert: who may, what it records (on the alert, in its history, in the
audit trail, as a live event), the inbox it leaves, the escalation that brings it back, and
two people acknowledging it at once."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.db import connections
from django.utils import timezone, translation

from coordination.errors import NotAllowed, NotFound
from coordination.models import AlertEvent, AlertRecord
from coordination.selectors import visible_alerts
from coordination.services import AlreadyAcknowledged, alert_acknowledge
from live.models import OutboxEvent
from patients.models import AuditEvent
from patients.services import patient_break_glass
from tests.coordination.acknowledgement_scene import AckScene, build_ack_scene, reading


@pytest.fixture
def acked(db: None) -> AckScene:
    return build_ack_scene()


def inbox(user: Any) -> list[int]:
    return list(visible_alerts(user).values_list("pk", flat=True))


def writes() -> tuple[int, int, int]:
    return (
        AlertEvent.objects.count(),
        OutboxEvent.objects.filter(type="alert.acknowledged").count(),
        AuditEvent.objects.filter(resource_type="AlertRecord", action="update").count(),
    )


def test_acknowledging_records_who_and_when_on_the_alert_its_history_the_audit_and_live(
    acked: AckScene,
):
    nurse = acked.nurse.user

    alert = alert_acknowledge(user=nurse, alert_id=acked.alert.pk, note="Called: resting, fine")

    stored = AlertRecord.objects.get(pk=acked.alert.pk)
    assert stored.acknowledged_at == alert.acknowledged_at
    assert stored.acknowledged_at is not None
    assert (stored.acknowledged_by_id, stored.acknowledged_by_label) == (
        nurse.pk,
        nurse.get_full_name(),
    )
    [entry] = AlertEvent.objects.filter(alert=stored)
    assert (entry.action, entry.actor_id, entry.note, entry.occurred_at) == (
        "acknowledge",
        nurse.pk,
        "Called: resting, fine",
        stored.acknowledged_at,
    )
    [event] = OutboxEvent.objects.filter(type="alert.acknowledged")
    assert (event.patient_id, event.payload["alert"], event.payload["name"]) == (
        acked.patient.pk,
        stored.pk,
        "low-spo2",
    )
    [audit] = AuditEvent.objects.filter(resource_type="AlertRecord", action="update")
    assert (audit.actor_id, audit.patient_id, audit.resource_id, audit.outcome) == (
        nurse.pk,
        acked.patient.pk,
        str(stored.pk),
        "success",
    )
    assert audit.detail["action"] == "acknowledge"


def test_an_acknowledged_alert_leaves_the_inbox_of_everyone_in_the_care_team(acked: AckScene):
    assert inbox(acked.gp.user) == [acked.alert.pk]

    alert_acknowledge(user=acked.nurse.user, alert_id=acked.alert.pk)

    assert inbox(acked.gp.user) == []
    assert inbox(acked.other_nurse.user) == []
    everything = visible_alerts(acked.gp.user, include_acknowledged=True)
    assert list(everything.values_list("pk", flat=True)) == [acked.alert.pk]


def test_a_worse_repeat_after_the_acknowledgement_brings_the_alert_back(acked: AckScene):
    alert_acknowledge(user=acked.nurse.user, alert_id=acked.alert.pk)
    later = timezone.now()

    # SpO2 82 %: 5 points instead of 3, the band goes high: the alert is escalated.
    assert reading(acked.patient, 82, later) == []

    alert = AlertRecord.objects.get(pk=acked.alert.pk)
    assert (alert.score, alert.band) == (5, "high")
    assert alert.pending
    assert inbox(acked.nurse.user) == [alert.pk]
    alert_acknowledge(user=acked.other_nurse.user, alert_id=alert.pk)
    assert AlertEvent.objects.filter(alert=alert).count() == 2
    assert inbox(acked.nurse.user) == []


def test_a_repeat_no_worse_leaves_the_acknowledged_alert_out_of_the_inbox(acked: AckScene):
    alert_acknowledge(user=acked.nurse.user, alert_id=acked.alert.pk)

    assert reading(acked.patient, 87, timezone.now()) == []

    assert AlertRecord.objects.get(pk=acked.alert.pk).repeats == 1
    assert inbox(acked.nurse.user) == []


def test_acknowledging_again_says_who_did_it_first_and_writes_nothing(acked: AckScene):
    alert_acknowledge(user=acked.nurse.user, alert_id=acked.alert.pk)
    before = writes()

    with pytest.raises(AlreadyAcknowledged) as refused:
        alert_acknowledge(user=acked.other_nurse.user, alert_id=acked.alert.pk)

    assert refused.value.acknowledged_by == acked.nurse.user.get_full_name()
    assert acked.nurse.user.get_full_name() in str(refused.value)
    assert writes() == before
    alert = AlertRecord.objects.get(pk=acked.alert.pk)
    assert alert.acknowledged_by_id == acked.nurse.user.pk


@pytest.mark.parametrize("who", ["gp", "nurse", "coordinator"])
def test_every_member_of_the_care_team_may_acknowledge(acked: AckScene, who: str):
    user = getattr(acked, who).user

    alert_acknowledge(user=user, alert_id=acked.alert.pk)

    assert AlertRecord.objects.get(pk=acked.alert.pk).acknowledged_by_id == user.pk


@pytest.mark.parametrize("who", ["outsider", "patient", "other_patient", "missing"])
def test_whoever_may_not_see_the_alert_is_answered_as_for_a_missing_one(
    acked: AckScene, who: str, django_user_model: Any
):
    from tests.coordination.conftest import make_patient  # noqa: PLC0415

    if who == "outsider":
        user = acked.outsider.user
    elif who == "patient":
        user = django_user_model.objects.create_user(username="portal-ack")
        acked.patient.user = user
        acked.patient.save(update_fields=["user"])
    else:
        user = django_user_model.objects.create_user(username="portal-other")
        make_patient(user=user)
    alert_id = 10**9 if who == "missing" else acked.alert.pk
    if who == "missing":
        user = acked.nurse.user
    before = writes()

    with pytest.raises(NotFound) as refused:
        alert_acknowledge(user=user, alert_id=alert_id)

    assert str(refused.value) == f"no alert with id {alert_id}"
    assert writes() == before
    assert AlertRecord.objects.get(pk=acked.alert.pk).acknowledged_at is None


def test_a_reader_who_broke_the_glass_sees_the_alert_but_may_not_acknowledge_it(
    acked: AckScene,
):
    doctor = acked.emergency_doctor.user
    patient_break_glass(
        user=doctor, patient_id=acked.patient.pk, reason="synthetic emergency", entry_point="system"
    )
    assert inbox(doctor) == [acked.alert.pk]
    before = writes()

    with translation.override("en"), pytest.raises(NotAllowed, match="care team"):
        alert_acknowledge(user=doctor, alert_id=acked.alert.pk)

    assert writes() == before


def test_a_note_over_the_limit_is_refused(acked: AckScene):
    from coordination.errors import InvalidInput  # noqa: PLC0415

    with pytest.raises(InvalidInput) as refused:
        alert_acknowledge(user=acked.nurse.user, alert_id=acked.alert.pk, note="x" * 501)

    assert [p.location for p in refused.value.problems] == ["note"]
    assert AlertRecord.objects.get(pk=acked.alert.pk).acknowledged_at is None


def test_two_nurses_acknowledging_at_once_one_wins_and_the_other_is_told_who(
    postgres_transactional: None,
):
    scene = build_ack_scene()
    nurses = [scene.nurse.user, scene.other_nurse.user]
    barrier = threading.Barrier(len(nurses))
    done: list[int] = []
    refused: list[AlreadyAcknowledged] = []
    errors: list[BaseException] = []

    def acknowledge(user: Any) -> None:
        try:
            barrier.wait()
            alert_acknowledge(user=user, alert_id=scene.alert.pk)
            done.append(user.pk)
        except AlreadyAcknowledged as exc:
            refused.append(exc)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=acknowledge, args=(user,)) for user in nurses]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(done) == 1
    assert len(refused) == 1
    alert = AlertRecord.objects.get(pk=scene.alert.pk)
    assert alert.acknowledged_by_id == done[0]
    assert refused[0].acknowledged_by == alert.acknowledged_by_label
    assert AlertEvent.objects.filter(alert=alert).count() == 1
    assert OutboxEvent.objects.filter(type="alert.acknowledged").count() == 1


def test_the_acknowledgement_time_is_the_moment_it_was_done(acked: AckScene):
    at = timezone.now() + dt.timedelta(minutes=1)

    alert = alert_acknowledge(user=acked.nurse.user, alert_id=acked.alert.pk, now=at)

    assert alert.acknowledged_at == at
