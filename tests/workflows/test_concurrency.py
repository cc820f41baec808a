"""Concurrent fires on one instance, with real connections to PostgreSQL."""

from __future__ import annotations

import threading

from django.db import connections
from django.utils import translation

from tests.workflows.conftest import FOLLOW_UP, publish
from workflows.actors import SYSTEM, Actor
from workflows.errors import TransitionRefused
from workflows.models import HistoryEntry, PathwayInstance
from workflows.services import instance_fire, instance_start

N = 8


def fire_concurrently(instance_id: int, event: str, actor: Actor) -> tuple[int, list[str]]:
    barrier = threading.Barrier(N)
    successes: list[int] = []
    refusals: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            barrier.wait()
            # A new thread starts in the site's language: answer in English, as the test's
            # own thread does (tests/conftest.py).
            with translation.override("en"):
                instance_fire(instance_id=instance_id, event=event, actor=actor)
            with lock:
                successes.append(1)
        except TransitionRefused as refusal:
            with lock:
                refusals.append(refusal.message)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(N)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return len(successes), refusals


def test_concurrent_fires_of_one_event_give_exactly_one_transition(postgres_transactional, tasks):
    publish(FOLLOW_UP)
    instance = instance_start(key="follow-up", actor=SYSTEM)

    successes, refusals = fire_concurrently(instance.pk, "tasks_completed", SYSTEM)

    assert successes == 1
    assert len(refusals) == N - 1
    assert set(refusals) == {
        "event 'tasks_completed' is not available in state 'monitoring' "
        "(available: alert, note, review_due, stop)"
    }
    instance = PathwayInstance.objects.get(pk=instance.pk)
    assert (instance.state, instance.revision) == ("monitoring", 2)
    assert HistoryEntry.objects.filter(instance=instance, event="tasks_completed").count() == 1


def test_concurrent_fires_keep_revisions_gapless(postgres_transactional, tasks):
    # A self-loop can be taken by every concurrent caller: each must see the previous one's
    # result, so revisions go 3, 4, ... with no duplicate and no lost update.
    publish(FOLLOW_UP)
    instance = instance_start(key="follow-up", actor=SYSTEM)
    instance_fire(instance_id=instance.pk, event="tasks_completed", actor=SYSTEM)
    nurse = Actor.person("user:nurse", {"nurse"})

    successes, refusals = fire_concurrently(instance.pk, "note", nurse)

    assert (successes, refusals) == (N, [])
    revisions = list(
        HistoryEntry.objects.filter(instance_id=instance.pk)
        .order_by("revision")
        .values_list("revision", flat=True)
    )
    assert revisions == list(range(1, N + 3))
    assert PathwayInstance.objects.get(pk=instance.pk).revision == N + 2
