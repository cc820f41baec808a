"""The ASGI handler for HTTP: Django's, with the middleware stack and the view run
synchronously in one thread per request.

Django's own ASGI handler builds the middleware stack for async mode. Every middleware of
this project and every view is synchronous, and WhiteNoise is sync-only, so that stack
switches between the event loop and a worker thread for nearly every middleware hook:
about eighteen hand-overs per request (each a future, a thread wake-up and a copy of the
context), which cost more CPU than some requests' own work. Here the stack is built as
for WSGI and the whole of it runs in one `sync_to_async` call, in the request's thread
(Django's ThreadSensitiveContext, as before). Reading the request body, sending the
response (streamed ones too) and the request_started / request_finished signals are
Django's, unchanged.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase


class SyncStackASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        # Not ASGIHandler.__init__, which builds the stack for async mode.
        self.load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


def get_asgi_application() -> SyncStackASGIHandler:
    """As django.core.asgi.get_asgi_application, with this handler."""
    import django

    django.setup(set_prefix=False)
    return SyncStackASGIHandler()
