"""PostgreSQL specifics shared by the engine's selectors and services."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections


class _Local(threading.local):
    # One cursor per thread, reused while the thread's connection stays the same: creating a
    # psycopg cursor for each statement cost more than some of the statements themselves.
    cursor: psycopg.Cursor[Any] | None = None


_local = _Local()


class prepared_cursor:  # lower case: used like the function it replaced
    """A server-side-binding cursor on Django's current connection, inside its transaction,
    on which `execute(..., prepare=True)` prepares the statement on its first run.

    The statements of a transition run thousands of times per connection: prepared, they are
    planned once. Django's own queries are prepared only once they ran
    DATABASE_PREPARE_THRESHOLD times (config.settings); with the threshold at 0 nothing is
    prepared, these statements neither (psycopg ignores `prepare=True` then), which is what a
    connection pooler that cannot track prepared statements needs.

    Errors come out as Django's exception types, and Django learns when the connection broke.
    """

    __slots__ = ("_errors",)

    def __enter__(self) -> psycopg.Cursor[Any]:
        wrapper = connections[DEFAULT_DB_ALIAS]
        if wrapper.connection is None:
            wrapper.ensure_connection()
        raw = wrapper.connection
        assert isinstance(raw, psycopg.Connection)
        cursor = _local.cursor
        if cursor is None or cursor.connection is not raw:
            cursor = _local.cursor = psycopg.Cursor(raw)
        self._errors = wrapper.wrap_database_errors
        self._errors.__enter__()
        return cursor

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._errors.__exit__(exc_type, exc_value, traceback)
