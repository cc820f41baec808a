"""The reads on every task action's path, written as SQL once per process: they answer what
the ORM queries they replace answered."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.models import Max
from django.test.utils import CaptureQueriesContext

from coordination.models import Task
from coordination.selectors import access_task_keys, step_task_statuses, task_locked
from core.errors import NotFound
from directory.selectors import practitioner_of
from patients.services import patient_portal_account_create
from tests.coordination.conftest import Scene, make_patient


def orm_statuses(pathway_id: int, state: str) -> set[str]:
    """What step_done_check asked before: the statuses at the highest revision."""
    tasks = Task.objects.filter(care_pathway_id=pathway_id, pathway_state=state)
    latest = tasks.aggregate(latest=Max("pathway_revision"))["latest"]
    return set(tasks.filter(pathway_revision=latest).values_list("status", flat=True))


def test_step_statuses_are_those_of_the_latest_entry_into_the_state(scene: Scene):
    tasks = list(Task.objects.filter(care_pathway=scene.pathway).order_by("code"))
    assert {t.pathway_state for t in tasks} == {"assessment"}
    assert step_task_statuses(pathway_id=scene.pathway.pk, state="assessment") == {"ready"}

    # An earlier entry into the state left a failed task: it is not the current step's.
    older = tasks[0]
    assert older.pathway_revision is not None
    Task.objects.filter(pk=older.pk).update(
        pathway_revision=older.pathway_revision - 1, status="failed"
    )
    Task.objects.filter(pk=tasks[1].pk).update(status="completed")
    statuses = step_task_statuses(pathway_id=scene.pathway.pk, state="assessment")
    assert statuses == {"completed"} == orm_statuses(scene.pathway.pk, "assessment")


def test_step_statuses_of_a_state_with_no_task_are_empty(scene: Scene):
    assert step_task_statuses(pathway_id=scene.pathway.pk, state="follow_up") == set()
    other = make_patient()
    assert step_task_statuses(pathway_id=other.pk + 10_000, state="assessment") == set()


def test_the_practitioner_read_is_the_orm_instance_and_skips_an_inactive_one(scene: Scene):
    found = practitioner_of(scene.nurse.user)
    assert found is not None
    expected = type(scene.nurse).objects.get(pk=scene.nurse.pk)
    fields = [f.attname for f in expected._meta.concrete_fields]
    assert [getattr(found, f) for f in fields] == [getattr(expected, f) for f in fields]
    assert found._state.adding is False
    assert found._state.db == "default"

    type(scene.outsider).objects.filter(pk=scene.outsider.pk).update(active=False)
    assert practitioner_of(scene.outsider.user) is None


def test_task_keys_carry_the_engine_instance_in_one_statement(scene: Scene):
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")
    with CaptureQueriesContext(connection) as queries:
        keys = access_task_keys(user=scene.nurse.user, task_id=visit.pk)
    assert (keys.patient_id, keys.care_pathway_id, keys.instance_id) == (
        scene.patient.pk, scene.pathway.pk, scene.pathway.instance_id,
    )  # fmt: skip
    assert keys.practitioner is not None
    assert keys.practitioner.pk == scene.nurse.pk
    assert len(queries) == 1  # the keys, the patient's visibility and the practitioner


def test_task_keys_of_a_task_out_of_reach_are_not_found(scene: Scene):
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")
    with pytest.raises(NotFound):
        access_task_keys(user=scene.outsider.user, task_id=visit.pk)
    with pytest.raises(NotFound):
        access_task_keys(user=scene.nurse.user, task_id=visit.pk + 999)
    with pytest.raises(NotFound):  # beyond a 64-bit key, as a URL may say
        access_task_keys(user=scene.nurse.user, task_id=2**70)


def test_task_keys_for_a_patient_are_those_of_their_own_tasks_only(scene: Scene):
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")
    review = Task.objects.get(care_pathway=scene.pathway, code="review")
    Task.objects.filter(pk=visit.pk).update(for_patient=True)
    patient_user = patient_portal_account_create(
        patient=scene.patient, email="portal@example.invalid", actor=None
    )

    keys = access_task_keys(user=patient_user, task_id=visit.pk)

    assert (keys.patient_id, keys.practitioner) == (scene.patient.pk, None)
    with pytest.raises(NotFound):  # their own record's task, but one for the professionals
        access_task_keys(user=patient_user, task_id=review.pk)


def test_the_locked_task_is_the_orm_row_and_a_missing_one_is_not_found(scene: Scene):
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")
    with transaction.atomic():
        locked = task_locked(task_id=visit.pk)
    fields = [f.attname for f in Task._meta.concrete_fields]
    assert [getattr(locked, f) for f in fields] == [getattr(visit, f) for f in fields]
    for missing in (visit.pk + 999, 2**70):
        with pytest.raises(NotFound), transaction.atomic():
            task_locked(task_id=missing)
