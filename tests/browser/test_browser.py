from __future__ import annotations

import time
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from coordination.models import Task
from coordination.services import TaskActionInput, task_act
from tests.browser.conftest import (
    PASSWORD,
    PHONE,
    LiveServer,
    axe_violations,
    log_in,
    screenshot,
)
from tests.coordination.conftest import Scene, make_patient, make_practitioner
from tests.web.test_library_pages import BROKEN


def with_password(user: Any) -> Any:
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    return user


def portal_account(patient: Any, username: str) -> Any:
    account = get_user_model().objects.create_user(username=username, password=PASSWORD)
    patient.user = account
    patient.save(update_fields=["user"])
    return account


def test_gp_sees_the_pathway_move_within_a_second_when_the_nurse_completes_the_last_task(
    scene: Scene, live_url: str, browser: Any
):
    for practitioner in (scene.gp, scene.nurse):
        with_password(practitioner.user)
    review = Task.objects.get(care_pathway=scene.pathway, code="review")
    task_act(task_id=review.pk, user=scene.gp.user, data=TaskActionInput(action="complete"))
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")
    gp = log_in(browser, live_url, scene.gp.user.username)
    gp.goto(f"{live_url}/patients/{scene.patient.pk}/")
    gp.wait_for_selector('#live-status[data-state="connected"]', timeout=10_000)
    gp.evaluate("window.loadedOnce = true")
    assert gp.get_attribute(".current-state", "data-state") == "assessment"
    nurse = log_in(browser, live_url, scene.nurse.user.username)
    nurse.goto(f"{live_url}/tasks/{visit.pk}/")

    nurse.fill("#note", "Visit done")
    with nurse.expect_navigation():
        nurse.click('button[name="action"][value="complete"]')
    completed = time.monotonic()
    gp.wait_for_selector('.current-state[data-state="follow_up"]', timeout=1_000)
    elapsed = time.monotonic() - completed

    assert elapsed <= 1.0
    assert gp.evaluate("window.loadedOnce") is True  # updated in place, not reloaded
    screenshot(gp, "patient-page-after-move")


def test_the_page_says_when_the_connection_is_lost_and_back_and_misses_nothing_meanwhile(
    scene: Scene, app_server: LiveServer, browser: Any
):
    with_password(scene.gp.user)
    review = Task.objects.get(care_pathway=scene.pathway, code="review")
    task_act(task_id=review.pk, user=scene.gp.user, data=TaskActionInput(action="complete"))
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")
    gp = log_in(browser, app_server.url, scene.gp.user.username)
    gp.goto(f"{app_server.url}/patients/{scene.patient.pk}/")
    gp.wait_for_selector('#live-status[data-state="connected"]', timeout=10_000)
    gp.evaluate("window.loadedOnce = true")

    # The server goes away: the page says so.
    app_server.stop()
    gp.wait_for_selector('#live-status[data-state="lost"]', timeout=10_000)
    assert gp.text_content("#live-status") == (
        "Connexion perdue : mises à jour suspendues, reconnexion…"
    )
    screenshot(gp, "patient-page-connection-lost")

    # The last task is completed while the page is cut off; its events wait in the outbox.
    task_act(task_id=visit.pk, user=scene.nurse.user, data=TaskActionInput(action="complete"))
    assert gp.get_attribute(".current-state", "data-state") == "assessment"

    # The server comes back: the page reconnects by itself, resumes from the last event it
    # saw and shows the move it missed, without reloading.
    app_server.start()
    gp.wait_for_selector('#live-status[data-state="back"]', timeout=15_000)
    assert gp.text_content("#live-status") == "Connexion rétablie : la page est à jour"
    gp.wait_for_selector('.current-state[data-state="follow_up"]', timeout=5_000)
    assert gp.evaluate("window.loadedOnce") is True


def test_patient_sees_only_their_own_pathway_and_another_patients_page_is_not_found(
    scene: Scene, live_url: str, browser: Any
):
    portal_account(scene.patient, "portal-browser")
    other = make_patient()

    page = log_in(browser, live_url, "portal-browser", viewport=PHONE)

    assert page.url == f"{live_url}/portal/"
    assert page.locator(".current-state").count() == 1
    assert other.family_name not in page.content()
    screenshot(page, "portal-phone")
    assert axe_violations(page) == []
    for url in (f"/patients/{other.pk}/", f"/patients/{scene.patient.pk}/", "/worklist/"):
        response = page.goto(live_url + url)
        assert response is not None
        assert response.status == 404


def test_main_care_team_pages_have_no_serious_accessibility_violations(
    scene: Scene, live_url: str, browser: Any
):
    with_password(scene.nurse.user)
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")
    page = log_in(browser, live_url, scene.nurse.user.username)
    pages = {
        "worklist": "/worklist/",
        "task": f"/tasks/{visit.pk}/",
        "patient": f"/patients/{scene.patient.pk}/",
        "alerts": "/alerts/",
        "library": "/pathways/",
    }

    found = {}
    for name, url in pages.items():
        page.goto(live_url + url)
        screenshot(page, name)
        found[name] = axe_violations(page)

    assert found == {name: [] for name in pages}


def test_login_page_has_no_serious_accessibility_violations(live_url: str, browser: Any):
    page = browser.new_page()
    page.goto(live_url + "/login/")

    screenshot(page, "login")

    assert axe_violations(page) == []


def test_uploading_a_broken_pathway_shows_its_problems_next_to_the_lines(
    live_url: str, browser: Any
):
    coordinator = make_practitioner("coordinator")
    with_password(coordinator.user)
    coordinator.user.user_permissions.add(Permission.objects.get(codename="add_pathwaydefinition"))
    page = log_in(browser, live_url, coordinator.user.username)
    page.goto(live_url + "/pathways/upload/")

    page.fill("#source", BROKEN)
    page.click("button[type=submit].primary")

    problem = page.locator('#line-9 .problem[data-line="9"]')
    assert problem.count() == 1
    assert "nowhere" in problem.inner_text()
    screenshot(page, "pathway-upload-problems")
    assert axe_violations(page) == []
