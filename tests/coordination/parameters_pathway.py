"""A small COPD-like pathway declaring per-patient parameters, and a patient following it,
for the tests of per-patient parameters (service, API, web)."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from coordination.models import CarePathway
from coordination.services import care_pathway_start
from directory.models import Practitioner
from directory.services import care_team_member_add
from patients.models import Patient
from tests.coordination.conftest import make_patient, make_practitioner
from workflows.actors import Actor
from workflows.services import definition_publish

COPD_TEST = textwrap.dedent(
    """
    key: copd-test
    version: 1
    title: {en: COPD remote monitoring (test), fr: Télésurveillance BPCO (test)}
    roles: [gp, pulmonologist, nurse, coordinator, patient]
    initial: monitoring
    monitoring:
      parameters:
        spo2_floor:
          title: {en: SpO2 floor, fr: Seuil de SpO2}
          default: 90
          minimum: 80
          maximum: 95
          unit: '%'
          roles: [pulmonologist, gp]
        heart_rate_ceiling:
          title: {en: Heart rate ceiling, fr: Plafond de fréquence cardiaque}
          default: 120
          minimum: 90
          maximum: 150
          unit: /min
      alerts:
        - name: low-spo2
          title: {en: Low SpO2, fr: SpO2 basse}
          when: "observation.code == '59408-5' && observation.value < params.spo2_floor"
          role: nurse
          priority: urgent
    states:
      monitoring:
        title: Remote monitoring
        on:
          stop: {to: closed, roles: [gp]}
      closed: {final: true}
    """
)
LOW_SPO2 = "observation.code == '59408-5' && observation.value < params.spo2_floor"


@dataclass
class CopdScene:
    patient: Patient
    gp: Practitioner
    pulmonologist: Practitioner
    nurse: Practitioner
    outsider: Practitioner
    pathway: CarePathway


def copd_publish() -> None:
    definition_publish(source=COPD_TEST, actor=Actor(id="test"), fmt="yaml")


def copd_scene(**patient: object) -> CopdScene:
    """A patient on `copd-test` with a GP, a pulmonologist and a nurse in the care team, and
    a nurse in no care team. The definition must be published (`copd_publish`)."""
    subject = make_patient(**patient)
    gp, nurse = make_practitioner("gp"), make_practitioner("nurse")
    pulmonologist = make_practitioner("specialist", specialty="pneumologie")
    care_team_member_add(patient=subject, role="gp", practitioner=gp, actor=None)
    care_team_member_add(patient=subject, role="nurse", practitioner=nurse, actor=None)
    care_team_member_add(
        patient=subject, role="pulmonologist", practitioner=pulmonologist, actor=None
    )
    pathway = care_pathway_start(patient=subject, key="copd-test", user=gp.user)
    return CopdScene(subject, gp, pulmonologist, nurse, make_practitioner("nurse"), pathway)
