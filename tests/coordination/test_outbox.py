"""The event outbox: every change writes its event in its own transaction; the relay gives
committed events gap-free positions in commit order and publishes each at least once."""

from __future__ import annotations

import asyncio
import datetime as dt
import textwrap
import threading
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections, transaction
from django.utils import timezone

import live.relay
from coordination.models import Task
from coordination.services import (
    TaskActionInput,
    care_pathway_start,
    care_pathway_suspend,
    task_act,
)
from core.errors import NotAllowed
from directory.services import care_team_member_add, care_team_member_remove, consent_set
from live import events
from live.models import OutboxEvent
from live.relay import relay_forever
from live.selectors import outbox_published_after
from live.services.outbox import event_record, outbox_relay_run_once, outbox_sequence
from tests.coordination.conftest import CARE_TEST, Scene, make_patient, make_practitioner
from workflows.actors import Actor
from workflows.services import definition_publish, fire_due_timers, instances_migrate


def rows(**filters) -> list[tuple[str, int | None, dict[str, object]]]:
    return [
        (e.type, e.patient_id, e.payload)
        for e in OutboxEvent.objects.filter(**filters).order_by("id")
    ]


def visit_of(scene: Scene) -> Task:
    return Task.objects.get(care_pathway=scene.pathway, code="visit")


def test_starting_a_pathway_records_its_tasks_and_its_start(scene: Scene):
    recorded = rows(type__in=[events.TASK_CREATED, events.PATHWAY_STARTED])

    tasks = {t.code: t for t in Task.objects.filter(care_pathway=scene.pathway)}
    instance = scene.pathway.instance
    assert instance is not None
    assert [(t, p["task"] if "task" in p else p["pathway"]) for t, _, p in recorded] == [
        (events.TASK_CREATED, tasks["visit"].pk),
        (events.TASK_CREATED, tasks["review"].pk),
        (events.PATHWAY_STARTED, scene.pathway.pk),
    ]
    assert recorded[-1] == (
        events.PATHWAY_STARTED,
        scene.patient.pk,
        {
            "pathway": scene.pathway.pk,
            "instance": instance.pk,
            "revision": 1,
            "status": "active",
            "state": "assessment",
            "from_state": "",
            "event": "start",
        },
    )


def test_a_task_action_records_one_task_changed_event(scene: Scene):
    visit = visit_of(scene)
    before = OutboxEvent.objects.count()

    task_act(task_id=visit.pk, user=scene.nurse.user, data=TaskActionInput(action="start"))

    assert OutboxEvent.objects.count() == before + 1
    assert rows(pk__gt=0)[-1] == (
        events.TASK_CHANGED,
        scene.patient.pk,
        {
            "task": visit.pk,
            "version": 2,
            "status": "in-progress",
            "action": "start",
            "owner": scene.nurse.pk,
            "offered_team": None,
            "for_patient": False,
            "pathway": scene.pathway.pk,
        },
    )


def test_a_refused_task_action_records_no_event(scene: Scene):
    visit = visit_of(scene)
    before = list(OutboxEvent.objects.values_list("pk", flat=True))

    with pytest.raises(NotAllowed):
        task_act(task_id=visit.pk, user=scene.gp.user, data=TaskActionInput(action="complete"))

    assert list(OutboxEvent.objects.values_list("pk", flat=True)) == before


def test_completing_the_last_task_records_the_task_change_then_the_move(scene: Scene):
    for code, who in (("visit", scene.nurse), ("review", scene.gp)):
        task = Task.objects.get(care_pathway=scene.pathway, code=code)
        task_act(task_id=task.pk, user=who.user, data=TaskActionInput(action="complete"))
    last_id = OutboxEvent.objects.filter(type=events.TASK_CHANGED).order_by("id").last()
    assert last_id is not None

    after = rows(pk__gte=last_id.pk)

    diary = Task.objects.get(care_pathway=scene.pathway, code="diary")
    assert [(t, p.get("task"), p.get("state")) for t, _, p in after] == [
        (events.TASK_CHANGED, Task.objects.get(care_pathway=scene.pathway, code="review").pk, None),
        (events.PATHWAY_MOVED, None, "follow_up"),
        (events.TASK_CREATED, diary.pk, None),
    ]
    moved = after[1][2]
    assert (moved["from_state"], moved["event"], moved["revision"]) == (
        "assessment",
        "tasks_completed",
        2,
    )


TIMED = textwrap.dedent(
    """
    key: timed-test
    version: 1
    title: Timed test
    roles: [gp]
    initial: waiting
    states:
      waiting:
        on_enter:
          - timer: {event: review_due, after: PT1H}
        on:
          review_due: done
      done: {final: true}
    """
)


def test_a_timer_moving_a_pathway_records_the_move(db):
    definition_publish(source=TIMED, actor=Actor(id="test"), fmt="yaml")
    patient, gp = make_patient(), make_practitioner("gp")
    care_team_member_add(patient=patient, role="gp", practitioner=gp, actor=None)
    pathway = care_pathway_start(patient=patient, key="timed-test", user=gp.user)

    sweep = fire_due_timers(now=timezone.now() + dt.timedelta(hours=2))

    assert len(sweep.fired) == 1
    moved = rows(type=events.PATHWAY_MOVED)
    assert [
        (p, payload["pathway"], payload["state"], payload["status"]) for _, p, payload in moved
    ] == [(patient.pk, pathway.pk, "done", "completed")]


def test_suspending_a_pathway_records_it(scene: Scene):
    care_pathway_suspend(pathway=scene.pathway, user=scene.gp.user, reason="holiday")

    assert rows(type=events.PATHWAY_SUSPENDED) == [
        (
            events.PATHWAY_SUSPENDED,
            scene.patient.pk,
            {
                "pathway": scene.pathway.pk,
                "instance": scene.pathway.instance_id,
                "revision": 2,
                "status": "suspended",
                "state": "assessment",
                "from_state": "",
                "event": "suspend",
            },
        )
    ]


def test_membership_changes_record_the_member_and_their_user(scene: Scene):
    extra = make_practitioner("nurse")
    member = care_team_member_add(
        patient=scene.patient, role="nurse", practitioner=extra, actor=None
    )

    care_team_member_remove(member_id=member.pk, actor=None)

    changes = rows(type=events.CARE_TEAM_CHANGED, payload__member=member.pk)
    assert [
        (p, payload["change"], payload["user"], payload["role"]) for _, p, payload in changes
    ] == [
        (scene.patient.pk, "added", extra.user.pk, "nurse"),
        (scene.patient.pk, "removed", extra.user.pk, "nurse"),
    ]


def test_giving_then_withdrawing_consent_records_each_change(scene: Scene):
    for given in (True, False):
        consent_set(
            patient=scene.patient,
            scope="care_team_sharing",
            given=given,
            actor=None,
            entry_point="system",
        )

    assert rows(type=events.CONSENT_CHANGED) == [
        (events.CONSENT_CHANGED, scene.patient.pk, {"scope": "care_team_sharing", "given": True}),
        (events.CONSENT_CHANGED, scene.patient.pk, {"scope": "care_team_sharing", "given": False}),
    ]


def test_an_event_recorded_outside_a_transaction_is_refused(transactional_db):
    with pytest.raises(AssertionError, match="inside the change's transaction"):
        event_record(type=events.TASK_CHANGED, patient=None, payload={})

    assert OutboxEvent.objects.count() == 0


def test_an_event_rolls_back_with_its_change(db):
    def failing_change() -> None:
        with transaction.atomic():
            event_record(type=events.TASK_CHANGED, patient=None, payload={"task": 1})
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        failing_change()

    assert OutboxEvent.objects.count() == 0


# --- the relay ------------------------------------------------------------------------------


def record(n: int) -> list[int]:
    with transaction.atomic():
        return [
            event_record(type=events.TASK_CHANGED, patient=None, payload={"task": i}).pk
            for i in range(n)
        ]


def test_the_relay_publishes_in_position_order_and_marks_published(db):
    ids = record(3)
    published: list[list[int]] = []

    sent = outbox_relay_run_once(publish=lambda batch: published.append([e.pk for e in batch]))

    assert published == [ids]
    assert [e.position for e in sent] == [1, 2, 3]
    assert OutboxEvent.objects.filter(published_at__isnull=True).count() == 0
    assert outbox_relay_run_once(publish=lambda batch: published.append([])) == []
    assert published == [ids]


def test_a_failed_publish_marks_nothing_and_is_published_again(db):
    ids = record(2)

    def broken(batch):
        raise ConnectionError("channel layer down")

    with pytest.raises(ConnectionError):
        outbox_relay_run_once(publish=broken)
    unpublished = OutboxEvent.objects.filter(published_at__isnull=True).count()
    published: list[int] = []
    outbox_relay_run_once(publish=lambda batch: published.extend(e.pk for e in batch))

    assert unpublished == 2
    assert published == ids
    assert list(OutboxEvent.objects.order_by("id").values_list("position", "attempts")) == [
        (1, 1),
        (2, 1),
    ]


def test_the_backstop_publishes_an_unbroken_run_of_events_left_behind(db):
    # Positions 1 and 3 are old, 2 is recent: publishing 1 and 3 would send 3 before 2.
    now = timezone.now()
    old = now - dt.timedelta(minutes=5)
    with transaction.atomic():
        for occurred_at in (old, now, old):
            event_record(
                type=events.TASK_CHANGED, patient=None, payload={}, occurred_at=occurred_at
            )
    published: list[list[int | None]] = []

    outbox_relay_run_once(
        publish=lambda batch: published.append([e.position for e in batch]),
        older_than=now - dt.timedelta(seconds=30),
    )

    assert published == [[1]]
    assert list(
        OutboxEvent.objects.filter(published_at__isnull=False).values_list("position", flat=True)
    ) == [1]


def test_positions_continue_gap_free_across_runs(db):
    record(2)
    outbox_sequence()
    record(1)

    outbox_sequence()

    assert list(OutboxEvent.objects.order_by("id").values_list("position", flat=True)) == [1, 2, 3]


def test_an_event_committed_late_gets_a_later_position_and_is_resumed(postgres_transactional):
    # Transaction A takes the smaller id but commits after B: a client that saw B's event
    # and resumes after its position must still receive A's.
    holding = threading.Event()
    release = threading.Event()
    ids: dict[str, int] = {}

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                ids["a"] = event_record(type=events.TASK_CHANGED, patient=None, payload={}).pk
                holding.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert holding.wait(timeout=30)
    ids["b"] = record(1)[0]
    outbox_sequence()
    seen_by_client = OutboxEvent.objects.get(pk=ids["b"]).position
    release.set()
    thread.join(timeout=30)

    outbox_sequence()

    assert ids["a"] < ids["b"]
    assert seen_by_client == 1
    assert [(e.pk, e.position) for e in outbox_published_after(position=1, limit=10)] == [
        (ids["a"], 2)
    ]


def _relay_in_thread(
    published: list[list[int]], *, limit: int, stall: threading.Event | None = None
) -> tuple[threading.Thread, threading.Event, list[BaseException]]:
    """A relay pass in a thread of its own (its own database session). Its publisher records
    the positions it sends and, given `stall`, waits for it before returning (a relay paused
    in the middle of its pass). Returns the thread, an event set once it has published, and
    the error it ended with, if any."""
    sent = threading.Event()
    errors: list[BaseException] = []

    def publish(batch):
        published.append([e.position for e in batch])
        sent.set()
        if stall is not None:
            stall.wait(timeout=30)

    def run() -> None:
        try:
            outbox_relay_run_once(publish=publish, limit=limit)
        except BaseException as error:  # handed to the test
            errors.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, sent, errors


def test_a_relay_never_publishes_past_a_batch_another_relay_is_still_publishing(
    postgres_transactional,
):
    # The leader claims positions 1-2 and stalls before marking them; a second relay must
    # not send 3-4 first (a client would see 3 before 1, and resuming from 4 lose 1-2).
    record(4)
    outbox_sequence()
    published: list[list[int]] = []
    stall = threading.Event()
    leader, leader_sent, leader_errors = _relay_in_thread(published, limit=2, stall=stall)
    assert leader_sent.wait(timeout=30)
    standby, standby_sent, standby_errors = _relay_in_thread(published, limit=10)

    standby_went_first = standby_sent.wait(timeout=1.0)
    stall.set()
    leader.join(timeout=30)
    standby.join(timeout=30)

    assert not standby_went_first
    assert (leader_errors, standby_errors) == ([], [])
    assert published == [[1, 2], [3, 4]]
    assert OutboxEvent.objects.filter(published_at__isnull=True).count() == 0


def test_a_relay_stalled_past_the_limit_is_taken_over_in_order(postgres_transactional, settings):
    settings.LIVE_RELAY_STALL_SECONDS = 1.0
    record(4)
    outbox_sequence()
    published: list[list[int]] = []
    stall = threading.Event()
    leader, leader_sent, leader_errors = _relay_in_thread(published, limit=2, stall=stall)
    assert leader_sent.wait(timeout=30)
    started = time.monotonic()
    standby, standby_sent, standby_errors = _relay_in_thread(published, limit=10)

    assert standby_sent.wait(timeout=30)
    took_over_after = time.monotonic() - started
    stall.set()
    leader.join(timeout=30)
    standby.join(timeout=30)

    # PostgreSQL ended the stalled pass's session: its claim rolled back, and the standby
    # published the whole run again, from the lowest position (receivers drop the copies).
    assert 0.5 < took_over_after < 10
    assert published == [[1, 2], [1, 2, 3, 4]]
    assert len(leader_errors) == 1
    assert "idle-in-transaction" in str(leader_errors[0])
    assert standby_errors == []
    assert list(OutboxEvent.objects.order_by("position").values_list("position", "attempts")) == [
        (1, 1),
        (2, 1),
        (3, 1),
        (4, 1),
    ]


def test_a_committed_event_wakes_the_relay_at_once(postgres_transactional, settings, monkeypatch):
    # Polls so rare that only the NOTIFY sent at commit can explain a quick publication.
    settings.LIVE_RELAY_LISTEN_FALLBACK_SECONDS = 60.0
    # Worker threads close their connections, so that the test database can be dropped.
    relay_once = live.relay.relay_once

    def relay_once_closing(publish: Any, limit: int) -> int:
        try:
            return relay_once(publish, limit)
        finally:
            connection.close()

    monkeypatch.setattr(live.relay, "relay_once", relay_once_closing)

    def record() -> int:
        try:
            with transaction.atomic():
                return event_record(type=events.CONSENT_CHANGED, patient=None, payload={}).pk
        finally:
            connection.close()

    def published(pk: int) -> bool:
        try:
            return OutboxEvent.objects.filter(pk=pk, published_at__isnull=False).exists()
        finally:
            connection.close()

    async def scenario() -> float:
        stop = asyncio.Event()
        relay = asyncio.create_task(relay_forever(stop, poll_seconds=60.0))
        await asyncio.sleep(1.0)  # listening, its first (empty) round done
        pk = await sync_to_async(record, thread_sensitive=False)()
        committed = time.monotonic()
        while time.monotonic() - committed < 10.0:
            if await sync_to_async(published, thread_sensitive=False)(pk):
                break
            await asyncio.sleep(0.02)
        waited = time.monotonic() - committed
        stop.set()
        await asyncio.wait_for(relay, timeout=5.0)
        return waited

    waited = asyncio.run(scenario())

    assert waited < 5.0


def _closing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker threads close their connections, so that the test database can be dropped."""
    relay_once = live.relay.relay_once

    def relay_once_closing(publish: Any, limit: int) -> int:
        try:
            return relay_once(publish, limit)
        finally:
            connection.close()

    monkeypatch.setattr(live.relay, "relay_once", relay_once_closing)


def _record_event() -> int:
    try:
        with transaction.atomic():
            return event_record(type=events.CONSENT_CHANGED, patient=None, payload={}).pk
    finally:
        connection.close()


def _published_at(pks: list[int]) -> list[dt.datetime | None]:
    try:
        return [OutboxEvent.objects.get(pk=pk).published_at for pk in pks]
    finally:
        connection.close()


def _leader_pids() -> list[int]:
    """Backends holding the relay leader's advisory lock in this test database (pg_locks
    splits the bigint key, and lists the locks of every database: a parallel test worker's
    relay holds the same key in its own)."""
    key = live.relay.LEADER_LOCK_KEY
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND classid = %s AND objid = %s AND objsubid = 1 AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())",
                [key >> 32, key & 0xFFFFFFFF],
            )
            return [row[0] for row in cursor.fetchall()]
    finally:
        connection.close()


async def _until(check: Any, seconds: float) -> float:
    """Poll `check` (run in a thread) until it is true; returns the time it took."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if await sync_to_async(check, thread_sensitive=False)():
            break
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def test_one_relay_leads_and_another_takes_over_when_it_stops(
    postgres_transactional, settings, monkeypatch
):
    # A relay standing by looks every 2 s: only the leader, woken by NOTIFY, publishes within
    # a second.
    settings.LIVE_RELAY_LISTEN_FALLBACK_SECONDS = 2.0
    settings.LIVE_RELAY_GATHER_SECONDS = 0.0
    _closing(monkeypatch)

    def published(pk: int) -> bool:
        return _published_at([pk])[0] is not None

    async def scenario() -> tuple[list[int], float, list[int], float]:
        first_stop, second_stop = asyncio.Event(), asyncio.Event()
        first = asyncio.create_task(relay_forever(first_stop))
        await asyncio.sleep(0.5)
        second = asyncio.create_task(relay_forever(second_stop))
        await asyncio.sleep(1.0)
        leaders_before = await sync_to_async(_leader_pids, thread_sensitive=False)()
        pk = await sync_to_async(_record_event, thread_sensitive=False)()
        waited_before = await _until(lambda: published(pk), 10.0)
        # The leader stops; its connection closes and frees the lock for the other.
        first_stop.set()
        await asyncio.wait_for(first, timeout=5.0)
        # The old leader's server process may hold the lock a moment after its connection
        # closed: wait for the other relay's backend to hold it.
        await _until(lambda: _leader_pids() not in ([], leaders_before), 10.0)
        leaders_after = await sync_to_async(_leader_pids, thread_sensitive=False)()
        pk = await sync_to_async(_record_event, thread_sensitive=False)()
        waited_after = await _until(lambda: published(pk), 10.0)
        second_stop.set()
        await asyncio.wait_for(second, timeout=5.0)
        # As above, the lock goes with the server process, a moment after the connection.
        await _until(lambda: _leader_pids() == [], 10.0)
        return leaders_before, waited_before, leaders_after, waited_after

    leaders_before, waited_before, leaders_after, waited_after = asyncio.run(scenario())

    assert len(leaders_before) == 1
    assert len(leaders_after) == 1
    assert leaders_after != leaders_before
    assert waited_before < 1.0
    assert waited_after < 1.0
    assert _leader_pids() == []


def test_the_leader_publishes_at_once_after_a_quiet_moment_and_gathers_a_busy_one(
    postgres_transactional, settings, monkeypatch
):
    settings.LIVE_RELAY_LISTEN_FALLBACK_SECONDS = 60.0
    settings.LIVE_RELAY_GATHER_SECONDS = 0.5
    _closing(monkeypatch)

    async def scenario() -> tuple[float, list[dt.datetime | None]]:
        stop = asyncio.Event()
        relay = asyncio.create_task(relay_forever(stop, poll_seconds=60.0))
        await asyncio.sleep(1.0)  # quiet: the last pass is long past
        first = await sync_to_async(_record_event, thread_sensitive=False)()
        waited = await _until(lambda: None not in _published_at([first]), 10.0)
        pks = [first]
        for _ in range(3):  # three commits right after a pass, each notifying
            pks.append(await sync_to_async(_record_event, thread_sensitive=False)())
        await _until(lambda: None not in _published_at(pks), 10.0)
        stop.set()
        await asyncio.wait_for(relay, timeout=5.0)
        return waited, await sync_to_async(_published_at, thread_sensitive=False)(pks)

    waited, published = asyncio.run(scenario())

    assert waited < 0.4  # not held for the gathering time
    assert None not in published
    first, *burst = published
    assert len(set(burst)) == 1, burst  # one pass marked the three
    assert first is not None
    assert burst[0] is not None
    assert (burst[0] - first).total_seconds() >= 0.4  # no sooner than the interval allows


def test_migrating_a_care_pathway_to_a_new_version_writes_its_move(scene: Scene) -> None:
    definition_publish(
        source=CARE_TEST.replace("version: 1", "version: 2"), actor=Actor(id="test"), fmt="yaml"
    )
    before = OutboxEvent.objects.filter(type=events.PATHWAY_MOVED).count()

    instances_migrate(
        key="care-test", from_version=1, to_version=2, state_map={}, actor=Actor(id="ops"),
        dry_run=False,
    )  # fmt: skip

    moved = OutboxEvent.objects.filter(type=events.PATHWAY_MOVED).order_by("id")
    assert moved.count() == before + 1
    event = moved.last()
    assert event is not None
    assert event.patient_id == scene.patient.pk
    assert (event.payload["event"], event.payload["from_state"], event.payload["state"]) == (
        "migrate",
        "assessment",
        "assessment",
    )
