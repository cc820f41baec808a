"""Request rates of the API: per platform client, per user, per anonymous address.

Each is a fixed window counted in the shared cache (Redis in production: every web process
counts against the same limit; the embedded default's local memory serves its one web
process). A request beyond its rate is a 429 problem+json with Retry-After, the seconds
until the window turns (DRF's Throttled, mapped in api.problems). A fixed window costs one
counter per caller and window, whatever the rate, where DRF's own throttles keep and rewrite
the time of every request in the window (thousands a minute for a platform).

Rates (`API_THROTTLE_RATES`, from API_RATE_PLATFORM, API_RATE_USER, API_RATE_ANONYMOUS) are
"<count>/<second|minute|hour|day>".
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from oauth2_provider.models import AbstractAccessToken
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}  # second, minute, hour, day (as DRF reads them)


def parse_rate(rate: str) -> tuple[int, int]:
    """ "600/minute" (or 600/min, 600/m) -> (600, 60). ValueError naming the rate otherwise."""
    count, _, period = rate.partition("/")
    seconds = UNITS.get(period.strip().lower()[:1])
    if not count.strip().isdigit() or seconds is None:
        raise ValueError(f"{rate!r} is not a rate such as 600/minute")
    return int(count), seconds


class WindowThrottle(BaseThrottle):
    """At most the scope's rate of requests per window for one caller (`ident`); callers
    `ident` answers None for are not counted by this throttle."""

    scope = ""

    def __init__(self) -> None:
        self.limit, self.period = parse_rate(settings.API_THROTTLE_RATES[self.scope])
        self.retry_after: float | None = None

    def ident(self, request: Request) -> str | None:
        raise NotImplementedError

    def allow_request(self, request: Request, view: Any) -> bool:
        ident = self.ident(request)
        if ident is None:
            return True
        now = time.time()
        window = int(now // self.period)
        key = f"throttle:{self.scope}:{ident}:{window}"
        if cache.add(key, 1, self.period + 1):
            count = 1
        else:
            try:
                count = cache.incr(key)
            except ValueError:  # expired between the two calls: a new window
                cache.set(key, 1, self.period + 1)
                count = 1
        if count <= self.limit:
            return True
        self.retry_after = (window + 1) * self.period - now
        return False

    def wait(self) -> float | None:
        return self.retry_after


class PlatformClientThrottle(WindowThrottle):
    """Requests of one platform (OAuth2 client credentials), counted per client."""

    scope = "platform"

    def ident(self, request: Request) -> str | None:
        token = request.auth
        if isinstance(token, AbstractAccessToken) and token.application_id is not None:
            return str(token.application_id)
        return None


class UserThrottle(WindowThrottle):
    """Requests of one person (web session or personal token), counted per user."""

    scope = "user"

    def ident(self, request: Request) -> str | None:
        if isinstance(request.auth, AbstractAccessToken) or not request.user.is_authenticated:
            return None
        return str(request.user.pk)


class AnonymousThrottle(WindowThrottle):
    """Requests without credentials, counted per address (the proxy's X-Forwarded-For as
    uvicorn passes it on from a trusted proxy, else the peer's)."""

    scope = "anonymous"

    def ident(self, request: Request) -> str | None:
        if request.user.is_authenticated:
            return None
        return str(request.META.get("REMOTE_ADDR") or "unknown")
