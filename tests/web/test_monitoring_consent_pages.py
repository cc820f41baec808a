"""The patient page (care team) and the portal (the patient) say when remote monitoring is
suspended because the patient withdrew their consent, and from which day."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from coordination.models import CarePathway
from coordination.services import care_pathway_start
from directory.services import consent_set
from tests.coordination.conftest import Scene
from tests.coordination.test_remote_monitoring_consent import MONITORED
from tests.web.test_pathway_monitoring_pages import log_in
from tests.web.test_portal import portal_client
from workflows.actors import Actor
from workflows.services import definition_publish

WITHDRAWN = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def monitored(scene: Scene) -> CarePathway:
    definition_publish(source=MONITORED, actor=Actor(id="test"), fmt="yaml")
    return care_pathway_start(patient=scene.patient, key="monitored", user=scene.gp.user)


def monitoring(scene: Scene, given: bool) -> None:
    consent_set(
        patient=scene.patient, scope="remote_monitoring", given=given, actor=scene.gp.user,
        entry_point="web",
    )  # fmt: skip


def withdraw(scene: Scene) -> None:
    monitoring(scene, True)
    with time_machine.travel(WITHDRAWN, tick=False):
        monitoring(scene, False)


def test_the_patient_page_says_remote_monitoring_is_suspended_in_french(
    scene: Scene, monitored: CarePathway
):
    withdraw(scene)

    page = log_in(scene.nurse, "fr").get(f"/patients/{scene.patient.pk}/").content.decode()

    assert page.count("Télésurveillance suspendue : consentement retiré le 02/03/2026") == 1
    section = page.split(f'data-pathway="{monitored.pk}"')[1].split("</section>")[0]
    assert 'data-monitoring="suspended"' in section  # on the monitored pathway only


def test_the_patient_page_in_english_and_no_notice_once_given_again(
    scene: Scene, monitored: CarePathway
):
    withdraw(scene)
    client = log_in(scene.nurse, "en")

    suspended = client.get(f"/patients/{scene.patient.pk}/").content.decode()
    monitoring(scene, True)
    resumed = client.get(f"/patients/{scene.patient.pk}/").content.decode()

    assert "Remote monitoring suspended: consent withdrawn on" in suspended
    assert 'data-monitoring="suspended"' not in resumed


def test_the_portal_tells_the_patient_too(scene: Scene, monitored: CarePathway):
    withdraw(scene)

    page = portal_client(scene.patient, "portal-monitoring").get("/portal/").content.decode()

    assert "Télésurveillance suspendue : consentement retiré le 02/03/2026" in page
