"""A task's page says which pathway step it belongs to, and once done whether the pathway
moved on and to which step. Logged in through the login form."""

from __future__ import annotations

from django.test import Client

from coordination.models import Task
from directory.models import Practitioner
from tests.coordination.conftest import Scene

PASSWORD = "synthetic-pass-step"


def login(practitioner: Practitioner) -> Client:
    user = practitioner.user
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    client = Client()
    response = client.post("/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    return client


def complete(client: Client, task: Task) -> str:
    task.refresh_from_db()
    response = client.post(
        f"/tasks/{task.pk}/act/", {"action": "complete", "version": task.version}, follow=True
    )
    assert response.status_code == 200
    return response.content.decode()


def test_an_open_task_names_its_step(scene: Scene):
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")

    page = login(scene.nurse).get(f"/tasks/{visit.pk}/").content.decode()

    assert "Étape du parcours" in page
    assert '<dd id="task-step" data-state="assessment">' in page
    assert 'class="step-outcome"' not in page


def test_a_task_done_before_the_others_of_its_step_says_the_pathway_stayed(scene: Scene):
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")

    page = complete(login(scene.nurse), visit)

    assert "Le parcours n’a pas avancé" in page
    assert "data-moved-to" not in page


def test_the_last_task_of_the_step_says_it_moved_the_pathway_and_where(scene: Scene):
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")
    review = Task.objects.get(care_pathway=scene.pathway, code="review")
    nurse = login(scene.nurse)
    complete(nurse, visit)

    last = complete(login(scene.gp), review)
    earlier = nurse.get(f"/tasks/{visit.pk}/").content.decode()

    assert 'data-moved-to="follow_up"' in last
    assert "Terminer cette tâche a fait passer le parcours à l’étape « follow_up »" in last
    assert 'data-moved-to="follow_up"' in earlier
    assert "Le parcours est depuis passé à l’étape « follow_up »" in earlier


def test_in_english_too(scene: Scene):
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")
    review = Task.objects.get(care_pathway=scene.pathway, code="review")
    complete(login(scene.nurse), visit)
    gp = login(scene.gp)
    gp.post("/i18n/setlang/", {"language": "en", "next": "/worklist/"})

    page = complete(gp, review)

    assert "Pathway step" in page
    assert "Completing this task moved the pathway on to the step “follow_up”." in page
