from __future__ import annotations

import re
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
from tests.coordination.conftest import CARE_TEST, Scene, make_patient, make_practitioner
from tests.web.test_library_pages import BROKEN
from workflows.actors import Actor
from workflows.services import definition_upload


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
        "triage": "/triage/",
        "library": "/pathways/",
        "not-found": f"/patients/{scene.patient.pk + 1000}/",
    }

    found = {}
    for name, url in pages.items():
        page.goto(live_url + url)
        page.wait_for_load_state("networkidle")
        screenshot(page, name)
        found[name] = axe_violations(page)

    assert found == {name: [] for name in pages}
    assert page.csp_violations == []


def test_the_api_docs_work_under_the_content_security_policy(
    scene: Scene, live_url: str, browser: Any
):
    with_password(scene.nurse.user)
    page = log_in(browser, live_url, scene.nurse.user.username)

    page.goto(live_url + "/api/docs/")

    page.wait_for_selector(".swagger-ui .opblock", timeout=15_000)
    assert page.locator(".swagger-ui .opblock").count() > 20
    assert page.csp_violations == []


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


def test_pages_of_one_session_loaded_at_the_same_time_all_answer(
    scene: Scene, app_server: LiveServer, browser: Any
):
    # As in several tabs at once: each loads its page, its assets and opens its WebSocket,
    # while the first tab fetches more pages. The server runs with DEBUG on, as `make run`
    # does; the fixture then checks it answered no 5xx and is still running.
    with_password(scene.gp.user)
    first = log_in(browser, app_server.url, scene.gp.user.username)
    tasks = list(Task.objects.filter(care_pathway=scene.pathway).values_list("pk", flat=True))
    urls = [
        "/worklist/", "/alerts/", "/triage/", "/pathways/", "/pathways/care-test/1/",
        f"/patients/{scene.patient.pk}/", *(f"/tasks/{pk}/" for pk in tasks),
    ]  # fmt: skip
    tabs = [first.context.new_page() for _ in urls]

    for tab, url in zip(tabs, urls, strict=True):
        tab.evaluate("url => { location.href = url; }", app_server.url + url)  # not awaited
    statuses = first.evaluate(
        "urls => Promise.all(urls.map(u => fetch(u).then(r => r.status)))", urls * 2
    )
    for tab in tabs:
        tab.wait_for_load_state("load")

    assert statuses == [200] * (2 * len(urls))
    assert [tab.url for tab in tabs] == [app_server.url + url for url in urls]
    for tab in tabs:
        tab.wait_for_selector('#live-status[data-state="connected"]', timeout=10_000)
    assert app_server.running()


def test_a_live_refresh_that_fails_is_tried_again_and_the_banner_says_the_page_is_stale(
    scene: Scene, app_server: LiveServer, browser: Any
):
    with_password(scene.gp.user)
    review = Task.objects.get(care_pathway=scene.pathway, code="review")
    gp = log_in(browser, app_server.url, scene.gp.user.username)
    gp.wait_for_selector('#live-status[data-state="connected"]', timeout=10_000)
    status = f'#list-mine tr[data-task="{review.pk}"] td.status'
    assert gp.text_content(status) == "à faire"
    failed: list[str] = []

    def fail_refreshes(route: Any) -> None:
        if route.request.headers.get("hx-request"):  # the region's re-fetch, not a page load
            failed.append(route.request.url)
            route.fulfill(status=500, body="failing on purpose")
        else:
            route.continue_()

    gp.route(re.compile(r".*/worklist/$"), fail_refreshes)

    # A change arrives live; the worklist's re-fetch fails: the page says it is not up to date.
    task_act(task_id=review.pk, user=scene.gp.user, data=TaskActionInput(action="start"))
    gp.wait_for_selector('#live-status[data-state="stale"]', timeout=10_000)
    assert gp.text_content("#live-status") == "La page n’a pas pu être mise à jour : nouvel essai…"
    screenshot(gp, "worklist-refresh-failing")
    gp.wait_for_timeout(3_500)  # retried after 1 s and 2 s, still failing: not "connected"
    assert len(failed) >= 2
    assert gp.get_attribute("#live-status", "data-state") == "stale"

    # The server answers again: the next try shows the change and the banner says connected.
    gp.unroute(re.compile(r".*/worklist/$"))
    gp.wait_for_function(
        "selector => document.querySelector(selector).textContent === 'en cours'",
        arg=status, timeout=10_000,
    )  # fmt: skip
    gp.wait_for_selector('#live-status[data-state="connected"]', timeout=5_000)
    assert gp.text_content("#live-status") == "Mises à jour en direct : connecté"


def test_publishing_a_draft_goes_through_a_confirmation_page(
    scene: Scene, live_url: str, browser: Any
):
    definition_upload(source=CARE_TEST.replace("version: 1", "version: 2"), actor=Actor(id="t"))
    coordinator = scene.coordinator
    with_password(coordinator.user)
    coordinator.user.user_permissions.add(Permission.objects.get(codename="add_pathwaydefinition"))
    page = log_in(browser, live_url, coordinator.user.username)
    page.goto(live_url + "/pathways/care-test/2/")

    page.click('a[href="/pathways/care-test/2/publish/"]')
    page.wait_for_load_state("networkidle")
    screenshot(page, "pathway-publish-confirm")
    violations = axe_violations(page)
    page.click('form[data-confirm="publish"] button[type=submit]')

    assert page.url == f"{live_url}/pathways/care-test/2/"
    assert violations == []
    assert page.locator("span.status.active").count() == 1
    assert page.locator('a[href="/pathways/care-test/2/retire/"]').count() == 1
