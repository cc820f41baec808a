"""Live updates through real uvicorn processes sharing a private Redis, and real WebSocket
clients: cross-process delivery, and the faults of issue 4 (Redis down, a client away, a
membership revoked while connected)."""

from __future__ import annotations

import json
import secrets
import time
import urllib.request
from collections.abc import Callable

import pytest
from django.test import Client
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from coordination.models import Task
from coordination.services import TaskActionInput, task_act
from directory.models import CareTeamMember
from directory.services import care_team_member_remove
from live.models import OutboxEvent
from live.tokens import live_token_issue
from tests.coordination.conftest import Scene
from tests.integration.conftest import AsgiServer, RedisServer, wait_until
from tests.integration.live_client import LiveClient

pytestmark = pytest.mark.slow


@pytest.fixture
def live_scene(postgres_servers, care_test, scene: Scene) -> Scene:
    return scene


def login_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def client_for(server: AsgiServer, user) -> LiveClient:
    client = LiveClient(server.ws, login_cookie(user))
    client.start()
    assert client.welcomed.wait(timeout=30), "the client was never welcomed"
    return client


def task(scene: Scene, code: str) -> Task:
    return Task.objects.get(care_pathway=scene.pathway, code=code)


def toggle(scene: Scene, code: str, times: int) -> None:
    """`times` changes of one task of the scene: hold, resume, hold..., each an event."""
    visit = task(scene, code)
    owner = scene.nurse.user if code == "visit" else scene.gp.user
    task_act(task_id=visit.pk, user=owner, data=TaskActionInput(action="start"))
    for n in range(times - 1):
        action = "hold" if n % 2 == 0 else "resume"
        task_act(task_id=visit.pk, user=owner, data=TaskActionInput(action=action))


def patient_event_ids(scene: Scene, after: int) -> list[int | None]:
    return list(
        OutboxEvent.objects.filter(patient=scene.patient, position__gt=after)
        .order_by("position")
        .values_list("position", flat=True)
    )


def all_published() -> bool:
    return not OutboxEvent.objects.filter(published_at__isnull=True).exists()


def test_a_change_made_through_one_server_reaches_a_client_of_the_other(
    live_scene: Scene, asgi_servers: Callable[..., AsgiServer]
):
    writer = asgi_servers(relay=True)
    reader = asgi_servers(relay=False)
    nurse = client_for(reader, live_scene.nurse.user)
    visit = task(live_scene, "visit")
    csrf = secrets.token_hex(16)
    request = urllib.request.Request(
        f"{writer.http}/api/v1/tasks/{visit.pk}/start/",
        method="POST",
        data=b"{}",
        headers={
            "Cookie": f"{login_cookie(live_scene.nurse.user)}; csrftoken={csrf}",
            "X-CSRFToken": csrf,
            "Content-Type": "application/json",
            "Referer": writer.http + "/",
        },
    )

    with urllib.request.urlopen(request, timeout=30) as response:
        status = response.status
    wait_until(lambda: len(nurse.events) >= 1, 20, "the event on the other server")
    nurse.stop()

    assert status == 200
    assert [(e["event"], e["payload"]["task"], e["payload"]["status"]) for e in nurse.events] == [
        ("task.changed", visit.pk, "in-progress")
    ]


def test_redis_down_during_100_changes_loses_no_event(
    live_scene: Scene, redis_server: RedisServer, asgi_servers: Callable[..., AsgiServer]
):
    servers = [asgi_servers(relay=True), asgi_servers(relay=True)]
    clients = [client_for(server, live_scene.nurse.user) for server in servers]
    clients.append(client_for(servers[1], live_scene.gp.user))
    start = min(c.last_id or 0 for c in clients)

    redis_server.stop()
    toggle(live_scene, "visit", 100)
    redis_server.start()
    for client in clients:
        wait_until(lambda c=client: len(c.events) >= 100, 60, "every event after the restart")  # type: ignore[misc]
    wait_until(all_published, 30, "the relays to publish the backlog")
    time.sleep(0.5)  # anything more (a duplicate) would arrive now
    for client in clients:
        client.stop()
    expected = patient_event_ids(live_scene, start)

    # Every event exactly once, and in position order (docs/live-updates.md).
    assert len(expected) == 100
    for client in clients:
        assert client.ids() == expected


def test_a_redis_outage_closes_no_connection_and_logs_one_line_when_down_and_when_back(
    live_scene: Scene, redis_server: RedisServer, asgi_servers: Callable[..., AsgiServer]
):
    server = asgi_servers(relay=True)
    nurse = client_for(server, live_scene.nurse.user)
    start = nurse.last_id or 0

    redis_server.stop()
    toggle(live_scene, "visit", 10)
    # Redis stays down through several retries of the relay and of the process's listener;
    # meanwhile the events come from the outbox table.
    wait_until(lambda: len(nurse.events) >= 10, 30, "the events, read from the table")
    # A single-use token cannot be spent without Redis (the spent ones are kept there): the
    # server fails, and says so with the documented code.
    refused_with = token_connection_closes_with(server, live_scene.gp.user)
    time.sleep(3)
    redis_server.start()
    wait_until(all_published, 30, "the relay to publish again")
    toggle(live_scene, "review", 3)
    wait_until(lambda: len(nurse.events) >= 13, 30, "the events after Redis came back")
    accepted_with = token_connection_closes_with(server, live_scene.gp.user)
    time.sleep(0.5)
    nurse.stop()
    log = server.log.read_text()

    assert nurse.ids() == patient_event_ids(live_scene, start)
    assert (nurse.connections, nurse.closes) == (1, [])
    assert (refused_with, accepted_with) == (1011, None)
    assert "Traceback" not in log
    # "<date> <time> <level> <logger> <message>": the messages, each up to its first comma.
    messages = [line.split(" ", 4)[-1].split(",")[0] for line in log.splitlines()]
    assert sorted(m.split(" (")[0] for m in messages if " failed (" in m) == [
        "live updates: opening a connection failed",
        "live updates: the channel layer failed",
        "outbox relay: publishing failed",
    ]
    assert sorted(m for m in messages if "works again" in m) == [
        "live updates: opening a connection works again",
        "live updates: the channel layer works again",
        "outbox relay: publishing works again",
    ]


def token_connection_closes_with(server: AsgiServer, user) -> int | None:
    """Open a connection with a fresh single-use token: the code it was closed with, or None
    if it was welcomed."""
    token = live_token_issue(user=user)
    headers = {"Origin": "http://127.0.0.1"}
    with connect(f"{server.ws}?token={token}", additional_headers=headers) as ws:
        try:
            message = json.loads(ws.recv(timeout=10))
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else -1
    assert message["type"] == "welcome", message
    return None


def test_a_client_away_during_50_changes_gets_all_50_in_order_on_resume(
    live_scene: Scene, asgi_servers: Callable[..., AsgiServer]
):
    server = asgi_servers(relay=True)
    nurse = client_for(server, live_scene.nurse.user)
    left_at = nurse.last_id or 0

    nurse.paused.set()
    time.sleep(0.3)
    toggle(live_scene, "visit", 50)
    wait_until(all_published, 20, "the relay to publish the 50 changes")
    missed_while_away = list(nurse.ids())
    nurse.paused.clear()
    wait_until(lambda: len(nurse.events) >= 50, 30, "the resumed events")
    time.sleep(0.5)
    nurse.stop()

    assert missed_while_away == []
    assert nurse.ids() == patient_event_ids(live_scene, left_at)
    assert [e["payload"]["version"] for e in nurse.events] == list(range(2, 52))


def test_a_nurse_whose_membership_is_revoked_stops_receiving_within_5_seconds(
    live_scene: Scene, asgi_servers: Callable[..., AsgiServer]
):
    server = asgi_servers(relay=True)
    nurse = client_for(server, live_scene.nurse.user)
    gp = client_for(server, live_scene.gp.user)
    membership = CareTeamMember.objects.get(practitioner=live_scene.nurse, active=True)
    toggle(live_scene, "visit", 1)
    wait_until(lambda: len(nurse.events) == 1, 20, "the nurse's own change, before")

    care_team_member_remove(member_id=membership.pk, actor=None)
    wait_until(all_published, 20, "the relay to publish the revocation")
    received_at_revocation = len(nurse.events)
    # The patient's changes go on right after the revocation (well within 5 s): the GP
    # still receives them, the nurse must not.
    toggle(live_scene, "review", 3)
    wait_until(all_published, 20, "the relay to publish the later changes")
    wait_until(lambda: sum(e["event"] == "task.changed" for e in gp.events) >= 3, 20, "the GP")
    time.sleep(0.5)
    nurse.stop()
    gp.stop()

    after = nurse.events[received_at_revocation:]
    assert received_at_revocation == 1
    assert [e["event"] for e in after] == []
    assert [e["payload"]["action"] for e in gp.events if e["event"] == "task.changed"][-3:] == [
        "start",
        "hold",
        "resume",
    ]


def test_an_idle_connection_through_redis_stays_open(
    live_scene: Scene, asgi_servers: Callable[..., AsgiServer]
):
    # redis-py 8 times reads out after 5 s unless told otherwise; the channel layer's idle
    # blocking read must not, or every quiet socket is closed with 1011 every 5 s.
    server = asgi_servers(relay=True)
    nurse = client_for(server, live_scene.nurse.user)

    time.sleep(7)
    toggle(live_scene, "visit", 1)
    wait_until(lambda: len(nurse.events) == 1, 20, "the change after the idle time")
    nurse.stop()

    assert (nurse.connections, nurse.closes) == (1, [])
