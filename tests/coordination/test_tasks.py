from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from coordination.models import Task, TaskEvent
from coordination.selectors import worklist_mine, worklist_overdue, worklist_unclaimed
from coordination.services import (
    TaskActionInput,
    care_pathway_cancel,
    care_pathway_fire,
    care_pathway_resume,
    care_pathway_start,
    care_pathway_suspend,
    task_act,
)
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound
from directory.services import care_team_member_add, service_team_create, service_team_member_add
from tests.coordination.conftest import Scene, make_patient, make_practitioner
from workflows.models import PathwayInstance


def task(scene: Scene, code: str) -> Task:
    return Task.objects.get(
        care_pathway=scene.pathway, code=code, status__in=["ready", "in-progress", "on-hold"]
    )


def act(scene_task: Task, user, action: str, **extra) -> Task:
    return task_act(task_id=scene_task.pk, user=user, data=TaskActionInput(action=action, **extra))


def test_starting_a_pathway_opens_its_tasks_for_the_roles_of_the_care_team(scene: Scene):
    tasks = Task.objects.filter(care_pathway=scene.pathway).order_by("code")

    assert [(t.code, t.offered_role, t.owner, t.status, t.priority) for t in tasks] == [
        ("review", "gp", scene.gp, "ready", "routine"),
        ("visit", "nurse", scene.nurse, "ready", "urgent"),
    ]
    visit = tasks.get(code="visit")
    assert visit.due_at == visit.created_at + dt.timedelta(hours=48)
    assert visit.pathway_state == "assessment"
    assert scene.nurse.user.has_perm("coordination.change_task", visit)
    assert not scene.gp.user.has_perm("coordination.change_task", visit)


def test_task_for_a_role_played_by_several_people_is_offered_unclaimed(care_test):
    patient = make_patient()
    gp, nurse_a, nurse_b = (make_practitioner(p) for p in ("gp", "nurse", "nurse"))
    care_team_member_add(patient=patient, role="gp", practitioner=gp, actor=None)
    care_team_member_add(patient=patient, role="nurse", practitioner=nurse_a, actor=None)
    care_team_member_add(patient=patient, role="nurse", practitioner=nurse_b, actor=None)

    pathway = care_pathway_start(patient=patient, key="care-test", user=gp.user)

    visit = Task.objects.get(care_pathway=pathway, code="visit")
    assert (visit.owner, visit.offered_role) == (None, "nurse")
    assert list(worklist_unclaimed(nurse_a.user)) == [visit]
    assert list(worklist_unclaimed(nurse_b.user)) == [visit]
    assert list(worklist_unclaimed(gp.user)) == []


def test_task_for_a_role_held_by_a_service_team_is_offered_to_the_team(care_test):
    patient = make_patient()
    gp, team_nurse = make_practitioner("gp"), make_practitioner("nurse")
    team = service_team_create(name="Home nursing", roles=["nurse"], actor=None)
    service_team_member_add(team=team, practitioner=team_nurse, actor=None)
    care_team_member_add(patient=patient, role="gp", practitioner=gp, actor=None)
    care_team_member_add(patient=patient, role="nurse", service_team=team, actor=None)

    pathway = care_pathway_start(patient=patient, key="care-test", user=gp.user)
    visit = Task.objects.get(care_pathway=pathway, code="visit")
    claimed = act(visit, team_nurse.user, "claim")

    assert (visit.offered_team, visit.owner) == (team, None)
    assert claimed.owner == team_nurse
    assert team_nurse.user.has_perm("coordination.change_task", claimed)


def test_completing_one_of_two_tasks_leaves_the_pathway_where_it_is(scene: Scene):
    act(task(scene, "visit"), scene.nurse.user, "complete", note="all fine")

    assert PathwayInstance.objects.get(care_pathway=scene.pathway).state == "assessment"


def test_completing_the_last_task_of_a_state_moves_the_pathway_on(scene: Scene):
    act(task(scene, "visit"), scene.nurse.user, "complete")

    act(task(scene, "review"), scene.gp.user, "complete")

    instance = PathwayInstance.objects.get(care_pathway=scene.pathway)
    assert instance.state == "follow_up"
    diary = Task.objects.get(care_pathway=scene.pathway, code="diary")
    assert (diary.for_patient, diary.status, diary.pathway_state) == (True, "ready", "follow_up")
    last = instance.history.order_by("revision").last()
    assert last is not None
    assert (last.event, last.actor) == ("tasks_completed", "system")


def test_completing_a_ready_task_records_start_and_completion(scene: Scene):
    done = act(task(scene, "visit"), scene.nurse.user, "complete", note="BP 130/80")

    events = list(
        TaskEvent.objects.filter(task=done).values_list(
            "version", "action", "from_status", "to_status"
        )
    )
    assert events == [
        (1, "open", "", "ready"),
        (2, "complete", "ready", "in-progress"),
        (3, "complete", "in-progress", "completed"),
    ]
    assert (done.status, done.version, done.note) == ("completed", 3, "BP 130/80")


def test_leaving_a_state_cancels_its_open_tasks(scene: Scene):
    care_pathway_fire(pathway=scene.pathway, event="stop", user=scene.gp.user)

    statuses = dict(Task.objects.filter(care_pathway=scene.pathway).values_list("code", "status"))
    assert statuses == {"visit": "cancelled", "review": "cancelled"}


def test_leaving_a_state_cancels_only_what_is_still_open_and_records_why(scene: Scene):
    act(task(scene, "visit"), scene.nurse.user, "complete")
    review = task(scene, "review")

    care_pathway_fire(pathway=scene.pathway, event="stop", user=scene.gp.user)

    statuses = dict(Task.objects.filter(care_pathway=scene.pathway).values_list("code", "status"))
    assert statuses == {"visit": "completed", "review": "cancelled"}
    cancelled = Task.objects.get(pk=review.pk)
    assert (cancelled.version, cancelled.ended_at is not None) == (review.version + 1, True)
    last = TaskEvent.objects.filter(task=review).order_by("version").last()
    assert last is not None
    assert (last.action, last.from_status, last.to_status, last.detail) == (
        "cancel", "ready", "cancelled", {"reason": "the pathway left this step"},
    )  # fmt: skip


def test_stale_version_is_a_conflict_and_changes_nothing(scene: Scene):
    visit = task(scene, "visit")
    act(visit, scene.nurse.user, "start")

    with pytest.raises(Conflict, match="version 2, not 1"):
        act(visit, scene.nurse.user, "hold", expected_version=1)

    assert Task.objects.get(pk=visit.pk).status == "in-progress"


@pytest.mark.parametrize(
    ("steps", "action", "message"),
    [
        ([], "resume", "cannot resume a task that is ready"),
        (["start", "hold"], "complete", "cannot complete a task that is on-hold"),
        (["complete"], "start", "the task is completed: no action applies any more"),
    ],
)
def test_actions_follow_the_fhir_transition_table(scene: Scene, steps, action, message):
    visit = task(scene, "visit")
    for step in steps:
        act(visit, scene.nurse.user, step)
    before = Task.objects.get(pk=visit.pk)

    with pytest.raises(Conflict, match=message):
        act(visit, scene.nurse.user, action)

    after = Task.objects.get(pk=visit.pk)
    assert (after.status, after.version) == (before.status, before.version)


def test_only_the_owner_may_work_on_a_claimed_task(scene: Scene):
    visit = task(scene, "visit")

    with pytest.raises(NotAllowed, match="only the task's owner"):
        act(visit, scene.gp.user, "start")

    assert Task.objects.get(pk=visit.pk).status == "ready"


def test_a_practitioner_outside_the_care_team_cannot_find_the_task(scene: Scene):
    with pytest.raises(NotFound, match=f"no task with id {task(scene, 'visit').pk}"):
        act(task(scene, "visit"), scene.outsider.user, "start")


def test_unknown_action_names_the_allowed_ones(scene: Scene):
    with pytest.raises(InvalidInput, match="unknown action 'finish'"):
        act(task(scene, "visit"), scene.nurse.user, "finish")


def test_reassign_needs_an_eligible_new_owner(scene: Scene):
    visit = task(scene, "visit")

    with pytest.raises(InvalidInput, match="new_owner"):
        act(visit, scene.coordinator.user, "reassign", new_owner_id=scene.outsider.pk)
    second_nurse = make_practitioner("nurse")
    care_team_member_add(patient=scene.patient, role="nurse", practitioner=second_nurse, actor=None)
    moved = act(visit, scene.coordinator.user, "reassign", new_owner_id=second_nurse.pk)

    assert moved.owner == second_nurse
    assert second_nurse.user.has_perm("coordination.change_task", moved)
    assert not scene.nurse.user.has_perm("coordination.change_task", moved)


def test_release_puts_the_task_back_on_offer(scene: Scene):
    visit = task(scene, "visit")
    act(visit, scene.nurse.user, "start")

    released = act(visit, scene.nurse.user, "release")

    assert (released.owner, released.status) == (None, "ready")
    assert list(worklist_unclaimed(scene.nurse.user)) == [released]


def test_worklists_order_by_priority_then_due_time(scene: Scene, care_test):
    other = make_patient()
    care_team_member_add(patient=other, role="gp", practitioner=scene.gp, actor=None)
    care_team_member_add(patient=other, role="nurse", practitioner=scene.nurse, actor=None)
    care_pathway_start(patient=other, key="care-test", user=scene.gp.user)

    nurse_list = [(t.code, t.priority) for t in worklist_mine(scene.nurse.user)]
    gp_list = [(t.code, t.patient_id) for t in worklist_mine(scene.gp.user)]

    assert nurse_list == [("visit", "urgent"), ("visit", "urgent")]
    assert gp_list == [("review", scene.patient.pk), ("review", other.pk)]


def test_overdue_worklist_lists_tasks_past_their_due_time(scene: Scene):
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)

    overdue = [t.code for t in worklist_overdue(scene.nurse.user, now=later)]

    assert overdue == ["visit"]
    assert list(worklist_overdue(scene.nurse.user)) == []


def test_worklist_query_count_does_not_grow_with_rows(scene: Scene, care_test):
    def read() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as queries:
            rows = [
                (t.code, t.patient.family_name, t.owner and t.owner.user.username)
                for t in worklist_mine(scene.nurse.user)
            ]
        return len(rows), len(queries)

    read()  # warm the caches Django keeps per process (content types)
    one = read()
    for _ in range(4):
        other = make_patient()
        care_team_member_add(patient=other, role="nurse", practitioner=scene.nurse, actor=None)
        care_team_member_add(patient=other, role="gp", practitioner=scene.gp, actor=None)
        care_pathway_start(patient=other, key="care-test", user=scene.gp.user)
    five = read()

    # The practitioner, the ids of the patients the user may see, then the worklist.
    assert (one, five) == ((1, 3), (5, 3))


def test_cancelling_the_last_open_task_moves_the_pathway_on(scene: Scene):
    act(task(scene, "visit"), scene.nurse.user, "complete")

    act(task(scene, "review"), scene.gp.user, "cancel", note="seen in hospital")

    assert PathwayInstance.objects.get(care_pathway=scene.pathway).state == "follow_up"


def test_a_failed_task_holds_the_step(scene: Scene):
    visit = task(scene, "visit")
    act(visit, scene.nurse.user, "start")
    act(visit, scene.nurse.user, "fail", note="nobody home")

    act(task(scene, "review"), scene.gp.user, "complete")

    assert PathwayInstance.objects.get(care_pathway=scene.pathway).state == "assessment"


def test_tasks_completed_while_suspended_move_the_pathway_on_resume(scene: Scene):
    care_pathway_suspend(pathway=scene.pathway, user=scene.gp.user, reason="hospitalised")
    act(task(scene, "visit"), scene.nurse.user, "complete")
    act(task(scene, "review"), scene.gp.user, "complete")
    while_suspended = PathwayInstance.objects.get(care_pathway=scene.pathway).state

    care_pathway_resume(pathway=scene.pathway, user=scene.gp.user)

    assert while_suspended == "assessment"
    assert PathwayInstance.objects.get(care_pathway=scene.pathway).state == "follow_up"


def test_a_patient_cannot_cancel_their_own_pathway(care_test):
    account = get_user_model().objects.create_user(username="portal")
    patient = make_patient(user=account)
    gp, nurse = make_practitioner("gp"), make_practitioner("nurse")
    care_team_member_add(patient=patient, role="gp", practitioner=gp, actor=None)
    care_team_member_add(patient=patient, role="nurse", practitioner=nurse, actor=None)
    pathway = care_pathway_start(patient=patient, key="care-test", user=gp.user)

    with pytest.raises(NotAllowed, match="only a professional"):
        care_pathway_cancel(pathway=pathway, user=account)

    assert PathwayInstance.objects.get(care_pathway=pathway).status == "active"
