from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connections

import directory.services.care_teams as care_teams
from coordination.models import Task, TaskEvent
from coordination.selectors import visible_care_pathways, visible_tasks
from coordination.services import TaskActionInput, care_pathway_start, task_act
from core.errors import Conflict, InvalidInput, NotAllowed
from directory.identifiers import rpps_problem
from directory.models import CareTeamMember
from directory.services import (
    care_team_member_add,
    care_team_member_remove,
    consent_set,
    practitioner_create,
)
from patients.selectors import visible_patients
from tests.coordination.conftest import Scene, make_patient, make_practitioner


def test_care_team_members_see_the_patient_and_others_do_not(scene: Scene):
    assert list(visible_patients(scene.nurse.user)) == [scene.patient]
    assert list(visible_patients(scene.gp.user)) == [scene.patient]
    assert list(visible_patients(scene.outsider.user)) == []
    assert list(visible_tasks(scene.outsider.user)) == []
    assert list(visible_care_pathways(scene.outsider.user)) == []


def test_leaving_the_care_team_removes_access_at_once(scene: Scene):
    member = CareTeamMember.objects.get(care_team__patient=scene.patient, practitioner=scene.nurse)

    care_team_member_remove(member_id=member.pk, actor=None)

    assert list(visible_patients(scene.nurse.user)) == []
    assert list(visible_tasks(scene.nurse.user)) == []
    # Her open task goes back on offer to the nurses of the care team.
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")
    assert (visit.owner, visit.status, visit.offered_role) == (None, "ready", "nurse")
    assert not scene.nurse.user.has_perm("coordination.change_task", visit)


def test_objection_to_care_team_sharing_revokes_every_member_and_consent_restores_it(scene: Scene):
    consent_set(
        patient=scene.patient,
        scope="care_team_sharing",
        given=True,
        actor=None,
        entry_point="system",
    )

    consent_set(
        patient=scene.patient,
        scope="care_team_sharing",
        given=False,
        actor=None,
        entry_point="system",
    )
    withdrawn = (list(visible_patients(scene.gp.user)), list(visible_patients(scene.nurse.user)))
    consent_set(
        patient=scene.patient,
        scope="care_team_sharing",
        given=True,
        actor=None,
        entry_point="system",
    )

    assert withdrawn == ([], [])
    assert list(visible_patients(scene.gp.user)) == [scene.patient]


def test_a_patient_account_sees_its_own_pathway_and_only_the_tasks_meant_for_it(care_test):
    account = get_user_model().objects.create_user(username="patient-account")
    patient = make_patient(user=account)
    other = make_patient()
    gp, nurse = make_practitioner("gp"), make_practitioner("nurse")
    for who in (patient, other):
        care_team_member_add(patient=who, role="gp", practitioner=gp, actor=None)
        care_team_member_add(patient=who, role="nurse", practitioner=nurse, actor=None)
    mine = care_pathway_start(patient=patient, key="care-test", user=gp.user)
    care_pathway_start(patient=other, key="care-test", user=gp.user)
    for task in Task.objects.filter(care_pathway=mine):
        owner = gp if task.offered_role == "gp" else nurse
        task_act(task_id=task.pk, user=owner.user, data=TaskActionInput("complete"))

    assert list(visible_care_pathways(account)) == [mine]
    assert [t.code for t in visible_tasks(account)] == ["diary"]
    assert list(visible_patients(account)) == [patient]


def test_only_care_team_members_may_start_a_pathway(care_test):
    patient, outsider = make_patient(), make_practitioner("gp")

    with pytest.raises(NotAllowed, match="member of the patient's care team"):
        care_pathway_start(patient=patient, key="care-test", user=outsider.user)

    assert Task.objects.count() == 0


def test_adding_the_same_member_twice_is_a_conflict(scene: Scene):
    with pytest.raises(Conflict, match="already in the care team as nurse"):
        care_team_member_add(
            patient=scene.patient, role="nurse", practitioner=scene.nurse, actor=None
        )


@pytest.mark.parametrize(
    ("rpps", "problem"),
    [
        ("1234567890", "an RPPS number has 11 digits, got 10 characters"),
        ("1234567890A", "an RPPS number has digits only"),
        ("10000000001", "the check digit (Luhn) does not match: mistyped number?"),
    ],
)
def test_invalid_rpps_is_refused_naming_the_field(db, rpps, problem):
    with pytest.raises(InvalidInput) as refused:
        practitioner_create(
            username="x", given_name="A", family_name="B", profession="gp", rpps=rpps, actor=None
        )

    assert [(p.location, p.message) for p in refused.value.problems] == [("rpps", problem)]
    assert get_user_model().objects.filter(username="x").count() == 0


def test_valid_rpps_passes():
    assert rpps_problem("10000000009") is None


def test_two_simultaneous_completions_give_one_success_and_one_conflict(
    postgres_transactional, care_test
):
    patient = make_patient()
    gp, nurse = make_practitioner("gp"), make_practitioner("nurse")
    care_team_member_add(patient=patient, role="gp", practitioner=gp, actor=None)
    care_team_member_add(patient=patient, role="nurse", practitioner=nurse, actor=None)
    pathway = care_pathway_start(patient=patient, key="care-test", user=gp.user)
    visit = Task.objects.get(care_pathway=pathway, code="visit")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def complete() -> None:
        try:
            barrier.wait()
            task_act(
                task_id=visit.pk,
                user=nurse.user,
                data=TaskActionInput("complete", expected_version=1),
            )
            outcomes.append("ok")
        except Conflict:
            outcomes.append("conflict")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=complete) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["conflict", "ok"]
    assert TaskEvent.objects.filter(task=visit, to_status="completed").count() == 1


def test_an_objection_racing_a_new_member_is_never_lost(postgres_transactional, monkeypatch):
    # The member's transaction reads "sharing allowed" and then waits; the objection comes
    # in between. Without the care-team lock taken by both, the member's transaction would
    # re-grant everyone after the objection committed.
    patient = make_patient()
    gp, nurse = make_practitioner("gp"), make_practitioner("nurse")
    care_team_member_add(patient=patient, role="gp", practitioner=gp, actor=None)
    consent_set(
        patient=patient, scope="care_team_sharing", given=True, actor=None, entry_point="system"
    )
    read_done, objection_done = threading.Event(), threading.Event()
    real = care_teams.sharing_allowed

    def slow(p, *scope):
        value = real(p, *scope)
        if threading.current_thread().name == "adder" and not scope:  # the objection's read
            read_done.set()
            objection_done.wait(5)
        return value

    monkeypatch.setattr(care_teams, "sharing_allowed", slow)
    errors: list[Exception] = []

    def adder() -> None:
        try:
            care_team_member_add(patient=patient, role="nurse", practitioner=nurse, actor=None)
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    def objector() -> None:
        try:
            read_done.wait(5)
            consent_set(
                patient=patient,
                scope="care_team_sharing",
                given=False,
                actor=None,
                entry_point="system",
            )
        except Exception as exc:
            errors.append(exc)
        finally:
            objection_done.set()
            connections.close_all()

    threads = [threading.Thread(target=adder, name="adder"), threading.Thread(target=objector)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert list(visible_patients(gp.user)) == []
    assert list(visible_patients(nurse.user)) == []
