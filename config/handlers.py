"""The ASGI handler for HTTP: Django's, with a request served synchronously in one thread
hand-over, on threads kept from one request to the next.

Django's own ASGI handler builds the middleware stack for async mode. Every middleware of
this project and every view is synchronous, and WhiteNoise is sync-only, so that stack
switches between the event loop and a worker thread for nearly every middleware hook:
about eighteen hand-overs per request (each a future, a thread wake-up and a copy of the
context), and two more for the request_started and request_finished signals, which cost
more CPU than some requests' own work. Here the stack is built as for WSGI, and one
`sync_to_async` call sends request_started, runs the whole stack and, when the response is
complete (not streamed), closes it, which sends request_finished (the database connection
goes back to the pool before the bytes go out rather than after). Reading the request body
and sending the response are Django's; a streamed response is sent while watching for the
client going away, and closed afterwards, as by Django (see `handle`).

Django also starts a thread for every request (a ThreadSensitiveContext of its own) and
joins it afterwards from yet another thread. Here a request borrows an idle single-thread
executor and gives it back when it is answered: as with Django, every thread-sensitive call
of one request runs in one thread, and a request's state (its database connection, which
request_finished hands back to the pool) lives in the request's context, not in the thread.
At most IDLE_THREADS wait for the next request; beyond that, a burst's extra threads end. A
thread still busy when its request is over (the server cancelled the request, at shutdown)
is not lent again: it ends once its work returns.

Kept because `bench/api_transitions.py --compare` measures it needed in the same run: on a
quiet machine 0.074 against pgbench with it, 0.055 with Django's own handler
(HTTP_HANDLER=django), and 8.7 against 10.4 ms of CPU per completion (docs/request-path.md).
It overrides Django's request path (`__init__`, `__call__`, `handle`, `get_response_async`)
and calls ASGIHandler's undocumented `read_body`, `create_request`, `send_response` and
`listen_for_disconnect`: Django is pinned in requirements.txt, and
tests/config/test_sync_stack_handler.py checks those methods' signatures and behaviour, so
an upgrade that changes them fails there first.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse, HttpRequest, HttpResponseBase
from django.urls import set_script_prefix

IDLE_THREADS = 16


class _RequestThread(ThreadPoolExecutor):
    """One thread, which knows whether work it was given is still running."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="http")
        self._lock = threading.Lock()
        self._running = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._lock:
            self._running += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._finished)
        return future

    def _finished(self, _: Future[Any]) -> None:
        with self._lock:
            self._running -= 1

    @property
    def idle(self) -> bool:
        with self._lock:
            return self._running == 0


class SyncStackASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        # Not ASGIHandler.__init__, which builds the stack for async mode.
        self.load_middleware(is_async=False)
        self._idle: list[_RequestThread] = []  # touched by the event loop's thread only
        self._serve_async = sync_to_async(self._serve, thread_sensitive=True)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self._idle.pop() if self._idle else _RequestThread()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            if executor.idle and len(self._idle) < IDLE_THREADS:
                self._idle.append(executor)
            else:
                executor.shutdown(wait=False)

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Django's ASGIHandler.handle, with the request served by `_serve` in one hand-over.

        Django also listens for the client going away while the view runs, to cancel it: a
        synchronous view cannot be cancelled (its thread runs on), so here the listening
        starts with the sending of a streamed response, the one part that can be stopped.
        A complete response sent to a client that left is dropped by the server."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        response, closed = await self._serve_async(scope, body_file)
        try:
            if closed:
                await self.send_response(response, send)
            else:
                await self._send_streamed(response, receive, send)
        finally:
            if not closed:
                await sync_to_async(response.close)()
            body_file.close()

    async def _send_streamed(self, response: HttpResponseBase, receive: Any, send: Any) -> None:
        """Send a streamed response, stopping if the client goes away (as Django does)."""
        listening = asyncio.create_task(self.listen_for_disconnect(receive))
        sending = asyncio.create_task(self.send_response(response, send))
        await asyncio.wait([listening, sending], return_when=asyncio.FIRST_COMPLETED)
        for task in (listening, sending):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            elif not task.cancelled():
                with contextlib.suppress(RequestAborted):
                    task.result()

    def _serve(self, scope: dict[str, Any], body_file: Any) -> tuple[HttpResponseBase, bool]:
        """In the request's thread: request_started, the request through the middleware and
        the view, and the response closed if it is complete. Returns it, and whether it was
        closed (a streamed one is closed once sent)."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        response: HttpResponseBase
        if request is None:
            assert error_response is not None  # Django gives one or the other
            response = error_response
        else:
            response = self.get_response(request)
            response._handler_class = self.__class__  # type: ignore[attr-defined]
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
        if response.streaming:
            return response, False
        response.close()
        return response, True

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


def get_asgi_application() -> SyncStackASGIHandler:
    """As django.core.asgi.get_asgi_application, with this handler."""
    django.setup(set_prefix=False)
    return SyncStackASGIHandler()
