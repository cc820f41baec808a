from __future__ import annotations

import datetime as dt
import itertools
import textwrap
from dataclasses import dataclass
from typing import Any

import pytest

from coordination.models import CarePathway
from coordination.services import care_pathway_start
from directory.identifiers import luhn_valid
from directory.models import Practitioner
from directory.services import care_team_member_add, practitioner_create
from patients.models import Patient
from patients.services import patient_create
from workflows.actors import Actor
from workflows.services import definition_publish

CARE_TEST = textwrap.dedent(
    """
    key: care-test
    version: 1
    title: Care test
    roles: [gp, nurse, coordinator, patient]
    initial: assessment
    states:
      assessment:
        on_enter:
          - task: {code: visit, title: Home visit, role: nurse, due: PT48H, priority: urgent}
          - task: {code: review, title: {en: GP review, fr: Avis du médecin}, role: gp, due: P7D}
        on:
          tasks_completed: follow_up
          stop: {to: closed, roles: [gp, coordinator]}
      follow_up:
        on_enter:
          - task: {code: diary, title: Fill in the diary, role: patient, due: P7D}
        on:
          tasks_completed: closed
          stop: {to: closed, roles: [gp]}
      closed: {final: true}
    """
)

_counter = itertools.count(1)


def synthetic_rpps() -> str:
    base = f"9990{next(_counter):06d}"
    return next(base + d for d in "0123456789" if luhn_valid(base + d))


def make_practitioner(profession: str = "nurse", **extra: Any) -> Practitioner:
    n = next(_counter)
    return practitioner_create(
        username=f"{profession}-{n}",
        given_name="Synthetic",
        family_name=f"{profession.title()} {n}",
        profession=profession,
        rpps=synthetic_rpps(),
        actor=None,
        **extra,
    )


def make_patient(**extra: object) -> Patient:
    n = next(_counter)
    return patient_create(
        family_name=f"Synthetic {n}",
        given_names="Patient",
        birth_date=dt.date(1950, 1, 1) + dt.timedelta(days=n),
        sex="female",
        actor=None,
        entry_point="system",
        **extra,  # type: ignore[arg-type]
    )


@dataclass
class Scene:
    patient: Patient
    gp: Practitioner
    nurse: Practitioner
    coordinator: Practitioner
    outsider: Practitioner
    pathway: CarePathway


@pytest.fixture
def care_test(db: None) -> None:
    definition_publish(source=CARE_TEST, actor=Actor(id="test"), fmt="yaml")


@pytest.fixture
def scene(care_test: None) -> Scene:
    """A patient with a GP, a nurse and a coordinator in the care team, an unrelated nurse,
    and a `care-test` pathway started by the GP."""
    patient = make_patient()
    gp, nurse = make_practitioner("gp"), make_practitioner("nurse")
    coordinator, outsider = make_practitioner("coordinator"), make_practitioner("nurse")
    care_team_member_add(patient=patient, role="gp", practitioner=gp, actor=None)
    care_team_member_add(patient=patient, role="nurse", practitioner=nurse, actor=None)
    care_team_member_add(patient=patient, role="coordinator", practitioner=coordinator, actor=None)
    pathway = care_pathway_start(patient=patient, key="care-test", user=gp.user)
    return Scene(patient, gp, nurse, coordinator, outsider, pathway)
