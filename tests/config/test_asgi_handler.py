"""HTTP through the ASGI application: Django's own ASGI handler, every middleware and the view
run, requests at the same time are served side by side; and the lifespan's garbage
collector tuning (config.asgi.tune_garbage_collection), which holds under concurrent
requests and still lets the collector free what requests leave in cycles."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.core.handlers.asgi import ASGIHandler

from config.asgi import GC_YOUNG_THRESHOLD, application


def _scope(path: str) -> dict[str, Any]:
    route, _, query = path.partition("?")
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": route, "raw_path": route.encode(),
        "query_string": query.encode(), "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 50000), "server": ("localhost", 80),
    }  # fmt: skip


async def _aget(app: Any, path: str) -> dict[str, Any]:
    """One GET through the ASGI interface: status, headers and the whole body."""
    communicator = ApplicationCommunicator(app, _scope(path))
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(10)
    body = b""
    while True:
        message = await communicator.receive_output(10)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.wait(10)
    return {"status": start["status"], "headers": start["headers"], "body": body}


def _get(app: Any, path: str) -> dict[str, Any]:
    return async_to_sync(_aget)(app, path)


def test_the_application_serves_http_with_django_s_own_handler():
    assert type(application.application_mapping["http"]) is ASGIHandler


@pytest.mark.django_db(transaction=True)
def test_a_request_runs_every_middleware_and_the_view():
    response = _get(application, "/login/?next=/")

    assert response["status"] == 200
    headers = {k.decode().lower(): v.decode() for k, v in response["headers"]}
    # The outermost and innermost middleware ran: security headers, clickjacking, CSRF cookie.
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert "csrftoken=" in headers.get("set-cookie", "")
    assert b"csrfmiddlewaretoken" in response["body"]


def _waiting_handler(monkeypatch: pytest.MonkeyPatch, arrived: threading.Event) -> Any:
    """The application's HTTP handler, where a request for ?first=1 waits, in the thread its
    view runs in, until another request has reached that point; returns the threads seen."""
    handler = application.application_mapping["http"]
    threads: list[int] = []
    original = handler.get_response_async

    def record(request: Any) -> None:
        threads.append(threading.get_ident())
        if "first" in request.GET:
            assert arrived.wait(10), "the second request never ran alongside"
        else:
            arrived.set()

    async def get_response_async(request: Any) -> Any:
        await sync_to_async(record)(request)  # thread-sensitive: the request's own thread
        return await original(request)

    monkeypatch.setattr(handler, "get_response_async", get_response_async)
    return threads


@pytest.fixture
def tuned_collector(settings: Any) -> Iterator[None]:
    """The application started through the lifespan protocol (the collector tuned, no relay),
    and the collector as it was afterwards."""
    settings.LIVE_RELAY_EMBEDDED = False
    settings.GC_TUNING = True
    saved = gc.get_threshold()

    async def send(kind: str) -> None:
        communicator = ApplicationCommunicator(application, {"type": "lifespan"})
        await communicator.send_input({"type": f"lifespan.{kind}"})
        assert (await communicator.receive_output(10))["type"] == f"lifespan.{kind}.complete"

    try:
        async_to_sync(send)("startup")
        yield
        async_to_sync(send)("shutdown")
    finally:
        gc.unfreeze()
        gc.set_threshold(*saved)


@pytest.mark.django_db(transaction=True)
def test_requests_at_the_same_time_are_served_side_by_side_in_threads_of_their_own(
    monkeypatch, tuned_collector
):
    # On one shared thread the second request could never start, and the first would time out.
    arrived = threading.Event()
    threads = _waiting_handler(monkeypatch, arrived)

    async def both() -> list[int]:
        first = asyncio.ensure_future(_aget(application, "/login/?first=1"))
        await asyncio.sleep(0.2)
        second = await _aget(application, "/login/?second=1")
        return [(await first)["status"], second["status"]]

    assert async_to_sync(both)() == [200, 200]
    assert len(set(threads)) == 2
    assert threading.get_ident() not in threads  # neither ran on the event loop's thread
    assert gc.get_threshold()[0] >= GC_YOUNG_THRESHOLD


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_requests_is_answered_whole_with_the_collector_tuned(tuned_collector):
    async def burst() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(_aget(application, "/login/") for _ in range(8))))

    responses = async_to_sync(burst)()

    assert [r["status"] for r in responses] == [200] * 8
    assert all(b"csrfmiddlewaretoken" in r["body"] for r in responses)


def test_startup_freezes_the_loaded_heap_and_spaces_young_collections(tuned_collector):
    assert gc.get_threshold()[0] >= GC_YOUNG_THRESHOLD
    assert gc.get_freeze_count() > 0


def test_cycles_made_after_startup_are_still_collected(tuned_collector):
    class Node:
        other: Any = None

    first, second = Node(), Node()
    first.other, second.other = second, first
    gone = weakref.ref(first)
    del first, second

    gc.collect()

    assert gone() is None


def test_startup_leaves_the_collector_alone_when_tuning_is_off(settings):
    settings.LIVE_RELAY_EMBEDDED = False
    settings.GC_TUNING = False
    saved, frozen = gc.get_threshold(), gc.get_freeze_count()

    async def start() -> None:
        communicator = ApplicationCommunicator(application, {"type": "lifespan"})
        await communicator.send_input({"type": "lifespan.startup"})
        assert (await communicator.receive_output(10))["type"] == "lifespan.startup.complete"
        await communicator.send_input({"type": "lifespan.shutdown"})
        assert (await communicator.receive_output(10))["type"] == "lifespan.shutdown.complete"

    async_to_sync(start)()

    assert (gc.get_threshold(), gc.get_freeze_count()) == (saved, frozen)
