"""One running instance of a pathway per patient, unless its definition allows several."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from coordination.errors import Conflict, PathwayRunning
from coordination.models import CarePathway, Task
from coordination.services import (
    care_pathway_cancel,
    care_pathway_fire,
    care_pathway_start,
    care_pathway_suspend,
)
from directory.services import care_team_member_add
from live.models import OutboxEvent
from patients.models import AuditEvent
from tests.coordination.conftest import CARE_TEST, Scene, make_patient, make_practitioner
from workflows.actors import Actor
from workflows.models import PathwayInstance
from workflows.services import definition_publish


def _publish(source: str) -> None:
    definition_publish(source=source, actor=Actor(id="test"), fmt="yaml")


def start_counts() -> tuple[int, int, int, int, int]:
    return (
        CarePathway.objects.count(),
        PathwayInstance.objects.count(),
        Task.objects.count(),
        OutboxEvent.objects.count(),
        AuditEvent.objects.filter(action="create", resource_type="CarePathway").count(),
    )


def test_a_second_start_of_a_running_pathway_is_refused_naming_the_first(scene: Scene):
    before = start_counts()

    with pytest.raises(Conflict) as refused:
        care_pathway_start(patient=scene.patient, key="care-test", user=scene.gp.user)

    assert str(refused.value) == (
        f"the patient already follows this pathway: care pathway {scene.pathway.pk} "
        "(care-test version 1, active, in state assessment); it must end before another starts"
    )
    assert start_counts() == before


def test_a_suspended_pathway_still_counts_as_running(scene: Scene):
    care_pathway_suspend(pathway=scene.pathway, user=scene.gp.user, reason="holiday")
    before = start_counts()

    with pytest.raises(Conflict, match=f"care pathway {scene.pathway.pk} .*suspended"):
        care_pathway_start(patient=scene.patient, key="care-test", user=scene.gp.user)

    assert start_counts() == before


def test_the_pathway_starts_again_once_the_first_is_completed(scene: Scene):
    care_pathway_fire(pathway=scene.pathway, event="stop", user=scene.gp.user)

    again = care_pathway_start(patient=scene.patient, key="care-test", user=scene.gp.user)

    assert again.pk != scene.pathway.pk
    assert again.instance is not None
    assert again.instance.status == "active"
    assert Task.objects.filter(care_pathway=again).count() == 2


def test_the_pathway_starts_again_once_the_first_is_cancelled(scene: Scene):
    care_pathway_cancel(pathway=scene.pathway, user=scene.gp.user, reason="wrong patient")

    again = care_pathway_start(patient=scene.patient, key="care-test", user=scene.gp.user)

    assert CarePathway.objects.filter(patient=scene.patient).count() == 2
    assert again.instance is not None
    assert again.instance.status == "active"


def test_a_definition_that_allows_several_starts_alongside_a_running_one(scene: Scene):
    _publish(CARE_TEST.replace("version: 1\n", "version: 2\nallow_concurrent: true\n"))

    second = care_pathway_start(patient=scene.patient, key="care-test", user=scene.gp.user)

    assert second.instance is not None
    assert (second.instance.definition.version, second.instance.status) == (2, "active")
    assert (
        PathwayInstance.objects.filter(care_pathway__patient=scene.patient, status="active").count()
        == 2
    )


def test_a_refusal_carries_the_running_pathways(scene: Scene):
    with pytest.raises(PathwayRunning) as refused:
        care_pathway_start(patient=scene.patient, key="care-test", user=scene.gp.user)

    assert [p.pk for p in refused.value.running] == [scene.pathway.pk]
    assert refused.value.confirmable is False


def test_a_definition_that_allows_several_asks_first_when_the_caller_wants_it(scene: Scene):
    _publish(CARE_TEST.replace("version: 1\n", "version: 2\nallow_concurrent: true\n"))
    before = start_counts()

    with pytest.raises(PathwayRunning) as asked:
        care_pathway_start(
            patient=scene.patient, key="care-test", user=scene.gp.user, ask_before_concurrent=True
        )

    assert (asked.value.confirmable, [p.pk for p in asked.value.running]) == (
        True,
        [scene.pathway.pk],
    )
    assert start_counts() == before


def test_asking_first_starts_at_once_when_none_runs(scene: Scene):
    _publish(CARE_TEST.replace("version: 1\n", "version: 2\nallow_concurrent: true\n"))
    care_pathway_cancel(pathway=scene.pathway, user=scene.gp.user, reason="wrong patient")

    started = care_pathway_start(
        patient=scene.patient, key="care-test", user=scene.gp.user, ask_before_concurrent=True
    )

    assert started.instance is not None
    assert started.instance.definition.version == 2


def test_a_running_older_version_blocks_a_newer_one_that_does_not_allow_several(scene: Scene):
    _publish(CARE_TEST.replace("version: 1\n", "version: 2\n"))

    with pytest.raises(Conflict, match=r"\(care-test version 1, active, in state assessment\)"):
        care_pathway_start(patient=scene.patient, key="care-test", user=scene.gp.user)

    assert CarePathway.objects.filter(patient=scene.patient).count() == 1


def test_another_pathway_starts_alongside_a_running_one(scene: Scene):
    _publish(CARE_TEST.replace("key: care-test", "key: other-test"))

    other = care_pathway_start(patient=scene.patient, key="other-test", user=scene.gp.user)

    assert other.instance is not None
    assert other.instance.definition.key == "other-test"
    assert CarePathway.objects.filter(patient=scene.patient).count() == 2


def test_another_patient_starts_the_same_pathway(scene: Scene):
    other = make_patient()
    care_team_member_add(patient=other, role="gp", practitioner=scene.gp, actor=None)

    started = care_pathway_start(patient=other, key="care-test", user=scene.gp.user)

    assert started.patient_id == other.pk


def test_two_simultaneous_starts_give_one_pathway_and_one_conflict(
    postgres_transactional, care_test
):
    patient = make_patient()
    gp = make_practitioner("gp")
    care_team_member_add(patient=patient, role="gp", practitioner=gp, actor=None)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def start() -> None:
        try:
            barrier.wait()
            care_pathway_start(patient=patient, key="care-test", user=gp.user)
            outcomes.append("ok")
        except Conflict:
            outcomes.append("conflict")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["conflict", "ok"]
    assert CarePathway.objects.filter(patient=patient).count() == 1
    assert PathwayInstance.objects.filter(subject__startswith="care-pathway:").count() == 1
