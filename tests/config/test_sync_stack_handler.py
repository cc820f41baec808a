"""HTTP through the project's handler (config.handlers, the default): the middleware stack
and the view run synchronously in one hand-over to a worker thread, and still all of them
run."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from pathlib import Path
from typing import Any

import django
import pytest
from asgiref.sync import SyncToAsync, async_to_sync, sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_finished, request_started
from django.http import StreamingHttpResponse

from config.asgi import application
from config.handlers import SyncStackASGIHandler, _RequestThread


def _get(app: Any, path: str) -> dict[str, Any]:
    """One GET through the ASGI interface: status, headers and the whole body."""
    route, _, query = path.partition("?")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": route, "raw_path": route.encode(),
        "query_string": query.encode(), "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 50000), "server": ("localhost", 80),
    }  # fmt: skip

    async def run() -> dict[str, Any]:
        communicator = ApplicationCommunicator(app, scope)
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

    return async_to_sync(run)()


def _count_hand_overs(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    original = SyncToAsync.__call__

    async def counting(self: SyncToAsync[Any, Any], *args: Any, **kwargs: Any) -> Any:
        calls.append(self.func)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counting)
    return calls


@pytest.mark.django_db(transaction=True)
def test_a_request_runs_its_middleware_and_view_in_one_hand_over(monkeypatch):
    calls = _count_hand_overs(monkeypatch)

    response = _get(application, "/login/?next=/")

    assert response["status"] == 200
    headers = {k.decode().lower(): v.decode() for k, v in response["headers"]}
    # The outermost and innermost middleware ran: security headers, clickjacking, CSRF cookie.
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert "csrftoken=" in headers.get("set-cookie", "")
    assert b"csrfmiddlewaretoken" in response["body"]
    # request_started, the whole request and closing the response (request_finished).
    assert len(calls) == 1, [getattr(f, "__qualname__", f) for f in calls]


@pytest.mark.django_db(transaction=True)
def test_django_s_own_handler_would_hand_over_at_almost_every_middleware(monkeypatch):
    """What config.handlers avoids, checked on the same request (so that the test above keeps
    meaning something if Django changes its handler)."""
    calls = _count_hand_overs(monkeypatch)

    response = _get(ASGIHandler(), "/login/?next=/")

    assert response["status"] == 200
    assert len(calls) > 6


def test_the_application_serves_http_with_the_sync_stack_handler():
    assert isinstance(application.application_mapping["http"], SyncStackASGIHandler)


def _recording_handler(monkeypatch: pytest.MonkeyPatch, record: Any) -> SyncStackASGIHandler:
    handler = SyncStackASGIHandler()
    original = handler.get_response

    def get_response(request: Any) -> Any:
        record(request)
        return original(request)

    monkeypatch.setattr(handler, "get_response", get_response)
    return handler


@pytest.mark.django_db(transaction=True)
def test_requests_one_after_the_other_reuse_one_thread(monkeypatch):
    threads: list[int] = []
    handler = _recording_handler(monkeypatch, lambda _: threads.append(threading.get_ident()))

    statuses = [_get(handler, "/login/")["status"] for _ in range(3)]

    assert statuses == [200, 200, 200]
    assert len(set(threads)) == 1
    assert threads[0] != threading.get_ident()  # not the event loop's thread
    assert len(handler._idle) == 1


@pytest.mark.django_db(transaction=True)
def test_requests_at_the_same_time_run_in_threads_of_their_own(monkeypatch):
    # The first request waits in its view for the second to reach its own: on one shared
    # thread the second could never start, and the first would time out.
    second_arrived = threading.Event()
    threads: list[int] = []

    def record(request: Any) -> None:
        threads.append(threading.get_ident())
        if "first" in request.GET:
            assert second_arrived.wait(10), "the second request never ran alongside"
        else:
            second_arrived.set()

    handler = _recording_handler(monkeypatch, record)

    async def both() -> list[int]:
        first = asyncio.ensure_future(
            sync_to_async(_get, thread_sensitive=False)(handler, "/login/?first=1")
        )
        await asyncio.sleep(0.2)
        second = await sync_to_async(_get, thread_sensitive=False)(handler, "/login/?second=1")
        return [(await first)["status"], second["status"]]

    assert async_to_sync(both)() == [200, 200]
    assert len(set(threads)) == 2
    assert len(handler._idle) == 2


def test_a_thread_still_busy_is_not_lent_again():
    thread = _RequestThread()
    release = threading.Event()
    try:
        running = thread.submit(release.wait, 10)
        assert not thread.idle
        release.set()
        running.result(10)
        assert thread.idle
    finally:
        thread.shutdown()


@pytest.fixture
def signals_seen() -> Any:
    """request_started and request_finished as they are sent: (which, in what thread)."""
    seen: list[tuple[str, int]] = []

    def started(**kwargs: Any) -> None:
        seen.append(("started", threading.get_ident()))

    def finished(**kwargs: Any) -> None:
        seen.append(("finished", threading.get_ident()))

    request_started.connect(started, weak=False, dispatch_uid="test-started")
    request_finished.connect(finished, weak=False, dispatch_uid="test-finished")
    yield seen
    request_started.disconnect(dispatch_uid="test-started")
    request_finished.disconnect(dispatch_uid="test-finished")


@pytest.mark.django_db(transaction=True)
def test_a_complete_response_is_closed_in_the_request_s_thread(monkeypatch, signals_seen):
    threads: list[int] = []
    handler = _recording_handler(monkeypatch, lambda _: threads.append(threading.get_ident()))

    assert _get(handler, "/login/")["status"] == 200

    assert signals_seen == [("started", threads[0]), ("finished", threads[0])]


@pytest.mark.django_db(transaction=True)
def test_a_streamed_response_is_sent_whole_and_closed_afterwards(monkeypatch, signals_seen):
    handler = SyncStackASGIHandler()
    sent: list[bytes] = []

    async def parts() -> Any:
        for part in (b"first,", b"second,", b"third"):
            sent.append(part)
            yield part

    def streamed(request: Any) -> StreamingHttpResponse:
        return StreamingHttpResponse(parts(), content_type="text/plain")

    monkeypatch.setattr(handler, "get_response", streamed)

    response = _get(handler, "/anything/")

    assert (response["status"], response["body"]) == (200, b"first,second,third")
    assert [name for name, _ in signals_seen] == ["started", "finished"]
    assert sent == [b"first,", b"second,", b"third"]


@pytest.mark.django_db(transaction=True)
def test_a_client_leaving_during_a_stream_stops_it_and_the_response_is_closed(
    monkeypatch, signals_seen
):
    handler = SyncStackASGIHandler()
    produced: list[int] = []

    async def endless() -> Any:
        n = 0
        while True:
            produced.append(n)
            yield b"part,"
            n += 1
            await asyncio.sleep(0.01)

    monkeypatch.setattr(handler, "get_response", lambda request: StreamingHttpResponse(endless()))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/stream/", "raw_path": b"/stream/", "query_string": b"",
        "headers": [(b"host", b"localhost")], "client": ("127.0.0.1", 50000),
        "server": ("localhost", 80),
    }  # fmt: skip

    async def run() -> None:
        communicator = ApplicationCommunicator(handler, scope)
        await communicator.send_input({"type": "http.request", "body": b""})
        assert (await communicator.receive_output(10))["type"] == "http.response.start"
        assert (await communicator.receive_output(10))["body"] == b"part,"
        await communicator.send_input({"type": "http.disconnect"})
        await communicator.wait(10)

    async_to_sync(run)()

    stopped_at = len(produced)
    assert [name for name, _ in signals_seen] == ["started", "finished"]
    time.sleep(0.1)
    assert len(produced) == stopped_at < 50  # the stream stopped when the client left


# config.handlers calls methods of Django's ASGIHandler that are not documented API. Django
# is pinned; on an upgrade these fail first if one of them is gone or takes other parameters.
DJANGO_METHODS = {
    "read_body": ["self", "receive"],
    "create_request": ["self", "scope", "body_file"],
    "send_response": ["self", "response", "send"],
    "listen_for_disconnect": ["self", "receive"],
    "handle": ["self", "scope", "receive", "send"],
}


def test_the_django_version_is_the_pinned_one_the_handler_was_checked_against():
    requirements = (Path(__file__).resolve().parents[2] / "requirements.txt").read_text()
    assert f"Django=={django.__version__}\n" in requirements


@pytest.mark.parametrize(("name", "parameters"), DJANGO_METHODS.items())
def test_django_s_handler_still_has_the_methods_the_project_s_handler_relies_on(
    name: str, parameters: list[str]
):
    method = getattr(ASGIHandler, name)
    assert list(inspect.signature(method).parameters) == parameters
    assert inspect.iscoroutinefunction(method) == (name != "create_request")
