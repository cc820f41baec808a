"""How long a signed-in session lasts: it ends SESSION_IDLE_TIMEOUT (30 minutes) after the
last request made with it, and SESSION_ABSOLUTE_TIMEOUT (12 hours) after logging in at the
latest, whichever comes first. Then pages redirect to the login page, the
session-authenticated API answers 401, and the live WebSocket closes (4401) at its next
session check.

Both limits are written into the session's own expiry, as an absolute time (Django's session
machinery: the session row's expire_date, the cookie's max-age). The session store then
refuses an expired session wherever it is read: pages, the API, a WebSocket's connect and the
live connections' periodic session check (live.consumers). The middleware checks the
two times again on every request, whatever the session engine.

The idle deadline moves on at most once per ACTIVITY_RESOLUTION, not on every request (which
would write the session on every request): a session may end up to that much before its idle
timeout, never after. Requests a page makes by itself, a live region re-fetched because an
event came (header `Parcours-Live-Refresh`, web/static/web/live.js), are not activity: a
screen left open ends its session as one left alone does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY, logout
from django.contrib.auth.signals import user_logged_in
from django.contrib.sessions.backends.base import SessionBase
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

LOGIN_AT = "parcours_login_at"  # POSIX seconds
ACTIVE_AT = "parcours_active_at"
ACTIVITY_RESOLUTION = 60.0  # seconds
LIVE_REFRESH_HEADER = "HTTP_PARCOURS_LIVE_REFRESH"


def _limits() -> tuple[float, float]:
    idle: dt.timedelta = settings.SESSION_IDLE_TIMEOUT
    absolute: dt.timedelta = settings.SESSION_ABSOLUTE_TIMEOUT
    return idle.total_seconds(), absolute.total_seconds()


def _extend(session: SessionBase, login_at: float, now: float) -> None:
    idle, absolute = _limits()
    session[ACTIVE_AT] = now
    ends = min(now + idle, login_at + absolute)
    session.set_expiry(dt.datetime.fromtimestamp(ends, tz=dt.UTC))


@receiver(user_logged_in, dispatch_uid="parcours-session-lifetime")
def session_started(sender: Any, request: HttpRequest | None, **kwargs: Any) -> None:
    """Every login (the login page, the admin's, a test client's) starts both clocks."""
    session = getattr(request, "session", None)
    if session is None:
        return
    now = timezone.now().timestamp()
    session[LOGIN_AT] = now
    _extend(session, now, now)


def session_expired(session: SessionBase, now: float) -> bool:
    """Whether a signed-in session is past one of its limits. A session without the login
    time (opened before these limits existed) counts as expired."""
    login_at, active_at = session.get(LOGIN_AT), session.get(ACTIVE_AT)
    if not isinstance(login_at, int | float) or not isinstance(active_at, int | float):
        return True
    idle, absolute = _limits()
    return now >= login_at + absolute or now >= active_at + idle


class SessionLifetimeMiddleware:
    """After AuthenticationMiddleware: logs out a session past its limits before the view
    runs (the request goes on anonymous), and moves the idle deadline on."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = request.session
        if SESSION_KEY in session:
            now = timezone.now().timestamp()
            if session_expired(session, now):
                logout(request)
            elif (
                now - float(session[ACTIVE_AT]) >= ACTIVITY_RESOLUTION
                and LIVE_REFRESH_HEADER not in request.META
            ):
                _extend(session, float(session[LOGIN_AT]), now)
        return self.get_response(request)
