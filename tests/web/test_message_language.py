"""The care-team pages show the services' refusals and a broken pathway's problems in the
user's language: French unless they chose English."""

from __future__ import annotations

import html

from django.contrib.auth.models import Permission
from django.test import Client

from coordination.models import Task
from tests.coordination.conftest import Scene, make_practitioner
from tests.web.test_library_pages import BROKEN


def logged_in(user, language: str | None = None) -> Client:
    client = Client()
    client.force_login(user)
    if language is not None:
        client.post("/i18n/setlang/", {"language": language, "next": "/worklist/"})
    return client


def text_of(response) -> str:
    return html.unescape(response.content.decode())


def test_working_on_someone_elses_task_is_refused_in_french_on_the_page(scene: Scene):
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")  # the nurse's

    response = logged_in(scene.gp.user).post(
        f"/tasks/{visit.pk}/act/", {"action": "start", "version": visit.version}, follow=True
    )

    assert response.status_code == 200
    assert (
        "Non effectué : seul le responsable de la tâche peut faire cela ; prenez-la d'abord"
        in text_of(response)
    )
    assert "claim it first" not in text_of(response)
    visit.refresh_from_db()
    assert (visit.status, visit.version) == ("ready", 1)


def test_the_same_refusal_in_english_for_a_user_who_chose_english(scene: Scene):
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")

    response = logged_in(scene.gp.user, "en").post(
        f"/tasks/{visit.pk}/act/", {"action": "start", "version": visit.version}, follow=True
    )

    assert "Not done: only the task's owner may do this; claim it first" in text_of(response)


def manager(db: None):
    user = make_practitioner("coordinator").user
    user.user_permissions.add(Permission.objects.get(codename="add_pathwaydefinition"))
    return user


def test_a_broken_pathway_upload_lists_its_problems_in_french(db: None):
    response = logged_in(manager(db)).post("/pathways/upload/", {"source": BROKEN})

    assert response.status_code == 400
    body = text_of(response)
    assert "état cible inconnu 'nowhere'" in body
    assert "unknown target state" not in body


def test_a_broken_pathway_upload_lists_its_problems_in_english_when_chosen(db: None):
    response = logged_in(manager(db), "en").post("/pathways/upload/", {"source": BROKEN})

    assert response.status_code == 400
    assert "unknown target state 'nowhere'" in text_of(response)
