"""Short-lived, single-use tokens opening a live WebSocket connection for a user
authenticated over the API (an OAuth client, or a browser that prefers not to rely on the
session cookie): `POST /api/v1/live/tokens/` issues one, `/ws/updates/?token=...` spends it.

A token is signed (django.core.signing, SECRET_KEY), names the user and a random nonce, and
expires after LIVE_TOKEN_SECONDS. Spending it records the nonce in the cache until it would
have expired anyway, so a token copied from a log or a proxy cannot be replayed (the cache is
Redis when REDIS_URL is set, shared by every process).
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core import signing
from django.core.cache import cache

SALT = "parcours.live-token"


def live_token_issue(*, user: AbstractBaseUser) -> str:
    return signing.dumps({"u": user.pk, "n": secrets.token_urlsafe(16)}, salt=SALT)


def live_token_redeem(token: str) -> AbstractBaseUser | None:
    """The active user the token was issued to, or None: bad signature, expired, already
    spent, or the user is inactive."""
    max_age = int(getattr(settings, "LIVE_TOKEN_SECONDS", 60))
    try:
        data = signing.loads(token, salt=SALT, max_age=max_age)
    except signing.BadSignature:  # SignatureExpired is a BadSignature
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        return None
    if not cache.add(f"live-token-spent:{data.get('n')}", 1, timeout=max_age + 5):
        return None
    user: AbstractBaseUser | None = (
        get_user_model().objects.filter(pk=data["u"], is_active=True).first()
    )
    return user
