"""Observations and alerts write their outbox events in the transaction that stores them."""

from __future__ import annotations

import datetime as dt

import pytest

from coordination.models import AlertRecord
from coordination.tasks import outbox_relay_backstop
from live.models import OutboxEvent
from patients.errors import InvalidObservation
from patients.models import Observation
from tests.coordination.conftest import Scene
from tests.coordination.test_alerts import DAY, SPO2, T0, WEIGHT, frozen, ingest, item, monitored

__all__ = ["frozen", "monitored"]


def _events(kind: str) -> list[OutboxEvent]:
    return list(OutboxEvent.objects.filter(type=kind).order_by("id"))


def test_a_stored_batch_writes_one_observation_event_without_values(monitored: Scene) -> None:
    ingest(
        monitored.patient,
        [item(WEIGHT, "80.0", "kg", T0 - 2 * DAY), item(WEIGHT, "80.5", "kg", T0 - DAY)],
    )

    [event] = _events("observation.received")
    stored = sorted(Observation.objects.values_list("pk", flat=True))
    assert event.patient_id == monitored.patient.pk
    assert event.payload == {"observations": stored, "codes": [WEIGHT], "source": "device"}


def test_a_raised_alert_writes_its_event(monitored: Scene) -> None:
    [alert] = ingest(monitored.patient, item(SPO2, "86", "%", T0))

    [event] = _events("alert.raised")
    record = AlertRecord.objects.get()
    assert alert.pk == record.pk
    assert event.patient_id == monitored.patient.pk
    assert event.payload == {
        "alert": record.pk,
        "name": "low-spo2",
        "pathway": monitored.pathway.pk,
        "priority": record.priority,
        "fired": True,
        "task": record.task_id,
        "kind": "condition",
        "score": 0,
        "band": "low",
    }


def test_a_refused_observation_writes_no_event(monitored: Scene) -> None:
    before = OutboxEvent.objects.count()

    with pytest.raises(InvalidObservation):
        ingest(monitored.patient, item(WEIGHT, "-3", "kg", T0))

    assert OutboxEvent.objects.count() == before
    assert _events("observation.received") == []


def test_the_backstop_job_publishes_only_events_left_behind(monitored: Scene, frozen) -> None:
    ingest(monitored.patient, item(WEIGHT, "80.0", "kg", T0 - DAY))
    later = T0 + dt.timedelta(seconds=31)
    frozen.move_to(later)
    ingest(monitored.patient, item(WEIGHT, "80.2", "kg", later), now=later)
    old, new = _events("observation.received")
    assert OutboxEvent.objects.count() == 6

    published = outbox_relay_backstop()

    old.refresh_from_db()
    new.refresh_from_db()
    # The scene's three care-team changes and pathway start, and the first observation.
    assert published == 5
    assert old.published_at is not None
    assert new.published_at is None
