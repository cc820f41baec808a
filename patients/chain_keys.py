"""The keys of the audit chain: AUDIT_CHAIN_KEY chains new records, and it and the keys in
AUDIT_CHAIN_KEY_FALLBACKS verify them (see AuditEvent's docstring for the recipe, and
docs/audit.md for rotation).

The keys live in the environment, never in the database: whoever can rewrite the audit table
(its owner, a superuser) cannot recompute a record's hash without them. Each record names the
key that hashed it by the key's id, a fingerprint from which the key cannot be recovered, so
a verifier picks the right key without trying each, and a rotated-out key listed as a
fallback still verifies the records it hashed.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

KEY_ID_LENGTH = 16
MIN_KEY_LENGTH = 32
KEY_ID_MESSAGE = b"parcours audit chain key id"


def key_id(secret: bytes) -> str:
    """The id of a key: the first 16 hex digits of HMAC-SHA256(key, "parcours audit chain
    key id")."""
    return hmac.new(secret, KEY_ID_MESSAGE, hashlib.sha256).hexdigest()[:KEY_ID_LENGTH]


@dataclass(frozen=True)
class ChainKey:
    id: str
    secret: bytes = field(repr=False)

    def mac(self, message: bytes) -> str:
        """Lowercase hex HMAC-SHA256 of `message` under this key."""
        return hmac.digest(self.secret, message, "sha256").hex()


@dataclass(frozen=True)
class ChainKeys:
    current: ChainKey  # hashes new records, signs new checkpoints
    by_id: Mapping[str, ChainKey]  # the current key and every fallback

    def get(self, key_id: str) -> ChainKey | None:
        return self.by_id.get(key_id)


def chain_keys() -> ChainKeys:
    """The configured keys (ImproperlyConfigured naming the variable when one is missing or
    shorter than 32 characters)."""
    current = getattr(settings, "AUDIT_CHAIN_KEY", "") or ""
    fallbacks = tuple(getattr(settings, "AUDIT_CHAIN_KEY_FALLBACKS", ()) or ())
    return _chain_keys(current, fallbacks)


@functools.lru_cache(maxsize=8)
def _chain_keys(current: str, fallbacks: tuple[str, ...]) -> ChainKeys:
    if not current:
        raise ImproperlyConfigured("AUDIT_CHAIN_KEY is not set (docs/audit.md)")
    keys: list[ChainKey] = []
    for name, value in [("AUDIT_CHAIN_KEY", current)] + [
        ("AUDIT_CHAIN_KEY_FALLBACKS", fallback) for fallback in fallbacks
    ]:
        if len(value) < MIN_KEY_LENGTH:
            raise ImproperlyConfigured(
                f"{name}: a key must be at least {MIN_KEY_LENGTH} characters long "
                f"(one is {len(value)}); generate one with "
                '`python -c "import secrets; print(secrets.token_urlsafe(48))"`'
            )
        secret = value.encode("utf-8")
        keys.append(ChainKey(key_id(secret), secret))
    by_id: dict[str, ChainKey] = {}
    for key in reversed(keys):  # the current key wins a (most unlikely) clash of ids
        by_id[key.id] = key
    return ChainKeys(current=keys[0], by_id=by_id)
