"""A patient under remote monitoring with one open alert, for the tests of acknowledging
alerts (service, web page, API, browser): a pathway whose SpO2 alert has a title in French
and English and triage points, a care team (GP, two nurses, a coordinator), an unrelated
nurse, and a GP who may break the glass."""

from __future__ import annotations

import datetime as dt
import textwrap
from dataclasses import dataclass

from django.contrib.auth.models import Permission
from django.utils import timezone

from coordination.models import AlertRecord, CarePathway
from coordination.services import care_pathway_start
from coordination.services.observations import observations_ingest
from directory.models import Practitioner
from directory.services import care_team_member_add
from patients.models import Patient
from tests.coordination.conftest import make_patient, make_practitioner
from workflows.actors import Actor
from workflows.services import definition_publish

SPO2 = "59408-5"

ACK_TEST = textwrap.dedent(
    """
    key: ack-test
    version: 1
    title: Acknowledgement test
    roles: [gp, nurse, coordinator, patient]
    initial: monitoring
    monitoring:
      alerts:
        - name: low-spo2
          title: {en: Low oxygen saturation, fr: Saturation en oxygène basse}
          when: "observation.code == '59408-5' && observation.value < 90.0"
          role: nurse
          priority: urgent
          score: [{when: "last('59408-5') < 85.0", points: 5}, {points: 3}]
      triage:
        bands: {medium: 3, high: 5}
    states:
      monitoring:
        on:
          stop: {to: closed, roles: [gp]}
      closed: {final: true}
    """
)


@dataclass
class AckScene:
    patient: Patient
    gp: Practitioner
    nurse: Practitioner
    other_nurse: Practitioner
    coordinator: Practitioner
    outsider: Practitioner
    emergency_doctor: Practitioner  # may break the glass; in no care team
    pathway: CarePathway
    alert: AlertRecord


def reading(patient: Patient, value: float, at: dt.datetime) -> list[AlertRecord]:
    """A pulse oximeter reading, as a device sends it; the alerts it raised."""
    return observations_ingest(
        patient=patient,
        observations=[{"code": SPO2, "value": value, "unit": "%", "effective_at": at}],
        actor=None,
        source="device",
        now=at,
    ).alerts


def build_ack_scene(*, now: dt.datetime | None = None) -> AckScene:
    now = now or timezone.now()
    definition_publish(source=ACK_TEST, actor=Actor(id="test"), fmt="yaml")
    patient = make_patient()
    gp, nurse, other_nurse = (make_practitioner(p) for p in ("gp", "nurse", "nurse"))
    coordinator, outsider = make_practitioner("coordinator"), make_practitioner("nurse")
    emergency_doctor = make_practitioner("gp")
    emergency_doctor.user.user_permissions.add(
        Permission.objects.get(codename="break_glass_patient")
    )
    for role, who in (
        ("gp", gp), ("nurse", nurse), ("nurse", other_nurse), ("coordinator", coordinator),
    ):  # fmt: skip
        care_team_member_add(patient=patient, role=role, practitioner=who, actor=None)
    pathway = care_pathway_start(patient=patient, key="ack-test", user=gp.user)
    [alert] = reading(patient, 88, now - dt.timedelta(minutes=5))
    return AckScene(
        patient, gp, nurse, other_nurse, coordinator, outsider, emergency_doctor, pathway, alert
    )
