"""Monitoring as a device platform and a nurse meet it: critical readings posted at the same
time over HTTP to a real uvicorn server, by a nurse logged in through the login form, in a
step that declares no alert of its own; the alert inbox and the worklist then answer through
the API in triage order."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

import pytest
import requests

from coordination.models import AlertRecord, Task
from coordination.services import care_pathway_fire, care_pathway_start
from directory.services import care_team_member_add
from tests.coordination.conftest import make_patient, make_practitioner
from tests.coordination.test_monitoring import WATCHED
from tests.integration.conftest import AsgiServer
from tests.integration.processes import PASSWORD, log_in
from workflows.actors import Actor
from workflows.services import definition_publish

pytestmark = pytest.mark.slow


def test_readings_posted_at_once_in_a_step_without_alerts_open_one_urgent_task(
    postgres_servers, asgi_servers: Callable[..., AsgiServer]
):
    definition_publish(source=WATCHED, actor=Actor(id="test"), fmt="yaml")
    nurse, gp = make_practitioner("nurse"), make_practitioner("gp")
    nurse.user.set_password(PASSWORD)
    nurse.user.save()
    patients = []
    for _ in range(2):
        patient = make_patient()
        care_team_member_add(patient=patient, role="gp", practitioner=gp, actor=None)
        care_team_member_add(patient=patient, role="nurse", practitioner=nurse, actor=None)
        pathway = care_pathway_start(patient=patient, key="watched", user=gp.user)
        # `review` declares no alert: only the pathway's monitoring watches it.
        care_pathway_fire(pathway=pathway, event="decompensation_risk", user=None)
        patients.append(patient)
    urgent, calm = patients
    server = asgi_servers(relay=False)
    session = log_in(server.http, nurse.user.username)
    now = dt.datetime.now(dt.UTC)
    answers: list[int] = []

    def post(patient_id: int, value: int, minutes: int) -> None:
        reading = {
            "code": "59408-5",
            "value": str(value),
            "unit": "%",
            "effective_at": (now - dt.timedelta(minutes=minutes)).isoformat(),
        }
        answer = session.post(
            f"{server.http}/api/v1/patients/{patient_id}/observations/", json=reading, timeout=30
        )
        answers.append(answer.status_code)

    threads = [threading.Thread(target=post, args=(urgent.pk, 80, m)) for m in range(4)]
    threads.append(threading.Thread(target=post, args=(calm.pk, 97, 0)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert answers == [201] * 5
    record = AlertRecord.objects.get()
    assert (record.patient_id, record.name, record.repeats) == (urgent.pk, "low-spo2", 3)
    task = Task.objects.get(code="alert-low-spo2")
    assert (task.offered_role, task.priority, task.status) == ("nurse", "urgent", "ready")

    inbox = session.get(f"{server.http}/api/v1/alerts/", timeout=30)
    assert inbox.status_code == 200
    [alert] = inbox.json()["results"]
    assert (alert["name"], alert["score"], alert["patient_risk"]) == (
        "low-spo2",
        3,
        {"band": "medium", "score": 3},
    )
    # The team's only nurse owns it at once; her list shows it with the patient's risk.
    mine = session.get(f"{server.http}/api/v1/tasks/", params={"view": "mine"}, timeout=30).json()[
        "results"
    ]
    assert [(t["id"], t["risk_band"], t["risk_score"]) for t in mine] == [(task.pk, "medium", 3)]
    assert requests.get(server.http + "/health/", timeout=10).status_code == 200
