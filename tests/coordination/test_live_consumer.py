"""`/ws/updates/` through Channels' communicator, on the real ASGI application (origin check,
session middleware, routing), with the relay run by hand."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.db import OperationalError
from django.test import Client

from config.asgi import application
from coordination.models import Task
from coordination.services import TaskActionInput, task_act
from directory import selectors as directory_selectors
from directory.models import CareTeamMember
from directory.selectors import live_access_many
from directory.services import care_team_member_add, care_team_member_remove
from live import consumers, events
from live.models import OutboxEvent
from live.relay import channel_layer_publisher, relay_once
from patients.services import patient_access_revoke
from tests.coordination.conftest import Scene
from tests.coordination.websocket_communicator import WebsocketCommunicator

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


@pytest.fixture(autouse=True)
def live_settings(settings):
    # Each test process its own in-memory layer (a shared Redis would mix the groups of
    # parallel test databases, whose ids coincide); short intervals instead of sleeps.
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.LIVE_HEARTBEAT_SECONDS = 30
    settings.LIVE_SESSION_CHECK_SECONDS = 30
    settings.LIVE_ACCESS_CACHE_SECONDS = 30
    return settings


@pytest.fixture
def live_scene(transactional_db, care_test, scene: Scene) -> Scene:
    # The consumer reads the database from another thread: the scene must be committed.
    return scene


def run(test: Callable[[], Awaitable[None]]) -> None:
    async_to_sync(test)()


def session_cookie(user) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


def socket(*headers: tuple[bytes, bytes], query: str = "") -> WebsocketCommunicator:
    path = "/ws/updates/" + (f"?{query}" if query else "")
    return WebsocketCommunicator(application, path, headers=[ORIGIN, *headers])


async def relay() -> int:
    return await database_sync_to_async(relay_once)(channel_layer_publisher(), 500)


async def act(task: Task, user, action: str) -> Task:
    return await database_sync_to_async(task_act)(
        task_id=task.pk, user=user, data=TaskActionInput(action=action)
    )


async def connected(communicator: WebsocketCommunicator) -> dict[str, Any]:
    """Connect "from now": what is already committed is published first, as a running relay
    would have done."""
    await relay()
    ok, _ = await communicator.connect()
    assert ok
    welcome = await communicator.receive_json_from()
    assert welcome["type"] == "welcome"
    return welcome


def visit_of(scene: Scene) -> Task:
    return Task.objects.get(care_pathway=scene.pathway, code="visit")


def test_an_anonymous_connection_is_closed_as_unauthenticated(live_scene):
    async def body():
        communicator = socket()
        ok, _ = await communicator.connect()
        closed = await communicator.receive_output()
        await communicator.disconnect()
        assert ok
        assert closed == {"type": "websocket.close", "code": 4401}

    run(body)


def test_a_connection_from_a_foreign_origin_is_refused(live_scene: Scene):
    cookie = session_cookie(live_scene.nurse.user)

    async def body():
        communicator = WebsocketCommunicator(
            application, "/ws/updates/", headers=[(b"origin", b"https://evil.example"), cookie]
        )
        ok, _ = await communicator.connect()
        assert not ok

    run(body)


def test_a_care_team_member_receives_a_change_of_her_patient(live_scene: Scene):
    visit = visit_of(live_scene)

    cookie = session_cookie(live_scene.nurse.user)

    async def body():
        nurse = socket(cookie)
        await connected(nurse)

        await act(visit, live_scene.nurse.user, "start")
        await relay()
        message = await nurse.receive_json_from()
        await nurse.disconnect()

        latest = await database_sync_to_async(OutboxEvent.objects.latest)("id")
        assert message == {
            "type": "event",
            "id": latest.position,
            "event": events.TASK_CHANGED,
            "patient": live_scene.patient.pk,
            "occurred_at": latest.occurred_at.isoformat(),
            "payload": latest.payload,
        }
        assert message["payload"]["status"] == "in-progress"

    run(body)


def test_a_practitioner_outside_the_care_team_receives_nothing(live_scene: Scene):
    visit = visit_of(live_scene)

    cookie = session_cookie(live_scene.outsider.user)

    async def body():
        outsider = socket(cookie)
        await connected(outsider)

        await act(visit, live_scene.nurse.user, "start")
        await relay()

        assert await outsider.receive_nothing(timeout=0.3)
        await outsider.disconnect()

    run(body)


def test_a_patient_account_receives_its_pathway_and_its_own_tasks_only(live_scene: Scene):
    account = get_user_model().objects.create_user(username="synthetic-patient-account")
    live_scene.patient.user = account
    live_scene.patient.save(update_fields=["user"])
    visit = visit_of(live_scene)

    cookie = session_cookie(account)

    async def body():
        await relay()
        patient = socket(cookie, query="last_event_id=0")
        await patient.connect()
        received = []
        while not await patient.receive_nothing(timeout=0.3):
            received.append(await patient.receive_json_from())
        await act(visit, live_scene.nurse.user, "start")
        await relay()
        nothing_more = await patient.receive_nothing(timeout=0.3)
        await patient.disconnect()

        assert [m.get("event", m["type"]) for m in received] == [
            events.PATHWAY_STARTED,
            "welcome",
        ]
        assert nothing_more

    run(body)


def test_a_single_use_token_opens_one_connection(live_scene: Scene):
    client = Client()
    client.force_login(live_scene.nurse.user)
    issued = client.post("/api/v1/live/tokens/")
    token = issued.json()["token"]

    async def body():
        first = socket(query=f"token={token}")
        welcome = await connected(first)
        again = socket(query=f"token={token}")
        await again.connect()
        refused = await again.receive_output()
        await first.disconnect()
        await again.disconnect()
        assert welcome["type"] == "welcome"
        assert refused == {"type": "websocket.close", "code": 4401}

    run(body)
    assert issued.status_code == 201
    assert issued.json()["expires_in"] == 60


def test_an_anonymous_request_gets_no_token(live_scene):
    response = Client().post("/api/v1/live/tokens/")

    assert response.status_code in (401, 403)
    assert "token" not in response.json()


def test_a_tampered_token_is_refused(live_scene: Scene):
    client = Client()
    client.force_login(live_scene.nurse.user)
    token = client.post("/api/v1/live/tokens/").json()["token"]

    async def body():
        communicator = socket(query=f"token={token[:-2]}xx")
        await communicator.connect()
        closed = await communicator.receive_output()
        await communicator.disconnect()
        assert closed == {"type": "websocket.close", "code": 4401}

    run(body)


def test_resuming_sends_every_missed_visible_event_in_order_once(live_scene: Scene):
    visit = visit_of(live_scene)
    cookie = session_cookie(live_scene.nurse.user)

    async def body():
        await relay()
        first = socket(cookie)
        seen = (await connected(first))["id"]
        await first.disconnect()
        for action in ("start", "hold", "resume", "complete"):
            await act(visit, live_scene.nurse.user, action)
        await relay()

        again = socket(cookie, query=f"last_event_id={seen}")
        await again.connect()
        received = []
        while not await again.receive_nothing(timeout=0.3):
            received.append(await again.receive_json_from())
        await again.disconnect()

        expected = await database_sync_to_async(
            lambda: list(
                OutboxEvent.objects.filter(position__gt=seen)
                .order_by("position")
                .values_list("position", "payload__action")
            )
        )()
        assert [(m["id"], m["payload"]["action"]) for m in received[:-1]] == expected
        assert [a for _, a in expected] == ["start", "hold", "resume", "complete"]
        assert received[-1] == {"type": "welcome", "id": expected[-1][0]}

    run(body)


def test_an_event_both_resumed_and_published_live_is_sent_once(live_scene: Scene):
    visit = visit_of(live_scene)
    cookie = session_cookie(live_scene.nurse.user)

    async def body():
        await act(visit, live_scene.nurse.user, "start")
        # Sequenced (so resumable) but published only after the client resumed.
        await database_sync_to_async(relay_once)(lambda batch: None, 500)
        await database_sync_to_async(OutboxEvent.objects.update)(published_at=None)
        nurse = socket(cookie, query="last_event_id=0")
        await nurse.connect()
        received = []
        while not await nurse.receive_nothing(timeout=0.3):
            received.append(await nurse.receive_json_from())
        await relay()
        after_live = await nurse.receive_nothing(timeout=0.3)
        await nurse.disconnect()

        ids = [m["id"] for m in received if m["type"] == "event"]
        assert (
            len(ids) == len(set(ids)) == await database_sync_to_async(OutboxEvent.objects.count)()
        )
        assert after_live

    run(body)


def test_an_event_the_channel_layer_lost_is_sent_from_the_outbox(live_scene: Scene, settings):
    settings.LIVE_SESSION_CHECK_SECONDS = 0.05
    settings.LIVE_CATCHUP_GRACE_SECONDS = 0
    visit = visit_of(live_scene)
    cookie = session_cookie(live_scene.nurse.user)

    async def body():
        nurse = socket(cookie)
        await connected(nurse)

        await act(visit, live_scene.nurse.user, "start")
        await database_sync_to_async(relay_once)(lambda batch: None, 500)  # lost on the way
        message = await nurse.receive_json_from(timeout=3)
        again = await nurse.receive_nothing(timeout=0.3)
        await nurse.disconnect()

        assert (message["event"], message["payload"]["task"]) == (events.TASK_CHANGED, visit.pk)
        assert again

    run(body)


def test_a_nurse_removed_from_the_care_team_stops_receiving_its_events(live_scene: Scene):
    visit = visit_of(live_scene)
    review = Task.objects.get(care_pathway=live_scene.pathway, code="review")
    membership = CareTeamMember.objects.get(practitioner=live_scene.nurse, active=True)

    cookie = session_cookie(live_scene.nurse.user)

    async def body():
        nurse = socket(cookie)
        await connected(nurse)
        await act(visit, live_scene.nurse.user, "start")
        await relay()
        before = await nurse.receive_json_from()

        await database_sync_to_async(care_team_member_remove)(member_id=membership.pk, actor=None)
        await act(review, live_scene.gp.user, "start")
        await relay()
        after = await nurse.receive_nothing(timeout=0.3)
        await nurse.disconnect()

        assert before["payload"]["task"] == visit.pk
        assert after

    run(body)


def test_lost_access_is_noticed_when_the_cached_permissions_expire(live_scene: Scene, settings):
    # Access lost without any event going by (a grant revoked directly): the cache expiry
    # alone must stop the events.
    settings.LIVE_ACCESS_CACHE_SECONDS = 0
    review = Task.objects.get(care_pathway=live_scene.pathway, code="review")

    cookie = session_cookie(live_scene.nurse.user)

    async def body():
        nurse = socket(cookie)
        await connected(nurse)

        await database_sync_to_async(patient_access_revoke)(
            patient=live_scene.patient,
            perms=("view_patient", "change_patient"),
            actor=None,
            user=live_scene.nurse.user,
        )
        await act(review, live_scene.gp.user, "start")
        await relay()
        nothing = await nurse.receive_nothing(timeout=0.3)
        await nurse.disconnect()
        assert nothing

    run(body)


def test_logging_out_closes_the_session_s_sockets(live_scene: Scene, settings):
    settings.LIVE_SESSION_CHECK_SECONDS = 0.05
    client = Client()
    client.force_login(live_scene.nurse.user)
    cookie = (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())

    async def body():
        nurse = socket(cookie)
        await connected(nurse)

        await database_sync_to_async(client.logout)()
        closed = await nurse.receive_output(timeout=3)
        await nurse.disconnect()
        assert closed == {"type": "websocket.close", "code": 4401}

    run(body)


def test_deactivating_a_user_closes_her_sockets(live_scene: Scene, settings):
    settings.LIVE_SESSION_CHECK_SECONDS = 0.05
    cookie = session_cookie(live_scene.nurse.user)

    async def body():
        nurse = socket(cookie)
        await connected(nurse)

        await database_sync_to_async(
            get_user_model().objects.filter(pk=live_scene.nurse.user.pk).update
        )(is_active=False)
        closed = await nurse.receive_output(timeout=3)
        await nurse.disconnect()
        assert closed == {"type": "websocket.close", "code": 4403}

    run(body)


def test_an_idle_connection_gets_heartbeats(live_scene: Scene, settings):
    settings.LIVE_HEARTBEAT_SECONDS = 0.05

    cookie = session_cookie(live_scene.nurse.user)

    async def body():
        nurse = socket(cookie)
        welcome = await connected(nurse)

        beat = await nurse.receive_json_from(timeout=3)
        await nurse.disconnect()
        assert beat == {"type": "heartbeat", "id": welcome["id"]}

    run(body)


def test_a_bad_resume_position_is_refused(live_scene: Scene):
    cookie = session_cookie(live_scene.nurse.user)

    async def body():
        nurse = socket(cookie, query="last_event_id=-3")
        await nurse.connect()
        closed = await nurse.receive_output()
        await nurse.disconnect()
        assert closed == {"type": "websocket.close", "code": 4400}

    run(body)


def test_an_access_changing_event_costs_one_access_read_for_all_its_receivers(
    live_scene: Scene, monkeypatch
):
    reads: list[set[int]] = []

    def counted(*, user_ids):
        reads.append(set(user_ids))
        return live_access_many(user_ids=user_ids)

    # The consumer reads access through settings.LIVE_ACCESS_READER, this function's path.
    monkeypatch.setattr(directory_selectors, "live_access_many", counted)
    users = [live_scene.gp.user, live_scene.nurse.user, live_scene.outsider.user]
    cookies = [session_cookie(user) for user in users]

    async def body():
        sockets = [socket(cookie) for cookie in cookies]
        for s in sockets:
            await connected(s)
        reads.clear()
        await database_sync_to_async(care_team_member_add)(
            patient=live_scene.patient, role="nurse", practitioner=live_scene.outsider, actor=None
        )
        await relay()
        received = [await s.receive_json_from(timeout=3) for s in sockets]
        for s in sockets:
            await s.disconnect()

        assert [m["event"] for m in received] == [events.CARE_TEAM_CHANGED] * 3
        assert reads == [{user.pk for user in users}]

    run(body)


def test_a_batch_that_arrives_late_is_sent_in_position_order_once(live_scene: Scene):
    # A relay's message overtaken by the next one (lost, or from a machine whose clock is
    # behind): the connection must not send the later event first, or a client resuming
    # from it would never get the earlier one.
    visit = visit_of(live_scene)
    cookie = session_cookie(live_scene.nurse.user)
    held: list[Any] = []

    async def body():
        nurse = socket(cookie)
        await connected(nurse)

        await act(visit, live_scene.nurse.user, "start")
        await database_sync_to_async(relay_once)(lambda batch: held.append(list(batch)), 500)
        await act(visit, live_scene.nurse.user, "hold")
        await relay()
        received = [await nurse.receive_json_from(timeout=3) for _ in range(2)]
        await database_sync_to_async(channel_layer_publisher())(held[0])  # the late copy
        nothing_more = await nurse.receive_nothing(timeout=0.3)
        await nurse.disconnect()

        expected = await database_sync_to_async(
            lambda: list(
                OutboxEvent.objects.filter(type=events.TASK_CHANGED)
                .order_by("position")
                .values_list("position", "payload__action")
            )
        )()
        assert [(m["id"], m["payload"]["action"]) for m in received] == expected
        assert [a for _, a in expected] == ["start", "hold"]
        assert nothing_more

    run(body)


def test_a_connection_too_far_behind_reads_what_it_missed_from_the_table(
    live_scene: Scene, monkeypatch
):
    monkeypatch.setattr(consumers, "MAX_PENDING", 1)
    visit = visit_of(live_scene)
    cookie = session_cookie(live_scene.nurse.user)

    async def body():
        nurse = socket(cookie)
        await connected(nurse)

        for action in ("start", "hold", "resume", "complete"):
            await act(visit, live_scene.nurse.user, action)
        await relay()  # one batch of four: more than the connection may hold
        received = []
        while not await nurse.receive_nothing(timeout=0.3):
            received.append(await nurse.receive_json_from())
        await nurse.disconnect()

        changed = [m for m in received if m.get("event") == events.TASK_CHANGED]
        assert [m["payload"]["action"] for m in changed] == ["start", "hold", "resume", "complete"]
        ids = [m["id"] for m in received]
        assert ids == sorted(set(ids))

    run(body)


def test_a_server_failure_closes_with_the_documented_code(live_scene: Scene, monkeypatch):
    def database_down() -> int:
        raise OperationalError("the database is down")

    monkeypatch.setattr(consumers, "outbox_last_position", database_down)
    cookie = session_cookie(live_scene.nurse.user)

    async def body():
        nurse = socket(cookie)
        ok, _ = await nurse.connect()
        closed = await nurse.receive_output()
        await nurse.disconnect()
        assert ok
        assert closed == {"type": "websocket.close", "code": 1011}

    run(body)


def test_the_close_codes_documented_are_the_ones_sent():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "live-updates.md").read_text()
    section = doc.split("### Close codes", 1)[1].split("\n#", 1)[0]
    documented = {int(line.split("|")[1]) for line in section.splitlines() if line[:3] == "| 4"}
    documented |= {int(line.split("|")[1]) for line in section.splitlines() if line[:3] == "| 1"}

    sent = {
        value
        for name, value in vars(consumers).items()
        if name.startswith("CLOSE_") and isinstance(value, int)
    }
    assert documented == sent
