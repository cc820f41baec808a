"""Idempotency keys: a retried POST gets the first response and does nothing again.

The caller runs the whole request in one transaction: `idempotency_claim` inserts a
placeholder row (a concurrent request with the same key waits on the unique index until the
first one commits, then sees its stored response), the request does its work, and
`idempotency_store` records the response in the same transaction. If the work fails, the
placeholder rolls back with it and a retry runs again.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from coordination.errors import Conflict, InvalidInput, Problem
from coordination.models import IdempotencyRecord

MAX_KEY = 255


def idempotency_claim(*, owner: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
    """The stored record to replay, or None after claiming `key` for this request.

    Raises InvalidInput for an unusable key, Conflict when the key was used for another
    request (different fingerprint) or is held by a request that failed to store a response.
    """
    if not key or len(key) > MAX_KEY or not key.isprintable():
        raise InvalidInput([Problem("Idempotency-Key", f"1 to {MAX_KEY} printable characters")])
    try:
        with transaction.atomic():
            IdempotencyRecord.objects.create(
                owner=owner, key=key, fingerprint=fingerprint, created_at=timezone.now()
            )
        return None
    except IntegrityError:
        pass
    record = IdempotencyRecord.objects.select_for_update().get(owner=owner, key=key)
    if record.fingerprint != fingerprint:
        raise Conflict("this Idempotency-Key was already used for a different request")
    if record.status_code is None:
        raise Conflict("a request with this Idempotency-Key is still in progress")
    return record


def idempotency_store(
    *, owner: str, key: str, status_code: int, body: Any, headers: dict[str, str]
) -> None:
    IdempotencyRecord.objects.filter(owner=owner, key=key).update(
        status_code=status_code, body=body, headers=headers
    )


def idempotency_release(*, owner: str, key: str) -> None:
    """Forget a claim whose request was refused, so that a corrected retry can run."""
    IdempotencyRecord.objects.filter(owner=owner, key=key, status_code__isnull=True).delete()
