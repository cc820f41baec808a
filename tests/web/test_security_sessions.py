"""A signed-in session ends after SESSION_IDLE_TIMEOUT without a request and after
SESSION_ABSOLUTE_TIMEOUT from login at the latest: pages then lead to the login page, the
session-authenticated API answers 401 and the live WebSocket closes. A new password ends the
other sessions' sockets too."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from directory.models import Practitioner
from directory.services.accounts import account_deactivate, account_password_set
from live.tokens import live_token_issue
from tests.api.test_security_accounts import PASSWORD, web_login
from tests.coordination.conftest import Scene, make_practitioner
from tests.coordination.test_live_consumer import connected, run, session_cookie, socket

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
LOGIN_PAGE = "/login/?next=/worklist/"


@pytest.fixture
def nurse(db) -> Practitioner:
    return make_practitioner("nurse", password=PASSWORD)


def at(minutes: float) -> time_machine.travel:
    return time_machine.travel(T0 + dt.timedelta(minutes=minutes), tick=False)


def signed_in(user) -> Client:
    with at(0):
        return web_login(user)


def test_a_session_idle_for_the_idle_timeout_leads_to_the_login_page(nurse):
    browser = signed_in(nurse.user)

    with at(29):
        still = browser.get("/worklist/")
    with at(29 + 31):
        page = browser.get("/worklist/")
        api = browser.get("/api/v1/tasks/")
        again = browser.get("/worklist/")

    assert still.status_code == 200
    assert (page.status_code, page["Location"]) == (302, LOGIN_PAGE)
    assert api.status_code == 401
    assert api["Content-Type"] == "application/problem+json"
    assert again.status_code == 302


def test_the_session_api_counts_as_activity(nurse):
    browser = signed_in(nurse.user)

    with at(25):
        api = browser.get("/api/v1/tasks/")
    with at(50):
        page = browser.get("/worklist/")

    assert (api.status_code, page.status_code) == (200, 200)


def test_an_active_session_ends_at_its_absolute_limit(nurse):
    browser = signed_in(nurse.user)
    statuses = []

    for minutes in range(20, 12 * 60, 20):
        with at(minutes):
            statuses.append(browser.get("/worklist/").status_code)
    with at(12 * 60):
        page = browser.get("/worklist/")

    assert set(statuses) == {200}
    assert (page.status_code, page["Location"]) == (302, LOGIN_PAGE)


def test_live_refreshes_do_not_keep_a_session_open(nurse):
    browser = signed_in(nurse.user)

    with at(20):
        refreshed = browser.get(
            "/worklist/", HTTP_PARCOURS_LIVE_REFRESH="1", HTTP_HX_REQUEST="true"
        )
    with at(31):
        page = browser.get("/worklist/")

    assert refreshed.status_code == 200
    assert page.status_code == 302


def test_the_limits_are_settings(nurse, settings):
    settings.SESSION_IDLE_TIMEOUT = dt.timedelta(minutes=5)
    settings.SESSION_ABSOLUTE_TIMEOUT = dt.timedelta(minutes=9)
    browser = signed_in(nurse.user)

    with at(4):
        first = browser.get("/worklist/")
    with at(8):
        second = browser.get("/worklist/")
    with at(9):
        third = browser.get("/worklist/")

    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 302)


def test_logging_in_again_starts_both_clocks_anew(nurse):
    browser = signed_in(nurse.user)
    with at(11 * 60 + 50):
        browser.get("/worklist/")

    with at(12 * 60 - 5):
        relogged = web_login(nurse.user)
    with at(12 * 60 + 10):
        page = relogged.get("/worklist/")

    assert page.status_code == 200


def test_the_session_s_own_expiry_is_its_deadline(nurse):
    """What the session store keeps (the row's expiry, the cookie's max-age) is the earlier
    of the two limits, so that every reader of the session refuses it at that time."""
    browser = signed_in(nurse.user)

    with at(0):
        cookie = browser.cookies["sessionid"]
        expires = browser.session.get_expiry_date()
    for minutes in range(20, 12 * 60 - 10, 20):
        with at(minutes):
            browser.get("/worklist/")
    with at(12 * 60 - 10):
        browser.get("/worklist/")  # 11 h 50 after login, active all along
        late_cookie = browser.cookies["sessionid"]
        late_expires = browser.session.get_expiry_date()

    assert int(cookie["max-age"]) == 30 * 60
    assert expires == T0 + dt.timedelta(minutes=30)
    assert int(late_cookie["max-age"]) == 10 * 60
    assert late_expires == T0 + dt.timedelta(hours=12)


# --- the live WebSocket -----------------------------------------------------------------


@pytest.fixture
def live(transactional_db, settings, care_test, scene: Scene) -> Scene:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.LIVE_HEARTBEAT_SECONDS = 30
    settings.LIVE_ACCESS_CACHE_SECONDS = 30
    settings.LIVE_SESSION_CHECK_SECONDS = 0.05
    return scene


def test_a_socket_closes_when_its_session_idles_out(live: Scene):
    cookie = session_cookie(live.nurse.user)

    async def body():
        nurse = socket(cookie)
        await connected(nurse)

        with time_machine.travel(timezone.now() + dt.timedelta(minutes=31)):
            closed = await nurse.receive_output(timeout=3)
        await nurse.disconnect()
        assert closed == {"type": "websocket.close", "code": 4401}

    run(body)


def test_a_new_password_closes_the_other_sessions_sockets(live: Scene):
    cookie = session_cookie(live.nurse.user)
    user = get_user_model().objects.get(pk=live.nurse.user.pk)

    async def body():
        nurse = socket(cookie)
        await connected(nurse)

        user.set_password("synthetic-Passw0rd-new")
        await database_sync_to_async(user.save)()
        closed = await nurse.receive_output(timeout=3)
        await nurse.disconnect()
        assert closed == {"type": "websocket.close", "code": 4401}

    run(body)


def test_a_new_password_closes_the_sockets_opened_with_a_live_token(live: Scene):
    user = get_user_model().objects.get(pk=live.nurse.user.pk)
    token = live_token_issue(user=user)

    async def body():
        nurse = socket(query=f"token={token}")
        await connected(nurse)

        await database_sync_to_async(account_password_set)(
            user_id=user.pk, password="synthetic-Passw0rd-new", actor=None
        )
        closed = await nurse.receive_output(timeout=3)
        await nurse.disconnect()
        assert closed == {"type": "websocket.close", "code": 4401}

    run(body)


def test_a_socket_of_a_deactivated_account_closes(live: Scene):
    cookie = session_cookie(live.nurse.user)

    async def body():
        nurse = socket(cookie)
        await connected(nurse)

        await database_sync_to_async(account_deactivate)(user_id=live.nurse.user.pk, actor=None)
        closed = await nurse.receive_output(timeout=3)
        await nurse.disconnect()
        assert closed == {"type": "websocket.close", "code": 4403}

    run(body)
