"""After an objection (care_team_sharing withdrawn) and renewed consent, each task goes back
to the member who owned it, if still in the care team and the task still open and unclaimed;
the task's history records the release and the return."""

from __future__ import annotations

import threading
from typing import Any

from django.db import connections

import coordination.services.tasks as task_services
from coordination.models import Task, TaskEvent
from coordination.services import TaskActionInput, care_pathway_start, task_act
from directory.models import CareTeamMember
from directory.services import care_team_member_add, care_team_member_remove, consent_set
from live.models import OutboxEvent
from patients.models import Patient
from tests.coordination.conftest import CARE_TEST, Scene, make_patient, make_practitioner
from workflows.actors import Actor
from workflows.services import definition_publish


def sharing(patient: Patient, given: bool) -> None:
    consent_set(
        patient=patient, scope="care_team_sharing", given=given, actor=None,
        entry_point="system",
    )  # fmt: skip


def visit_of(scene: Scene) -> Task:
    return Task.objects.get(care_pathway=scene.pathway, code="visit")


def ownership_history(task: Task) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (e.action, e.to_status, e.detail)
        for e in TaskEvent.objects.filter(
            task=task, action__in=("claim", "release", "reassign")
        ).order_by("version")
    ]


def test_a_task_goes_back_to_its_owner_when_the_patient_consents_again(scene: Scene):
    assert visit_of(scene).owner == scene.nurse  # the only nurse: hers from the start
    sharing(scene.patient, True)
    sharing(scene.patient, False)
    released = visit_of(scene)
    events_before = OutboxEvent.objects.filter(type="task.changed").count()

    sharing(scene.patient, True)

    visit = visit_of(scene)
    assert released.owner is None
    assert (visit.owner, visit.status) == (scene.nurse, "ready")
    assert scene.nurse.user.has_perm("coordination.change_task", visit)
    nurse = scene.nurse.pk
    assert ownership_history(visit) == [
        ("release", "ready", {"reason": "owner lost access", "owner": nurse, "cause": "objection"}),
        ("reassign", "ready", {"reason": "owner regained access", "owner": nurse}),
    ]
    review = Task.objects.get(care_pathway=scene.pathway, code="review")
    assert review.owner == scene.gp  # and the GP's task to the GP
    assert OutboxEvent.objects.filter(type="task.changed").count() == events_before + 2


def test_a_task_in_progress_comes_back_ready_to_its_owner(scene: Scene):
    task_act(task_id=visit_of(scene).pk, user=scene.nurse.user, data=TaskActionInput("start"))
    sharing(scene.patient, True)
    sharing(scene.patient, False)

    sharing(scene.patient, True)

    visit = visit_of(scene)
    assert (visit.owner, visit.status) == (scene.nurse, "ready")


def test_a_member_removed_during_the_objection_gets_nothing_back(scene: Scene):
    sharing(scene.patient, True)
    sharing(scene.patient, False)
    member = CareTeamMember.objects.get(care_team__patient=scene.patient, practitioner=scene.nurse)
    care_team_member_remove(member_id=member.pk, actor=None)

    sharing(scene.patient, True)

    visit = visit_of(scene)
    assert (visit.owner, visit.offered_role) == (None, "nurse")
    assert [a for a, _, _ in ownership_history(visit)] == ["release"]


def test_a_member_who_left_and_came_back_gets_nothing_back(scene: Scene):
    member = CareTeamMember.objects.get(care_team__patient=scene.patient, practitioner=scene.nurse)
    care_team_member_remove(member_id=member.pk, actor=None)

    care_team_member_add(patient=scene.patient, role="nurse", practitioner=scene.nurse, actor=None)

    visit = visit_of(scene)
    assert visit.owner is None  # left the team: on offer, to be claimed again
    [(_, _, detail)] = ownership_history(visit)
    assert detail["cause"] == "left care team"


def test_a_task_released_by_its_owner_since_stays_on_offer(scene: Scene):
    sharing(scene.patient, True)
    sharing(scene.patient, False)
    sharing(scene.patient, True)
    task_act(task_id=visit_of(scene).pk, user=scene.nurse.user, data=TaskActionInput("release"))

    care_team_member_add(
        patient=scene.patient, role="nurse", practitioner=make_practitioner("nurse"), actor=None
    )  # another change of who sees the patient

    assert visit_of(scene).owner is None


def test_only_the_patients_own_tasks_come_back(scene: Scene):
    other = make_patient()
    care_team_member_add(patient=other, role="nurse", practitioner=scene.nurse, actor=None)
    sharing(scene.patient, True)
    sharing(scene.patient, False)

    sharing(other, True)  # the other patient's access changes: nothing of this one moves

    assert visit_of(scene).owner is None


def test_a_return_racing_the_owners_removal_never_leaves_the_task_with_a_non_member(
    postgres_transactional, monkeypatch
):
    # The renewal's transaction has given the task back and then waits; the owner's removal
    # comes in between. Both hold the care-team lock, so the removal waits for the renewal
    # to commit and then takes the task back off her: never a task owned by a non-member.
    definition_publish(source=CARE_TEST, actor=Actor(id="test"), fmt="yaml")
    patient = make_patient()
    gp, nurse = make_practitioner("gp"), make_practitioner("nurse")
    care_team_member_add(patient=patient, role="gp", practitioner=gp, actor=None)
    care_team_member_add(patient=patient, role="nurse", practitioner=nurse, actor=None)
    pathway = care_pathway_start(patient=patient, key="care-test", user=gp.user)
    visit = Task.objects.get(care_pathway=pathway, code="visit")
    sharing(patient, True)
    sharing(patient, False)
    member = CareTeamMember.objects.get(care_team__patient=patient, practitioner=nurse)
    returned, removal_done = threading.Event(), threading.Event()
    real = task_services.return_regained_tasks

    def slow(**kwargs):
        count = real(**kwargs)
        if threading.current_thread().name == "renewer":
            returned.set()
            removal_done.wait(3)  # the removal cannot finish before this commits
        return count

    monkeypatch.setattr(task_services, "return_regained_tasks", slow)
    errors: list[Exception] = []

    def renewer() -> None:
        try:
            sharing(patient, True)
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    def remover() -> None:
        try:
            returned.wait(5)
            care_team_member_remove(member_id=member.pk, actor=None)
        except Exception as exc:
            errors.append(exc)
        finally:
            removal_done.set()
            connections.close_all()

    threads = [threading.Thread(target=renewer, name="renewer"), threading.Thread(target=remover)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    visit.refresh_from_db()
    assert visit.owner is None
    assert not nurse.user.has_perm("coordination.change_task", visit)
    assert [(a, d.get("reason"), d.get("cause")) for a, _, d in ownership_history(visit)] == [
        ("release", "owner lost access", "objection"),
        ("reassign", "owner regained access", None),
        ("release", "owner lost access", "left care team"),
    ]
