"""Observations arriving from devices, patients, professionals and platforms: stored through
the patients service, then evaluated against the alerts of the patient's active pathways.

Evaluation is synchronous, inside the transaction that stores the observations: an alert and
the measurement that raised it commit together (a crash cannot keep one and lose the other),
and a batch costs one read per measurement code plus a few microseconds of CEL per row (see
bench/ingest.py). The pathway instances are locked before the observations are stored: every
pathway service takes the instance before any other row it writes, and ingestion keeps that
order so that it never waits on a pathway action that waits on it. (Audit records take no
lock: they are chained after commit, patients.services.audit.)
Invalid observations are refused by the patients service before any alert is looked at.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from coordination.models import AlertRecord
from coordination.services.alerts import alerts_evaluate, lock_listeners
from live import events
from live.services.outbox import event_record
from patients.models import AuditEvent, Observation, Patient
from patients.services import ObservationItem, observation_record, observations_record


@dataclass(frozen=True)
class IngestResult:
    observations: list[Observation]
    alerts: list[AlertRecord]


def observations_ingest(
    *,
    patient: Patient,
    observations: Sequence[ObservationItem | Mapping[str, Any]]
    | ObservationItem
    | Mapping[str, Any],
    actor: AbstractBaseUser | None,
    source: str,
    entry_point: str = AuditEvent.EntryPoint.SYSTEM,
    client_address: str | None = None,
    now: dt.datetime | None = None,
) -> IngestResult:
    """Store one observation (a mapping or an ObservationItem: problems are located by field
    name) or a batch (a sequence: `items.3.unit`), all or nothing (InvalidObservation), then
    raise the alerts they trigger. Returns what was stored and the alerts raised (repeats
    within the debounce window are not)."""
    now = now or timezone.now()
    common: dict[str, Any] = {
        "patient": patient,
        "actor": actor,
        "source": source,
        "entry_point": entry_point,
        "client_address": client_address,
        "now": now,
    }
    with transaction.atomic():
        listeners = lock_listeners(patient_id=patient.pk)
        if isinstance(observations, ObservationItem | Mapping):
            stored = [observation_record(item=observations, **common)]
        else:
            stored = observations_record(items=observations, **common)
        event_record(
            type=events.OBSERVATION_RECEIVED,
            patient=patient,
            payload=events.observations_payload(
                observation_ids=[o.pk for o in stored],
                codes=[o.code for o in stored],
                source=source,
            ),
            occurred_at=now,
        )
        alerts = alerts_evaluate(
            patient_id=patient.pk, observations=stored, listeners=listeners, now=now
        )
    return IngestResult(stored, alerts)
