"""Triage: a pathway's risk kept on the patient's open tasks, and the worklist and inbox
selectors in triage order."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from coordination.models import RISK_RANK_NONE, CarePathway, Task, risk_of_rank, risk_rank
from coordination.selectors import (
    patient_risk_rank,
    visible_alerts,
    worklist_mine,
    worklist_overdue,
)
from coordination.services import (
    care_pathway_resume,
    care_pathway_start,
    care_pathway_suspend,
    task_act,
)
from coordination.services.tasks import TaskActionInput
from coordination.services.triage import pathway_risk_apply, patient_risk_sync
from directory.services import care_team_member_add
from live import events
from live.models import OutboxEvent
from tests.coordination.conftest import CARE_TEST, Scene, make_patient, make_practitioner
from tests.coordination.test_monitoring import SPO2, T0, frozen, ingest, item, watched
from tests.coordination.triage_scene import build_triage_scene
from workflows.actors import Actor
from workflows.models import PathwayInstance
from workflows.services import definition_publish

__all__ = ["frozen", "watched"]  # fixtures of the alert engine's tests


@pytest.fixture
def concurrent_care_test(scene: Scene) -> None:
    """A version 2 of `care-test` that lets a patient follow it several times at once, after
    the scene's pathway (version 1) has started: the tests below want two of them."""
    source = CARE_TEST.replace("version: 1\n", "version: 2\nallow_concurrent: true\n")
    definition_publish(source=source, actor=Actor(id="test"), fmt="yaml")


@pytest.mark.parametrize(
    ("band", "score"),
    [("high", 0), ("high", 12), ("medium", 3), ("low", 0), ("low", 2), ("high", 9999)],
)
def test_a_rank_gives_back_its_band_and_score(band: str, score: int):
    assert risk_of_rank(risk_rank(band, score)) == (band, score)


def test_ranks_order_by_band_then_by_score():
    pairs = [("low", 9), ("high", 5), ("medium", 4), ("high", 8), ("low", 0), ("medium", 7)]

    ranked = sorted(pairs, key=lambda p: risk_rank(*p))

    assert ranked == [("high", 8), ("high", 5), ("medium", 7), ("medium", 4), ("low", 9),
                      ("low", 0)]  # fmt: skip
    assert risk_rank("low", 0) == RISK_RANK_NONE


def _open_ranks(scene: Scene) -> set[int]:
    return set(
        Task.objects.filter(patient=scene.patient, status__in=["ready", "requested"]).values_list(
            "risk_rank", flat=True
        )
    )


def test_applying_a_risk_stores_it_and_ranks_the_patients_open_tasks(scene: Scene):
    now = timezone.now()
    versions = dict(Task.objects.filter(patient=scene.patient).values_list("pk", "version"))

    changed = pathway_risk_apply(scene.pathway.pk, 6, "high", now)

    pathway = CarePathway.objects.get(pk=scene.pathway.pk)
    assert changed is True
    assert (pathway.risk_score, pathway.risk_band, pathway.risk_updated_at) == (6, "high", now)
    assert _open_ranks(scene) == {risk_rank("high", 6)}
    # Not a change of the tasks: nobody's optimistic check fails because the risk moved.
    assert dict(Task.objects.filter(patient=scene.patient).values_list("pk", "version")) == (
        versions
    )


def test_applying_a_risk_writes_an_event_naming_the_pathway_only(scene: Scene):
    before = OutboxEvent.objects.count()

    pathway_risk_apply(scene.pathway.pk, 3, "medium", timezone.now())

    event = OutboxEvent.objects.order_by("-pk").first()
    assert OutboxEvent.objects.count() == before + 1
    assert event is not None
    assert (event.type, event.patient_id) == (events.PATHWAY_RISK_CHANGED, scene.patient.pk)
    assert event.payload == {"pathway": scene.pathway.pk}


def test_applying_the_same_risk_again_writes_nothing(scene: Scene):
    pathway_risk_apply(scene.pathway.pk, 3, "medium", timezone.now())
    before = OutboxEvent.objects.count()

    changed = pathway_risk_apply(scene.pathway.pk, 3, "medium", timezone.now())

    assert changed is False
    assert OutboxEvent.objects.count() == before


def test_a_closed_task_keeps_the_rank_it_had(scene: Scene):
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")
    task_act(
        task_id=visit.pk,
        user=scene.nurse.user,
        data=TaskActionInput(action="complete", expected_version=None),
        entry_point="system",
    )

    pathway_risk_apply(scene.pathway.pk, 9, "high", timezone.now())

    assert Task.objects.get(pk=visit.pk).risk_rank == RISK_RANK_NONE


def test_the_patients_rank_is_the_highest_over_their_active_pathways(
    scene: Scene, concurrent_care_test: None
):
    second = care_pathway_start(patient=scene.patient, key="care-test", user=scene.gp.user)
    pathway_risk_apply(scene.pathway.pk, 7, "high", timezone.now())

    pathway_risk_apply(second.pk, 2, "low", timezone.now())

    assert patient_risk_rank(patient_id=scene.patient.pk) == risk_rank("high", 7)
    assert _open_ranks(scene) == {risk_rank("high", 7)}


def test_a_pathway_that_ended_no_longer_counts_once_synced(
    scene: Scene, concurrent_care_test: None
):
    second = care_pathway_start(patient=scene.patient, key="care-test", user=scene.gp.user)
    pathway_risk_apply(scene.pathway.pk, 7, "high", timezone.now())
    pathway_risk_apply(second.pk, 3, "medium", timezone.now())
    assert scene.pathway.instance_id is not None
    PathwayInstance.objects.filter(pk=scene.pathway.instance_id).update(status="completed")

    rank = patient_risk_sync(patient_id=scene.patient.pk)

    assert rank == risk_rank("medium", 3)
    assert _open_ranks(scene) == {risk_rank("medium", 3)}


def test_suspending_a_pathway_takes_its_risk_out_of_the_patients_rank(
    scene: Scene, concurrent_care_test: None, django_capture_on_commit_callbacks
):
    second = care_pathway_start(patient=scene.patient, key="care-test", user=scene.gp.user)
    pathway_risk_apply(scene.pathway.pk, 7, "high", timezone.now())
    pathway_risk_apply(second.pk, 3, "medium", timezone.now())
    assert _open_ranks(scene) == {risk_rank("high", 7)}

    with django_capture_on_commit_callbacks(execute=True):
        care_pathway_suspend(pathway=scene.pathway, user=scene.gp.user, reason="holiday")
    assert _open_ranks(scene) == {risk_rank("medium", 3)}

    with django_capture_on_commit_callbacks(execute=True):
        care_pathway_resume(pathway=scene.pathway, user=scene.gp.user, reason="back")
    assert _open_ranks(scene) == {risk_rank("high", 7)}


def test_a_task_opened_later_takes_the_patients_current_rank(
    scene: Scene, concurrent_care_test: None
):
    pathway_risk_apply(scene.pathway.pk, 4, "medium", timezone.now())

    second = care_pathway_start(patient=scene.patient, key="care-test", user=scene.gp.user)

    opened = Task.objects.filter(care_pathway=second)
    assert {t.risk_rank for t in opened} == {risk_rank("medium", 4)}


def test_an_unknown_pathway_is_refused(care_test: None):
    with pytest.raises(CarePathway.DoesNotExist):
        pathway_risk_apply(987654, 3, "medium", timezone.now())


def test_the_worklist_orders_by_band_score_priority_due_time_then_id(care_test: None):
    triage = build_triage_scene()

    mine = list(worklist_mine(triage.nurse.user).values_list("pk", flat=True))

    assert mine == triage.task_order()


def test_the_overdue_list_keeps_the_triage_order(care_test: None):
    triage = build_triage_scene()
    later = triage.now + dt.timedelta(days=10)

    overdue = list(worklist_overdue(triage.nurse.user, now=later).values_list("pk", flat=True))

    assert overdue == [pk for pk in triage.task_order() if pk != triage.tasks["B.urgent_nodue"].pk]


def test_the_inbox_orders_by_the_patients_band_and_score_then_priority_and_due_time(
    care_test: None,
):
    triage = build_triage_scene()

    inbox = list(visible_alerts(triage.nurse.user).values_list("pk", flat=True))

    assert inbox == triage.alert_order()


# --- with the alert engine ----------------------------------------------------------------


def test_an_alert_raised_by_a_reading_ranks_the_patients_open_tasks(watched: Scene):
    ingest(watched.patient, item(SPO2, "85", "%", T0))

    pathway = CarePathway.objects.get(pk=watched.pathway.pk)
    opened = Task.objects.filter(patient=watched.patient, status__in=["ready", "requested"])
    assert (pathway.risk_band, pathway.risk_score) == ("medium", 3)
    assert {t.risk_rank for t in opened} == {risk_rank("medium", 3)}
    assert OutboxEvent.objects.filter(
        type=events.PATHWAY_RISK_CHANGED, payload={"pathway": pathway.pk}
    ).exists()


def test_closing_the_alerts_task_brings_the_patients_rank_back(watched: Scene):
    (alert,) = ingest(watched.patient, item(SPO2, "85", "%", T0))
    assert alert.task is not None

    task_act(
        task_id=alert.task.pk,
        user=watched.nurse.user,
        data=TaskActionInput(action="complete"),
    )

    others = Task.objects.filter(patient=watched.patient, status__in=["ready", "requested"])
    assert CarePathway.objects.get(pk=watched.pathway.pk).risk_band == "low"
    assert {t.risk_rank for t in others} <= {RISK_RANK_NONE}


def test_a_task_another_transaction_holds_is_ranked_after_commit_without_waiting(
    postgres_transactional: None,
):
    """A nurse's action holds one of the patient's tasks while the risk changes: the
    rank UPDATE does not wait for it (two such changes would wait for each other), and the
    task is ranked right after the change commits."""
    definition_publish(source=CARE_TEST, actor=Actor(id="test"), fmt="yaml")
    patient, nurse, gp = make_patient(), make_practitioner("nurse"), make_practitioner("gp")
    care_team_member_add(patient=patient, role="gp", practitioner=gp, actor=None)
    care_team_member_add(patient=patient, role="nurse", practitioner=nurse, actor=None)
    pathway = care_pathway_start(patient=patient, key="care-test", user=gp.user)
    held, free = Task.objects.filter(care_pathway=pathway).order_by("pk")
    locked, release = threading.Event(), threading.Event()

    def holder() -> None:
        try:
            with transaction.atomic():
                Task.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(timeout=20)
        finally:
            connections.close_all()

    thread = threading.Thread(target=holder)
    thread.start()
    assert locked.wait(timeout=20)
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '5s'")
            started = time.monotonic()
            pathway_risk_apply(pathway.pk, 6, "high", timezone.now())
            elapsed = time.monotonic() - started
            ranks = dict(Task.objects.filter(care_pathway=pathway).values_list("pk", "risk_rank"))
            release.set()  # the holder commits; the sync after this commit then gets the row
    finally:
        release.set()
        thread.join(timeout=20)

    assert elapsed < 2
    assert ranks == {held.pk: RISK_RANK_NONE, free.pk: risk_rank("high", 6)}
    assert set(Task.objects.filter(care_pathway=pathway).values_list("risk_rank", flat=True)) == {
        risk_rank("high", 6)
    }
