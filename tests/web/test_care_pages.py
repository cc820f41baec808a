from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone

from coordination import task_states
from coordination.models import Task, TaskEvent
from coordination.selectors import worklist_overdue
from coordination.services import TaskActionInput, task_act
from patients.models import AuditEvent
from tests.coordination.conftest import Scene, make_patient
from workflows.selectors import instance_diagram_svg


def pathway_diagram_for(scene: Scene, state: str) -> str:
    """The engine's own drawing of the scene's pathway, for comparison."""
    scene.pathway.refresh_from_db()
    instance = scene.pathway.instance
    assert instance is not None
    assert instance.state == state
    return instance_diagram_svg(instance, language="fr")


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def same_page(response: HttpResponse, patient_id: int) -> str:
    """The page without what differs between any two answers (the forms' CSRF tokens) and
    with the patient id of its address replaced."""
    page = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", response.content.decode())
    return page.replace(f"/patients/{patient_id}/", "/patients/ID/")


def open_task(scene: Scene, code: str) -> Task:
    return Task.objects.get(care_pathway=scene.pathway, code=code)


def test_anonymous_user_is_sent_to_the_login_page(db):
    response = Client().get("/worklist/")

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/worklist/"


def test_login_page_is_french_by_default(db):
    response = Client().get("/login/")

    assert response.status_code == 200
    assert '<html lang="fr">' in response.content.decode()
    assert "Connexion" in response.content.decode()


def test_login_page_in_english_when_chosen(db):
    client = Client()

    client.post("/i18n/setlang/", {"language": "en", "next": "/login/"})
    response = client.get("/login/")

    assert '<html lang="en">' in response.content.decode()
    assert "Log in" in response.content.decode()


def test_logging_in_sends_a_practitioner_to_the_worklist(scene: Scene):
    user = scene.nurse.user
    user.set_password("synthetic-pass-1")
    user.save()
    client = Client()

    response = client.post(
        "/login/", {"username": user.username, "password": "synthetic-pass-1"}, follow=True
    )

    assert response.redirect_chain[-1] == ("/worklist/", 302)
    assert response.status_code == 200


def test_worklist_shows_my_tasks_with_their_priority(scene: Scene):
    response = logged_in(scene.nurse.user).get("/worklist/")

    body = response.content.decode()
    visit = open_task(scene, "visit")
    assert response.status_code == 200
    assert f'href="/tasks/{visit.pk}/"' in body
    assert 'class="priority urgent"' in body
    review = open_task(scene, "review")
    assert f'href="/tasks/{review.pk}/"' not in body


def test_worklist_filter_by_priority_hides_other_priorities(scene: Scene):
    response = logged_in(scene.gp.user).get("/worklist/?priority=urgent")

    review = open_task(scene, "review")
    assert f'href="/tasks/{review.pk}/"' not in response.content.decode()


def test_worklist_read_is_audited_as_web(scene: Scene):
    client = logged_in(scene.nurse.user)  # a login, audited too
    before = AuditEvent.objects.count()

    client.get("/worklist/")

    event = AuditEvent.objects.latest("pk")
    assert AuditEvent.objects.count() == before + 1
    assert (event.entry_point, event.action, event.resource_type) == ("web", "search", "Task")


@pytest.mark.parametrize("who", ["anonymous", "outsider", "patient", "other_patient"])
def test_task_page_of_someone_who_may_not_see_it_is_not_found(scene: Scene, who: str):
    visit = open_task(scene, "visit")
    client = Client()
    if who == "outsider":
        client.force_login(scene.outsider.user)
    elif who in ("patient", "other_patient"):
        patient = scene.patient if who == "patient" else make_patient()
        account = get_user_model().objects.create_user(username=f"portal-{who}")
        patient.user = account
        patient.save(update_fields=["user"])
        client.force_login(account)

    response = client.get(f"/tasks/{visit.pk}/")

    assert response.status_code == (302 if who == "anonymous" else 404)


def test_task_page_shows_details_and_history(scene: Scene):
    visit = open_task(scene, "visit")

    response = logged_in(scene.nurse.user).get(f"/tasks/{visit.pk}/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "Home visit" in body
    assert 'name="action" value="complete"' in body
    assert body.count("<tr><td><time") == visit.events.count()


def test_task_history_names_actions_and_statuses_in_the_users_language(scene: Scene):
    visit = open_task(scene, "visit")
    client = logged_in(scene.nurse.user)
    client.post(f"/tasks/{visit.pk}/act/", {"action": "start", "version": visit.version})
    visit.refresh_from_db()
    assert visit.status == "in-progress"

    french = client.get(f"/tasks/{visit.pk}/").content.decode()
    client.post("/i18n/setlang/", {"language": "en", "next": "/worklist/"})
    english = client.get(f"/tasks/{visit.pk}/").content.decode()

    assert "<td>création</td>" in french
    assert "<td>démarrage</td><td>à faire → en cours</td>" in french
    assert "<td>creation</td>" in english
    assert "<td>start</td><td>ready → in progress</td>" in english
    # The stored codes themselves are not shown.
    assert "in-progress</td>" not in french + english


def test_patient_page_names_care_team_roles_in_words(scene: Scene):
    body = logged_in(scene.gp.user).get(f"/patients/{scene.patient.pk}/").content.decode()

    assert "— Médecin traitant</li>" in body
    assert "— Infirmier·ère</li>" in body
    assert "— gp</li>" not in body


def test_every_recorded_task_action_has_a_label():
    # People's actions, and what the system records: opening, escalating, reminding.
    assert set(TaskEvent.Action.values) == {"open", "escalate", "remind", *task_states.ACTIONS}


def test_completing_a_task_from_its_page_records_the_note(scene: Scene):
    visit = open_task(scene, "visit")

    response = logged_in(scene.nurse.user).post(
        f"/tasks/{visit.pk}/act/",
        {"action": "complete", "version": visit.version, "note": "Seen at home"},
        follow=True,
    )

    visit.refresh_from_db()
    assert response.status_code == 200
    assert (visit.status, visit.note) == ("completed", "Seen at home")
    assert visit.events.latest("version").actor == scene.nurse.user


def test_a_stale_form_becomes_a_message_and_changes_nothing(scene: Scene):
    visit = open_task(scene, "visit")
    stale = visit.version - 1 if visit.version > 1 else visit.version + 5

    response = logged_in(scene.nurse.user).post(
        f"/tasks/{visit.pk}/act/", {"action": "complete", "version": stale}, follow=True
    )

    visit.refresh_from_db()
    assert response.status_code == 200
    assert visit.status == "ready"
    assert 'class="error"' in response.content.decode()


def test_an_outsider_cannot_act_on_a_task(scene: Scene):
    visit = open_task(scene, "visit")

    response = logged_in(scene.outsider.user).post(
        f"/tasks/{visit.pk}/act/", {"action": "claim", "version": visit.version}
    )

    visit.refresh_from_db()
    assert response.status_code == 404
    assert visit.status == "ready"


def test_action_forms_need_the_csrf_token(scene: Scene):
    visit = open_task(scene, "visit")
    client = Client(enforce_csrf_checks=True)
    client.force_login(scene.nurse.user)

    response = client.post(f"/tasks/{visit.pk}/act/", {"action": "start", "version": 1})

    visit.refresh_from_db()
    assert response.status_code == 403
    assert visit.status == "ready"


def test_patient_page_shows_the_pathway_with_its_current_step(scene: Scene):
    response = logged_in(scene.gp.user).get(f"/patients/{scene.patient.pk}/")

    body = response.content.decode()
    assert response.status_code == 200
    assert 'data-state="assessment"' in body
    assert "<svg" in body
    assert scene.nurse.user.get_full_name() in body


def test_patient_page_read_is_audited(scene: Scene):
    logged_in(scene.gp.user).get(f"/patients/{scene.patient.pk}/")

    event = AuditEvent.objects.filter(resource_type="Patient").latest("pk")
    assert (event.entry_point, event.action, event.patient_id, event.outcome) == (
        "web",
        "read",
        scene.patient.pk,
        "success",
    )


def test_patient_page_of_an_unrelated_patient_is_not_found_and_audited_as_denied(scene: Scene):
    response = logged_in(scene.outsider.user).get(f"/patients/{scene.patient.pk}/")

    event = AuditEvent.objects.filter(resource_type="Patient").latest("pk")
    assert response.status_code == 404
    assert (event.outcome, event.actor_id) == ("denied", scene.outsider.user.pk)


def test_patient_account_cannot_open_the_care_team_page_of_its_own_record(scene: Scene):
    account = get_user_model().objects.create_user(username="portal-own")
    scene.patient.user = account
    scene.patient.save(update_fields=["user"])

    response = logged_in(account).get(f"/patients/{scene.patient.pk}/")

    assert response.status_code == 404


def test_alert_inbox_lists_nothing_for_an_outsider(scene: Scene):
    response = logged_in(scene.outsider.user).get("/alerts/")

    assert response.status_code == 200
    assert f"/patients/{scene.patient.pk}/" not in response.content.decode()


@pytest.mark.parametrize("method", ["get", "post"])
def test_break_glass_without_the_permission_answers_an_existing_patient_as_a_missing_one(
    scene: Scene, method: str
):
    # Answering "not allowed" for a patient that exists and 404 for one that does not would
    # tell anyone with an account which patient ids exist.
    client = logged_in(scene.outsider.user)
    send = getattr(client, method)
    missing = scene.patient.pk + 1000

    existing = send(f"/patients/{scene.patient.pk}/break-glass/", {"reason": "Emergency call"})
    absent = send(f"/patients/{missing}/break-glass/", {"reason": "Emergency call"})

    assert existing.status_code == absent.status_code == 404
    assert same_page(existing, scene.patient.pk) == same_page(absent, missing)
    assert not AuditEvent.objects.filter(action="break_glass", outcome="success").exists()
    # A refused attempt is in the trail, under the patient it targeted when it exists.
    refused = AuditEvent.objects.filter(action="break_glass").order_by("id")
    assert [(e.outcome, e.patient_id) for e in refused] == (
        [("denied", scene.patient.pk), ("not_found", None)] if method == "post" else []
    )


def test_worklist_is_in_french_by_default(scene: Scene):
    response = logged_in(scene.nurse.user).get("/worklist/")

    body = response.content.decode()
    assert "Mes tâches" in body
    assert "urgente" in body
    assert "My tasks" not in body


def test_worklist_in_english_when_the_user_chose_it(scene: Scene):
    client = logged_in(scene.nurse.user)

    client.post("/i18n/setlang/", {"language": "en", "next": "/worklist/"})
    response = client.get("/worklist/")

    assert "My tasks" in response.content.decode()


def test_due_dates_are_in_the_french_format(scene: Scene):
    visit = open_task(scene, "visit")

    response = logged_in(scene.nurse.user).get(f"/tasks/{visit.pk}/")

    assert visit.due_at is not None
    local = timezone.localtime(visit.due_at)
    assert local.strftime("%d/%m/%Y %H:%M") in response.content.decode()


def test_overdue_list_holds_my_past_due_tasks_like_the_overdue_selector(scene: Scene):
    visit = open_task(scene, "visit")
    assert visit.due_at is not None
    later = visit.due_at + dt.timedelta(hours=1)

    with time_machine.travel(later, tick=False):
        response = logged_in(scene.nurse.user).get("/worklist/")
        expected = list(worklist_overdue(scene.nurse.user))

    section = response.content.decode().split('id="list-overdue"')[1]
    assert expected == [visit]
    assert f'href="/tasks/{visit.pk}/"' in section
    assert section.count('<tr class="overdue"') == 1


def test_patient_page_diagram_highlights_the_step_the_pathway_moved_to(scene: Scene):
    client = logged_in(scene.gp.user)
    client.get(f"/patients/{scene.patient.pk}/")  # diagram of the first step now in memory
    for task in Task.objects.filter(care_pathway=scene.pathway):
        owner = scene.nurse if task.code == "visit" else scene.gp
        task_act(task_id=task.pk, user=owner.user, data=TaskActionInput(action="complete"))

    response = client.get(f"/patients/{scene.patient.pk}/")

    body = response.content.decode()
    assert 'data-state="follow_up"' in body
    assert body.count("<svg") == 1
    assert pathway_diagram_for(scene, "follow_up") in body


def test_breaking_the_glass_opens_the_record_read_only_for_a_while_audited_as_emergency(
    scene: Scene,
):
    outsider = scene.outsider.user
    outsider.user_permissions.add(Permission.objects.get(codename="break_glass_patient"))
    client = logged_in(get_user_model().objects.get(pk=outsider.pk))

    response = client.post(
        f"/patients/{scene.patient.pk}/break-glass/", {"reason": "Unconscious at the ED"}
    )
    page = client.get(f"/patients/{scene.patient.pk}/")
    with time_machine.travel(timezone.now() + dt.timedelta(hours=5)):
        # Signed in again: the first session has ended meanwhile (idle for over 30 minutes).
        later = logged_in(get_user_model().objects.get(pk=outsider.pk)).get(
            f"/patients/{scene.patient.pk}/"
        )

    assert response.status_code == 302
    assert response["Location"] == f"/patients/{scene.patient.pk}/"
    assert page.status_code == 200
    assert 'role="alert"' in page.content.decode()
    read = AuditEvent.objects.filter(
        actor=outsider, action="read", resource_type="Patient", outcome="success"
    ).get()
    assert (read.purpose, read.entry_point) == ("emergency", "web")
    assert AuditEvent.objects.get(action="break_glass").detail["reason"] == "Unconscious at the ED"
    assert later.status_code == 404
