"""PostgreSQL specifics shared by the engine's selectors and services."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections

# psycopg prepares a statement on its first `execute(..., prepare=True)` only while the
# connection's threshold is set; the value itself does not matter for our explicit requests.
_THRESHOLD = 1_000_000


class _Local(threading.local):
    # One cursor per thread, reused while the thread's connection stays the same: creating a
    # psycopg cursor for each statement cost more than some of the statements themselves.
    cursor: psycopg.Cursor[Any] | None = None


_local = _Local()


class prepared_cursor:  # lower case: used like the function it replaced
    """A server-side-binding cursor on Django's current connection, inside its transaction,
    on which `execute(..., prepare=True)` really prepares.

    Django's own cursors bind parameters on the client, so PostgreSQL parses and plans every
    statement anew. The statements of a transition run thousands of times per connection: as
    prepared statements they are planned once. Django opens its connections with psycopg's
    `prepare_threshold` unset, which turns `prepare=True` into a no-op, so it is set for the
    duration of our statements only: Django's own queries keep their behaviour. psycopg keeps
    track of what it prepared (and deallocates it after a rollback) whatever the threshold.
    (Behind a transaction-pooling proxy such as PgBouncer < 1.21, prepared statements need
    its `max_prepared_statements` setting.)

    Errors come out as Django's exception types, and Django learns when the connection broke.
    """

    __slots__ = ("_errors", "_raw", "_saved")

    def __enter__(self) -> psycopg.Cursor[Any]:
        wrapper = connections[DEFAULT_DB_ALIAS]
        if wrapper.connection is None:
            wrapper.ensure_connection()
        raw = wrapper.connection
        assert isinstance(raw, psycopg.Connection)
        cursor = _local.cursor
        if cursor is None or cursor.connection is not raw:
            cursor = _local.cursor = psycopg.Cursor(raw)
        self._raw = raw
        self._saved = raw.prepare_threshold
        if self._saved is None:
            raw.prepare_threshold = _THRESHOLD
        self._errors = wrapper.wrap_database_errors
        self._errors.__enter__()
        return cursor

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._raw.prepare_threshold = self._saved
        self._errors.__exit__(exc_type, exc_value, traceback)
