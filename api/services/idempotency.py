"""Idempotency keys: a retried POST gets the first response and does nothing again.

The caller runs the whole request in one transaction: `idempotency_claim` inserts a
placeholder row (a concurrent request with the same key waits on the unique index until the
first one commits, then sees its stored response), the request does its work, and
`idempotency_store` records the response in the same transaction. If the work fails, the
placeholder rolls back with it and a retry runs again.
"""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import Field
from django.utils import timezone
from django.utils.translation import gettext as _

from api.models import IdempotencyRecord
from core.errors import Conflict, InvalidInput, Problem
from core.sql import column, kept_cursor, statement, table

MAX_KEY = 255


class IdempotencyConflict(Conflict):
    """The Idempotency-Key was used for another request, or its first request is still
    running: a 409 of its own problem type, so that a client tells it from a stale version."""


def idempotency_claim(*, owner: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
    """The stored record to replay, or None after claiming `key` for this request.

    Raises InvalidInput for an unusable key, Conflict when the key was used for another
    request (different fingerprint) or is held by a request that failed to store a response.
    """
    if not key or len(key) > MAX_KEY or not key.isprintable():
        raise InvalidInput(
            [Problem("Idempotency-Key", _("1 to %(n)d printable characters") % {"n": MAX_KEY})]
        )
    if _claim(owner, key, fingerprint):
        return None
    record = IdempotencyRecord.objects.select_for_update().get(owner=owner, key=key)
    if record.fingerprint != fingerprint:
        raise IdempotencyConflict(
            _("this Idempotency-Key was already used for a different request")
        )
    if record.status_code is None:
        raise IdempotencyConflict(_("a request with this Idempotency-Key is still in progress"))
    return record


def _prepared(name: str, value: Any) -> Any:
    """`value` as the ORM sends it to the database for the field `name`."""
    field = IdempotencyRecord._meta.get_field(name)
    assert isinstance(field, Field)
    return field.get_db_prep_save(value, connection)


def _claim(owner: str, key: str, fingerprint: str) -> bool:
    """Insert the placeholder row unless the key is taken; whether it was inserted. With ON
    CONFLICT DO NOTHING a concurrent holder of the key is waited for, as by a plain INSERT
    on the unique index, but a taken key does not fail the statement: no savepoint."""
    params = [
        owner,
        key,
        fingerprint,
        _prepared("headers", {}),
        _prepared("created_at", timezone.now()),
    ]
    with kept_cursor() as cursor:
        cursor.execute(_claim_sql(), params)
        return cursor.fetchone() is not None


@statement
def _claim_sql() -> str:
    model = IdempotencyRecord
    columns = ", ".join(
        column(model, name) for name in ("owner", "key", "fingerprint", "headers", "created_at")
    )
    return (
        f"INSERT INTO {table(model)} ({columns}) VALUES (%s, %s, %s, %s, %s) "  # noqa: S608
        f"ON CONFLICT ({column(model, 'owner')}, {column(model, 'key')}) DO NOTHING "
        f"RETURNING {column(model, 'pk')}"
    )


def idempotency_store(
    *, owner: str, key: str, status_code: int, body: Any, headers: dict[str, str]
) -> None:
    """Keep the answer given under the claimed key, for its replays."""
    params = [status_code, _prepared("body", body), _prepared("headers", headers), owner, key]
    with kept_cursor() as cursor:
        cursor.execute(_store_sql(), params)


@statement
def _store_sql() -> str:
    model = IdempotencyRecord
    status, body, headers, owner, key = (
        column(model, name) for name in ("status_code", "body", "headers", "owner", "key")
    )
    return (
        f"UPDATE {table(model)} SET {status} = %s, {body} = %s, {headers} = %s "  # noqa: S608
        f"WHERE {owner} = %s AND {key} = %s"
    )


def idempotency_release(*, owner: str, key: str) -> None:
    """Forget a claim whose request was refused, so that a corrected retry can run."""
    IdempotencyRecord.objects.filter(owner=owner, key=key, status_code__isnull=True).delete()
