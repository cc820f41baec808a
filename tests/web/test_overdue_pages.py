""" "Overdue" means one thing on every page: the overdue list, the labels of the other lists,
the task page and the API's overdue worklist (coordination's overdue_condition), escalation
tasks ("En retard : ...") included."""

from __future__ import annotations

import datetime as dt
import re

import time_machine
from django.test import Client

from coordination.models import Task
from coordination.selectors import worklist_overdue
from coordination.services.jobs import overdue_tasks_escalate
from directory.models import Practitioner
from tests.coordination.conftest import Scene

PASSWORD = "synthetic-pass-late"


def login(practitioner: Practitioner) -> Client:
    user = practitioner.user
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    client = Client()
    response = client.post("/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    return client


def section(page: str, name: str) -> str:
    return page.split(f'id="list-{name}"')[1].split("</section>", maxsplit=1)[0]


def labelled(html: str) -> set[int]:
    """Ids of the rows carrying the "overdue" label."""
    rows = re.findall(r'<tr class="overdue" data-task="(\d+)">', html)
    return {int(pk) for pk in rows}


def listed(html: str) -> set[int]:
    return {int(pk) for pk in re.findall(r'data-task="(\d+)"', html)}


def test_an_escalation_task_is_overdue_everywhere(scene: Scene):
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")
    assert visit.due_at is not None
    later = visit.due_at + dt.timedelta(hours=3)

    with time_machine.travel(later, tick=False):
        client = login(scene.coordinator)
        overdue_tasks_escalate(now=later, grace="PT1H")
        escalation = Task.objects.get(care_pathway=scene.pathway, code="escalation-visit")
        page = client.get("/worklist/").content.decode()
        task_page = client.get(f"/tasks/{escalation.pk}/").content.decode()
        api_view = {t.pk for t in worklist_overdue(scene.coordinator.user)}

    assert escalation.title["fr"].startswith("En retard : ")
    assert escalation.due_at is None
    overdue = section(page, "overdue")
    assert listed(overdue) == labelled(overdue) == {escalation.pk} == api_view
    others = section(page, "mine") + section(page, "unclaimed")
    assert labelled(others) == {escalation.pk}
    assert '<strong class="badge overdue">en retard</strong>' in task_page


def test_the_labels_and_the_overdue_list_agree_for_the_nurse(scene: Scene):
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")
    assert visit.due_at is not None
    later = visit.due_at + dt.timedelta(hours=3)

    with time_machine.travel(later, tick=False):
        client = login(scene.nurse)
        overdue_tasks_escalate(now=later, grace="PT1H")
        page = client.get("/worklist/").content.decode()
        expected = {t.pk for t in worklist_overdue(scene.nurse.user)}

    overdue = section(page, "overdue")
    others = section(page, "mine") + section(page, "unclaimed")
    assert expected == {visit.pk}
    assert listed(overdue) == labelled(overdue) == labelled(others) == expected


def test_a_task_due_later_is_not_overdue(scene: Scene):
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")

    page = login(scene.nurse).get("/worklist/").content.decode()

    assert listed(section(page, "overdue")) == set()
    assert visit.pk not in labelled(page)
