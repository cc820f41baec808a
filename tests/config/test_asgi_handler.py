"""HTTP through the ASGI application (the project's handler by default, Django's own with
HTTP_HANDLER=django): every middleware and the view run, requests at the same time are served
side by side."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.core.handlers.asgi import ASGIHandler

from config.asgi import application
from config.handlers import SyncStackASGIHandler


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


def test_the_application_serves_http_with_the_project_s_handler_by_default(settings):
    assert settings.HTTP_HANDLER == "project"
    assert type(application.application_mapping["http"]) is SyncStackASGIHandler
    assert isinstance(application.application_mapping["http"], ASGIHandler)


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


def _waiting_handler(
    monkeypatch: pytest.MonkeyPatch, arrived: threading.Event, handler: ASGIHandler
) -> list[int]:
    """`handler`, where a request for ?first=1 waits, in the thread its view runs in, until
    another request has reached that point; returns the threads seen."""
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


@pytest.mark.django_db(transaction=True)
def test_requests_at_the_same_time_are_served_side_by_side_in_threads_of_their_own(monkeypatch):
    # Django's own handler (HTTP_HANDLER=django; the project's is checked the same way in
    # test_sync_stack_handler.py). On one shared thread the second request could never start,
    # and the first would time out.
    arrived = threading.Event()
    django_handler = ASGIHandler()
    threads = _waiting_handler(monkeypatch, arrived, django_handler)

    async def both() -> list[int]:
        first = asyncio.ensure_future(_aget(django_handler, "/login/?first=1"))
        await asyncio.sleep(0.2)
        second = await _aget(django_handler, "/login/?second=1")
        return [(await first)["status"], second["status"]]

    assert async_to_sync(both)() == [200, 200]
    assert len(set(threads)) == 2
    assert threading.get_ident() not in threads  # neither ran on the event loop's thread
