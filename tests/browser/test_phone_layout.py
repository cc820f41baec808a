"""Phone-first: every main page at 390x844 (a phone) and 1366x900 (a laptop) scrolls no page
sideways; below 600 px the worklists and the alert inbox are stacked cards; axe-core finds no
serious violation on them at phone size; a nurse acknowledges an alert from her phone."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from coordination.models import AlertRecord, Task
from tests.browser.conftest import PASSWORD, axe_violations, log_in, screenshot
from tests.coordination.acknowledgement_scene import AckScene, build_ack_scene, reading

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 900}
SIZES = {"phone": PHONE, "laptop": LAPTOP}


@pytest.fixture
def acked(transactional_db: None) -> AckScene:
    scene = build_ack_scene()
    for practitioner in (scene.nurse, scene.other_nurse):
        practitioner.user.set_password(PASSWORD)
        practitioner.user.save(update_fields=["password"])
    account = get_user_model().objects.create_user(username="portal-phone", password=PASSWORD)
    scene.patient.user = account
    scene.patient.save(update_fields=["user"])
    return scene


def overflow(page: Any) -> dict[str, int]:
    return page.evaluate(
        "() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})"
    )


def display_of(page: Any, selector: str) -> str:
    return str(page.eval_on_selector(selector, "e => getComputedStyle(e).display"))


@pytest.mark.parametrize("size", list(SIZES))
def test_no_main_page_scrolls_sideways_and_lists_are_cards_on_a_phone(
    acked: AckScene, live_url: str, browser: Any, size: str
):
    task = Task.objects.get(care_pathway=acked.pathway, code="alert-low-spo2")
    pages = {
        "worklist": "/worklist/",
        "task": f"/tasks/{task.pk}/",
        "patient": f"/patients/{acked.patient.pk}/",
        "alerts": "/alerts/",
        "triage": "/triage/",
        "library": "/pathways/",
        "pathway": "/pathways/ack-test/1/",
    }
    nurse = log_in(browser, live_url, acked.nurse.user.username, viewport=SIZES[size])
    widths = {}
    for name, url in pages.items():
        nurse.goto(live_url + url)
        nurse.wait_for_load_state("networkidle")
        screenshot(nurse, f"{size}-{name}")
        widths[name] = overflow(nurse)
    portal = log_in(browser, live_url, "portal-phone", viewport=SIZES[size])
    assert portal.url == f"{live_url}/portal/"
    screenshot(portal, f"{size}-portal")
    widths["portal"] = overflow(portal)
    login = browser.new_context(viewport=SIZES[size]).new_page()
    login.goto(live_url + "/login/")
    widths["login"] = overflow(login)

    too_wide = {name: w for name, w in widths.items() if w["scroll"] > w["inner"]}
    assert too_wide == {}
    nurse.goto(live_url + "/worklist/")
    row = f'#list-unclaimed tr[data-task="{task.pk}"]'
    expected = "block" if size == "phone" else "table-row"
    assert display_of(nurse, row) == expected
    assert display_of(nurse, f"{row} td") == ("block" if size == "phone" else "table-cell")
    nurse.goto(live_url + "/alerts/")
    assert display_of(nurse, f'tr[data-alert="{acked.alert.pk}"]') == expected
    nurse.goto(live_url + "/triage/")
    assert display_of(nurse, f'tr[data-patient="{acked.patient.pk}"]') == expected
    if size == "phone":
        header = nurse.eval_on_selector("table.cards thead", "e => e.getBoundingClientRect().width")
        assert header <= 1  # the column names are read out, not shown: each cell has its label
        assert nurse.csp_violations == []


def test_the_phone_lists_have_no_serious_accessibility_violations(
    acked: AckScene, live_url: str, browser: Any
):
    nurse = log_in(browser, live_url, acked.nurse.user.username, viewport=PHONE)
    found = {}
    lists = {"worklist": "/worklist/", "alerts": "/alerts/", "triage": "/triage/"}
    for name, url in lists.items():
        nurse.goto(live_url + url)
        nurse.wait_for_load_state("networkidle")
        found[name] = axe_violations(nurse)

    assert found == {"worklist": [], "alerts": [], "triage": []}


def test_a_nurse_acknowledges_an_alert_from_her_phone_and_it_leaves_her_colleagues_inbox(
    acked: AckScene, live_url: str, browser: Any
):
    colleague = log_in(browser, live_url, acked.other_nurse.user.username, viewport=LAPTOP)
    colleague.goto(live_url + "/alerts/")
    colleague.wait_for_selector('#live-status[data-state="connected"]', timeout=10_000)
    card = f'tr[data-alert="{acked.alert.pk}"]'
    assert colleague.locator(card).count() == 1
    nurse = log_in(browser, live_url, acked.nurse.user.username, viewport=PHONE)
    nurse.goto(live_url + "/alerts/")
    assert "Saturation en oxygène basse" in nurse.inner_text(card)
    assert "88 %" in nurse.inner_text(f"{card} .measured")

    with nurse.expect_navigation():
        nurse.click(f"{card} button.acknowledge")

    assert nurse.locator(card).count() == 0
    assert "Alerte prise en compte" in nurse.inner_text(".messages")
    screenshot(nurse, "phone-alerts-acknowledged")
    colleague.wait_for_selector(card, state="detached", timeout=5_000)  # live, not reloaded
    alert = AlertRecord.objects.get(pk=acked.alert.pk)
    assert alert.acknowledged_by_id == acked.nurse.user.pk


def test_the_triage_board_shows_a_new_reading_live_without_reloading(
    acked: AckScene, live_url: str, browser: Any
):
    nurse = log_in(browser, live_url, acked.nurse.user.username, viewport=PHONE)
    nurse.goto(live_url + "/triage/")
    nurse.wait_for_selector('#live-status[data-state="connected"]', timeout=10_000)
    nurse.evaluate("window.loadedOnce = true")
    trend = f'tr[data-patient="{acked.patient.pk}"] .trend[data-code="59408-5"]'
    assert "88" in nurse.inner_text(f"{trend} .trend-value")

    reading(acked.patient, 84, timezone.now())

    nurse.wait_for_function(
        "selector => (document.querySelector(selector) || {}).textContent.includes('84')",
        arg=f"{trend} .trend-value",
        timeout=5_000,
    )
    assert nurse.evaluate("window.loadedOnce") is True  # updated in place
    assert nurse.locator(f"{trend} svg.sparkline polyline").count() == 1  # two readings: a line
    screenshot(nurse, "phone-triage-live")
