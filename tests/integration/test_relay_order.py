"""Two web processes, each with its embedded relay (the production default), one of them
stalled in the middle of publishing a backlog: every client, connected to either process,
flapping, or away and resuming, gets every event once and in position order."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from django.db import connection, transaction

from coordination.models import Task
from live import events
from live.models import OutboxEvent
from live.relay import LEADER_LOCK_KEY
from live.services.outbox import event_record
from tests.coordination.conftest import Scene
from tests.integration.conftest import AsgiServer, PausableProxy, RedisServer, wait_until
from tests.integration.live_client import LiveClient
from tests.integration.test_live_servers import all_published, login_cookie

pytestmark = pytest.mark.slow

BACKLOG = 600  # three passes of the relay's 200


@pytest.fixture
def proxy(redis_server: RedisServer) -> Iterator[PausableProxy]:
    proxy = PausableProxy(redis_server.port)
    yield proxy
    proxy.stop()


def leaders() -> int:
    key = LEADER_LOCK_KEY
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = %s AND objid = %s AND objsubid = 1 AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())",
            [key >> 32, key & 0xFFFFFFFF],
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def backlog(scene: Scene) -> None:
    """BACKLOG changes of the patient committed at once, as a burst of work would."""
    visit = Task.objects.get(care_pathway=scene.pathway, code="visit")
    with transaction.atomic():
        for n in range(BACKLOG):
            event_record(
                type=events.TASK_CHANGED,
                patient=scene.patient,
                payload={"task": visit.pk, "version": n + 2, "action": "hold", "status": "on-hold"},
            )


def client(server: AsgiServer, user, **options) -> LiveClient:
    live = LiveClient(server.ws, login_cookie(user), **options)
    live.start()
    assert live.welcomed.wait(timeout=30), "the client was never welcomed"
    return live


@pytest.mark.parametrize(
    "stall_limit",
    [
        pytest.param(10.0, id="the-stalled-relay-finishes"),
        pytest.param(1.0, id="the-stalled-relay-is-ended-and-taken-over"),
    ],
)
def test_two_relays_a_stall_and_a_backlog_deliver_every_event_once_in_order(
    postgres_servers,
    care_test,
    scene: Scene,
    proxy: PausableProxy,
    asgi_servers: Callable[..., AsgiServer],
    stall_limit: float,
):
    env = {
        "LIVE_RELAY_LISTEN_FALLBACK_SECONDS": "0.3",
        "LIVE_RELAY_STALL_SECONDS": str(stall_limit),
        "LIVE_CATCHUP_GRACE_SECONDS": "30",  # the channel layer must do it, not the table
    }
    # The first relay leads; its way to Redis goes through the proxy, which stalls it.
    stalled = asgi_servers(relay=True, redis_url=proxy.url, env=env)
    wait_until(lambda: leaders() == 1, 30, "the first relay to lead")
    standby = asgi_servers(relay=True, env=env)
    clients = {
        "nurse on the standby's process": client(standby, scene.nurse.user),
        "GP on the standby's process": client(standby, scene.gp.user),
        "nurse on the stalled relay's process": client(stalled, scene.nurse.user),
        "flapping nurse": client(standby, scene.nurse.user, reconnect_every=0.2),
        "nurse away during the stall": client(standby, scene.nurse.user),
    }
    away = clients["nurse away during the stall"]
    start = min(c.last_id or 0 for c in clients.values())

    away.paused.set()
    proxy.paused.set()
    backlog(scene)
    time.sleep(3.0)  # the standby looks ten times meanwhile; the leader stays stalled
    proxy.paused.clear()
    wait_until(all_published, 60, "the relays to publish the backlog")
    away.paused.clear()
    for name, live in clients.items():
        wait_until(lambda c=live: len(c.events) >= BACKLOG, 60, f"every event for {name}")  # type: ignore[misc]
    time.sleep(1.0)  # anything more (a duplicate, a late copy) would arrive now
    for live in clients.values():
        live.stop()
    expected = list(
        OutboxEvent.objects.filter(position__gt=start)
        .order_by("position")
        .values_list("position", flat=True)
    )

    assert len(expected) == BACKLOG
    for name, live in clients.items():
        assert live.ids() == expected, name
