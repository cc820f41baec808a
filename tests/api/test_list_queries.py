"""Every list endpoint answers in a number of queries that does not grow with its rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from coordination.models import AlertRecord, Task
from coordination.services import care_pathway_start
from directory.services import (
    care_team_member_add,
    consent_set,
    organization_create,
    service_team_create,
)
from patients.models import Observation
from patients.services import ObservationItem, observations_record
from tests.coordination.conftest import Scene, make_patient, make_practitioner

NOW = dt.datetime.now(dt.UTC)


def add_patient_like_the_scene(scene: Scene) -> None:
    """Two more patients in the nurse's and GP's care, with pathways, tasks and data: on the
    first the nurse is the only nurse (her task is hers), on the second she shares the role
    (the task is offered, unclaimed)."""
    for nurses in (1, 2):
        patient = make_patient()
        care_team_member_add(patient=patient, role="gp", practitioner=scene.gp, actor=None)
        care_team_member_add(patient=patient, role="nurse", practitioner=scene.nurse, actor=None)
        if nurses == 2:
            care_team_member_add(
                patient=patient, role="nurse", practitioner=make_practitioner("nurse"), actor=None
            )
        care_pathway_start(patient=patient, key="care-test", user=scene.gp.user)
    consent_set(
        patient=patient, scope="remote_monitoring", given=True, actor=None, entry_point="system"
    )
    organization_create(name=f"Org {patient.pk}", kind="practice", actor=None)
    service_team_create(name=f"Team {patient.pk}", roles=["nurse"], actor=None)
    make_practitioner("nurse")


def add_rows_for_the_scene_patient(scene: Scene) -> None:
    for given in (True, False):  # one more consent record each time
        consent_set(
            patient=scene.patient,
            scope="external_sharing",
            given=given,
            actor=None,
            entry_point="system",
        )
    care_team_member_add(
        patient=scene.patient, role="nurse", practitioner=make_practitioner("nurse"), actor=None
    )
    observations_record(
        patient=scene.patient,
        items=[
            ObservationItem(
                code="29463-7", value="80.5", unit="kg", effective_at=NOW - dt.timedelta(hours=h)
            )
            for h in range(1, 4)
        ],
        actor=None,
        source="device",
        entry_point="system",
    )
    # An alert raised by the last of them, on a task, for the alert inbox.
    AlertRecord.objects.create(
        care_pathway=scene.pathway, patient=scene.patient, name="weight-gain", kind="condition",
        state="assessment", priority="urgent", raised_at=NOW, last_seen_at=NOW, score=2,
        observation_id=Observation.objects.filter(patient=scene.patient).latest("pk").pk,
        task=Task.objects.filter(patient=scene.patient).first(),
    )  # fmt: skip


LISTS: dict[str, Callable[[Scene], str]] = {
    "pathway-definitions": lambda s: "/api/v1/pathway-definitions/",
    "pathways": lambda s: "/api/v1/pathways/",
    "tasks": lambda s: "/api/v1/tasks/",
    "tasks-mine": lambda s: "/api/v1/tasks/?view=mine",
    "tasks-unclaimed": lambda s: "/api/v1/tasks/?view=unclaimed",
    "patients": lambda s: "/api/v1/patients/",
    "consents": lambda s: f"/api/v1/patients/{s.patient.pk}/consents/",
    "observations": lambda s: f"/api/v1/patients/{s.patient.pk}/observations/",
    # Dates are midnight in the server's time zone (Europe/Paris): two days on either side
    # of today's UTC date hold now whatever the hour (one day ahead did not, 23:00-24:00 UTC).
    "audit-events": lambda s: (
        f"/api/v1/patients/{s.patient.pk}/audit-events/"
        f"?since={(NOW - dt.timedelta(days=2)).date()}&until={(NOW + dt.timedelta(days=2)).date()}"
    ),
    "care-team": lambda s: f"/api/v1/patients/{s.patient.pk}/care-team/",
    "organizations": lambda s: "/api/v1/organizations/",
    "practitioners": lambda s: "/api/v1/practitioners/",
    "teams": lambda s: "/api/v1/teams/",
    "alerts": lambda s: "/api/v1/alerts/",
}


@pytest.mark.parametrize("name", sorted(LISTS))
def test_list_query_count_does_not_grow_with_rows(scene: Scene, name: str):
    client = APIClient()
    client.force_authenticate(scene.nurse.user)
    url = LISTS[name](scene)

    def count() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        rows = body["results"] if isinstance(body, dict) else body  # short lists are not paged
        return len(rows), len(queries)

    add_patient_like_the_scene(scene)
    add_rows_for_the_scene_patient(scene)
    count()  # warm per-process caches (content types, compiled definitions)
    rows_before, queries_before = count()
    for _ in range(3):
        add_patient_like_the_scene(scene)
        add_rows_for_the_scene_patient(scene)
    rows_after, queries_after = count()

    # The definitions list holds the published pathways only: it does not grow here.
    assert rows_after > rows_before or name == "pathway-definitions"
    assert queries_after == queries_before, (
        f"{url}: {queries_before} queries for {rows_before} rows, {queries_after} for {rows_after}"
    )
