"""Break-the-glass from the pages: offered only to those who may, a missing patient answered
like a forbidden one, one banner, and under the read-only grant no action the services would
refuse. Logged in through the login form."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.db import transaction
from django.test import Client

from coordination import task_states
from coordination.models import Task
from coordination.services import TaskActionInput, task_act, task_actions_open
from core.errors import DomainError
from directory.models import Practitioner
from patients.services import patient_break_glass
from tests.coordination.conftest import Scene

PASSWORD = "synthetic-pass-glass"


def login(practitioner: Practitioner, *, break_glass: bool = False) -> Client:
    user = practitioner.user
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    if break_glass:
        user.user_permissions.add(Permission.objects.get(codename="break_glass_patient"))
    client = Client()
    response = client.post("/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    return client


def break_the_glass(client: Client, scene: Scene) -> None:
    response = client.post(
        f"/patients/{scene.patient.pk}/break-glass/", {"reason": "Found unconscious at home"}
    )
    assert response.status_code == 302


def test_the_form_is_offered_to_someone_who_may_break_the_glass(scene: Scene):
    client = login(scene.outsider, break_glass=True)

    response = client.get(f"/patients/{scene.patient.pk}/break-glass/")

    assert response.status_code == 200
    assert 'name="reason"' in response.content.decode()


def test_a_missing_patient_answers_like_a_forbidden_one(scene: Scene):
    allowed = login(scene.outsider, break_glass=True)
    not_allowed = login(scene.nurse)  # in the care team, without the permission
    missing = scene.patient.pk + 1000

    absent = allowed.get(f"/patients/{missing}/break-glass/")
    forbidden = not_allowed.get(f"/patients/{scene.patient.pk}/break-glass/")

    assert absent.status_code == forbidden.status_code == 404
    for page in (absent.content.decode(), forbidden.content.decode()):
        assert "Page introuvable" in page
        assert 'name="reason"' not in page


def test_after_breaking_the_glass_the_patient_page_has_one_banner_with_its_end(scene: Scene):
    client = login(scene.outsider, break_glass=True)

    break_the_glass(client, scene)
    page = client.get(f"/patients/{scene.patient.pk}/").content.decode()

    assert page.count('role="alert"') == 1
    assert page.count("Accès en urgence") == 1
    assert 'class="messages"' not in page
    assert "lecture seule" in page
    assert "data-break-glass-until=" in page


def test_under_the_grant_the_task_page_offers_no_action(scene: Scene):
    client = login(scene.outsider, break_glass=True)
    break_the_glass(client, scene)
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")

    page = client.get(f"/tasks/{visit.pk}/").content.decode()

    assert "Home visit" in page
    assert 'name="action"' not in page
    assert 'name="new_owner"' not in page
    assert task_actions_open(task=visit, user=scene.outsider.user) == frozenset()


def test_the_owner_is_offered_what_the_service_accepts(scene: Scene):
    client = login(scene.nurse)
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")

    page = client.get(f"/tasks/{visit.pk}/").content.decode()

    offered = {a for a in task_states.ACTIONS if f'name="action" value="{a}"' in page}
    assert offered == {"start", "hold", "complete", "release", "reassign"}


def accepted(task: Task, user, action: str, new_owner: Practitioner) -> bool:
    """Whether task_act accepts the action (undone at once)."""
    data = TaskActionInput(action=action, new_owner_id=new_owner.pk)
    try:
        with transaction.atomic():
            task_act(task_id=task.pk, user=user, data=data)
            transaction.set_rollback(True)
    except DomainError:
        return False
    return True


@pytest.mark.parametrize("who", ["nurse", "gp", "coordinator", "outsider"])
@pytest.mark.parametrize("status", ["ready", "in-progress", "on-hold", "unclaimed"])
def test_the_actions_offered_are_exactly_those_the_service_accepts(
    scene: Scene, who: str, status: str
):
    user = getattr(scene, who).user
    if who == "outsider":
        user.user_permissions.add(Permission.objects.get(codename="break_glass_patient"))
        patient_break_glass(
            user=user, patient_id=scene.patient.pk, reason="Emergency", entry_point="web"
        )
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")
    nurse = scene.nurse.user
    if status == "unclaimed":
        task_act(task_id=visit.pk, user=nurse, data=TaskActionInput(action="release"))
    elif status != "ready":
        task_act(task_id=visit.pk, user=nurse, data=TaskActionInput(action="start"))
        if status == "on-hold":
            task_act(task_id=visit.pk, user=nurse, data=TaskActionInput(action="hold"))
    visit.refresh_from_db()

    offered = task_actions_open(task=visit, user=user)

    expected = {a for a in task_states.ACTIONS if accepted(visit, user, a, scene.nurse)}
    assert offered == expected


def test_reassign_names_nobody_until_the_user_chooses(scene: Scene):
    client = login(scene.nurse)
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")

    page = client.get(f"/tasks/{visit.pk}/").content.decode()
    sent = client.post(
        f"/tasks/{visit.pk}/act/",
        {"action": "reassign", "version": visit.version, "new_owner": ""},
        follow=True,
    )

    select = page.split('<select id="new_owner"')[1].split("</select>")[0]
    assert select.startswith(' name="new_owner" required>')
    assert '<option value="" selected>Choisir une personne…</option>' in select
    assert select.count(" selected") == 1
    assert "Le formulaire était incomplet" in sent.content.decode()
    visit.refresh_from_db()
    assert visit.owner == scene.nurse
    assert visit.version == 1
