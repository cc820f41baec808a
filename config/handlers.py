"""The ASGI handler for HTTP: Django's, with the middleware stack and the view run
synchronously in one thread hand-over per request, on threads kept from one request to the
next.

Django's own ASGI handler builds the middleware stack for async mode. Every middleware of
this project and every view is synchronous, and WhiteNoise is sync-only, so that stack
switches between the event loop and a worker thread for nearly every middleware hook:
about eighteen hand-overs per request (each a future, a thread wake-up and a copy of the
context), which cost more CPU than some requests' own work. Here the stack is built as
for WSGI and the whole of it runs in one `sync_to_async` call. Reading the request body,
sending the response (streamed ones too) and the request_started / request_finished signals
are Django's, unchanged.

Django also starts a thread for every request (a ThreadSensitiveContext of its own) and
joins it afterwards from yet another thread. Here a request borrows an idle single-thread
executor and gives it back when it is answered: as with Django, every thread-sensitive call
of one request runs in one thread, and a request's state (its database connection, which
request_finished hands back to the pool) lives in the request's context, not in the thread.
At most IDLE_THREADS wait for the next request; beyond that, a burst's extra threads end. A
thread still busy when its request is over (the client went away while the view ran) is not
lent again: it ends once the view returns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase

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

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


def get_asgi_application() -> SyncStackASGIHandler:
    """As django.core.asgi.get_asgi_application, with this handler."""
    import django

    django.setup(set_prefix=False)
    return SyncStackASGIHandler()
