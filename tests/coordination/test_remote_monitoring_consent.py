"""A withdrawn `remote_monitoring` consent: remote readings refused (nothing stored, nothing
raised), no measurement expected, the pathway's monitoring shown suspended; given again,
all of it resumes. A patient never asked is monitored as before."""

from __future__ import annotations

import datetime as dt
import textwrap
from typing import Any

import pytest
import time_machine

from coordination.models import AlertRecord, CarePathway, Task
from coordination.selectors import PathwayMonitoring, pathway_monitoring, visible_care_pathways
from coordination.services import care_pathway_start
from coordination.services.alerts import missing_measurements_check
from coordination.services.observations import observations_ingest
from directory.services import care_team_member_add, consent_set
from live.models import OutboxEvent
from patients.errors import ConsentWithdrawn
from patients.models import AuditEvent, Observation, Patient
from patients.services import observation_record, observations_record
from tests.coordination.conftest import Scene, make_patient, make_practitioner
from workflows.actors import Actor
from workflows.services import definition_publish

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)
WEIGHT, SPO2 = "29463-7", "59408-5"

MONITORED = textwrap.dedent(
    """
    key: monitored
    version: 1
    title: Monitored
    roles: [gp, nurse, coordinator]
    initial: monitoring
    monitoring:
      alerts:
        - name: low-spo2
          when: "observation.code == '59408-5' && observation.value < 90.0"
          role: nurse
          priority: urgent
      expects:
        - {name: no-weight, code: '29463-7', every: P3D, role: nurse}
    states:
      monitoring:
        on:
          stop: {to: closed, roles: [gp]}
      closed: {final: true}
    """
)


@pytest.fixture
def frozen():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def monitored(db: None, frozen: Any) -> Scene:
    definition_publish(source=MONITORED, actor=Actor(id="test"), fmt="yaml")
    patient = make_patient()
    gp, nurse = make_practitioner("gp"), make_practitioner("nurse")
    coordinator, outsider = make_practitioner("coordinator"), make_practitioner("nurse")
    for role, who in (("gp", gp), ("nurse", nurse), ("coordinator", coordinator)):
        care_team_member_add(patient=patient, role=role, practitioner=who, actor=None)
    pathway = care_pathway_start(patient=patient, key="monitored", user=gp.user)
    return Scene(patient, gp, nurse, coordinator, outsider, pathway)


def monitoring(patient: Patient, given: bool, actor: Any = None) -> None:
    consent_set(
        patient=patient, scope="remote_monitoring", given=given, actor=actor,
        entry_point=AuditEvent.EntryPoint.SYSTEM,
    )  # fmt: skip


def item(code: str, value: Any, unit: str, at: dt.datetime = T0) -> dict[str, Any]:
    return {"code": code, "value": value, "unit": unit, "effective_at": at}


def ingest(patient: Patient, items: Any, source: str = "device", now: dt.datetime = T0) -> Any:
    return observations_ingest(
        patient=patient, observations=items, actor=None, source=source, now=now
    )


def written(patient: Patient) -> tuple[int, int, int, int]:
    """What a reading leaves behind: observations, alerts, outbox events, audit records."""
    return (
        Observation.objects.filter(patient=patient).count(),
        AlertRecord.objects.filter(patient_id=patient.pk).count(),
        OutboxEvent.objects.filter(type="observation.received").count(),
        AuditEvent.objects.filter(resource_type="Observation", patient_id=patient.pk).count(),
    )


@pytest.mark.parametrize("source", ["device", "patient", "platform"])
def test_a_remote_reading_is_refused_while_remote_monitoring_is_withdrawn(
    monitored: Scene, source: str
):
    monitoring(monitored.patient, True)
    monitoring(monitored.patient, False)
    before = written(monitored.patient)

    with pytest.raises(ConsentWithdrawn) as refused:
        ingest(monitored.patient, [item(SPO2, 85, "%"), item(WEIGHT, "80.0", "kg")], source)

    assert refused.value.scope == "remote_monitoring"
    assert refused.value.since == T0
    assert "withdrew their remote_monitoring consent" in str(refused.value)
    assert written(monitored.patient) == before


def test_a_single_reading_and_the_patients_service_itself_refuse_it_too(monitored: Scene):
    monitoring(monitored.patient, True)
    monitoring(monitored.patient, False)

    with pytest.raises(ConsentWithdrawn):
        ingest(monitored.patient, item(SPO2, 85, "%"))  # one observation, not a batch
    with pytest.raises(ConsentWithdrawn):  # the path seed_demo and every other writer takes
        observations_record(
            patient=monitored.patient, items=[item(WEIGHT, "80.0", "kg")], actor=None,
            source="device", entry_point=AuditEvent.EntryPoint.SYSTEM,
        )  # fmt: skip
    with pytest.raises(ConsentWithdrawn):
        observation_record(
            patient=monitored.patient, item=item(WEIGHT, "80.0", "kg"), actor=None,
            source="patient", entry_point=AuditEvent.EntryPoint.SYSTEM,
        )  # fmt: skip

    assert Observation.objects.filter(patient=monitored.patient).count() == 0


def test_a_reading_taken_by_a_professional_is_still_recorded(monitored: Scene):
    monitoring(monitored.patient, True)
    monitoring(monitored.patient, False)

    result = ingest(monitored.patient, [item(SPO2, 85, "%")], source="professional")

    assert [o.source for o in result.observations] == ["professional"]
    assert [a.name for a in result.alerts] == ["low-spo2"]  # care goes on in person


def test_a_patient_never_asked_is_monitored_as_before(monitored: Scene):
    result = ingest(monitored.patient, [item(SPO2, 85, "%")])

    assert len(result.observations) == 1
    assert [a.name for a in result.alerts] == ["low-spo2"]


def test_readings_are_accepted_again_once_consent_is_given_again(monitored: Scene):
    monitoring(monitored.patient, True)
    monitoring(monitored.patient, False)
    with pytest.raises(ConsentWithdrawn):
        ingest(monitored.patient, [item(SPO2, 85, "%")])

    monitoring(monitored.patient, True)
    result = ingest(monitored.patient, [item(SPO2, 85, "%")])

    assert len(result.observations) == 1
    assert [a.name for a in result.alerts] == ["low-spo2"]


def test_no_missing_measurement_task_while_remote_monitoring_is_withdrawn(monitored: Scene):
    monitoring(monitored.patient, True)
    monitoring(monitored.patient, False)

    assert missing_measurements_check(now=T0 + 10 * DAY) == []

    assert not Task.objects.filter(care_pathway=monitored.pathway, code=f"missing-{WEIGHT}")


def test_expected_measurements_resume_counting_from_the_renewed_consent(
    monitored: Scene, frozen: Any
):
    monitoring(monitored.patient, True)
    monitoring(monitored.patient, False)
    frozen.move_to(T0 + 10 * DAY)
    monitoring(monitored.patient, True)  # given again on day 10

    waiting = missing_measurements_check(now=T0 + 12 * DAY)  # two days since: not yet
    [missing] = missing_measurements_check(now=T0 + 13 * DAY + HOUR)

    assert waiting == []
    assert missing.name == "no-weight"
    task = Task.objects.get(care_pathway=monitored.pathway, code=f"missing-{WEIGHT}")
    assert task.title["fr"] == f"Aucune mesure (Body weight) depuis le {T0 + 10 * DAY:%d/%m/%Y}"


def test_withdrawing_closes_the_work_opened_for_missing_readings_and_keeps_the_rest(
    monitored: Scene, frozen: Any
):
    """The missing-weight task asks for what the patient just refused: cancelled, its alert
    out of the inbox with the reason. The low SpO2 read before the withdrawal stays."""
    monitoring(monitored.patient, True)
    [spo2] = ingest(monitored.patient, [item(SPO2, 85, "%")]).alerts
    [missing] = missing_measurements_check(now=T0 + 3 * DAY + HOUR)
    frozen.move_to(T0 + 3 * DAY + 2 * HOUR)

    monitoring(monitored.patient, False, actor=monitored.gp.user)

    missing.refresh_from_db()
    spo2.refresh_from_db()
    assert missing.task is not None
    assert missing.task.status == "cancelled"
    cancel = missing.task.events.get(action="cancel")
    assert cancel.detail == {"reason": "remote monitoring consent withdrawn"}
    assert cancel.actor_label == f"user:{monitored.gp.user.pk}"
    assert not missing.pending
    assert missing.acknowledged_by_label == "system"
    assert [(e.actor_label, e.note) for e in missing.events.all()] == [
        ("system", "remote monitoring consent withdrawn")
    ]
    assert OutboxEvent.objects.filter(type="alert.acknowledged", payload__alert=missing.pk).exists()
    assert spo2.pending
    assert spo2.task is not None
    assert spo2.task.status not in ("cancelled", "completed")
    # The pathway's risk no longer counts the closed alert: only the SpO2 one.
    pathway = CarePathway.objects.get(pk=monitored.pathway.pk)
    assert pathway.risk_score == spo2.score


def test_withdrawing_another_scope_closes_nothing(monitored: Scene):
    monitoring(monitored.patient, True)
    [missing] = missing_measurements_check(now=T0 + 3 * DAY + HOUR)

    for given in (True, False):
        consent_set(
            patient=monitored.patient, scope="external_sharing", given=given, actor=None,
            entry_point=AuditEvent.EntryPoint.SYSTEM,
        )  # fmt: skip

    missing.refresh_from_db()
    assert missing.pending
    assert missing.task is not None
    assert missing.task.status not in ("cancelled", "completed")


def test_a_patient_never_asked_still_gets_missing_measurement_tasks(monitored: Scene):
    [missing] = missing_measurements_check(now=T0 + 3 * DAY + HOUR)

    assert missing.name == "no-weight"


def test_the_pathway_shows_its_monitoring_suspended_since_the_withdrawal(
    monitored: Scene, frozen: Any
):
    monitoring(monitored.patient, True)
    frozen.move_to(T0 + DAY)
    monitoring(monitored.patient, False)

    listed = visible_care_pathways(monitored.gp.user).get(pk=monitored.pathway.pk)
    plain = CarePathway.objects.select_related("instance__definition").get(pk=monitored.pathway.pk)

    expected = PathwayMonitoring("suspended", "consent_withdrawn", T0 + DAY)
    assert pathway_monitoring(listed) == expected  # from the list's annotation
    assert pathway_monitoring(plain) == expected  # read on its own

    monitoring(monitored.patient, True)

    plain = CarePathway.objects.select_related("instance__definition").get(pk=monitored.pathway.pk)
    assert pathway_monitoring(plain) == PathwayMonitoring("active")


def test_a_pathway_that_watches_no_measurement_has_no_monitoring(scene: Scene):
    monitoring(scene.patient, True)
    monitoring(scene.patient, False)

    listed = visible_care_pathways(scene.gp.user).get(pk=scene.pathway.pk)

    assert pathway_monitoring(listed) is None
