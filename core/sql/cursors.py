"""The one way to run a hand-written statement: a cursor kept per database connection.

Creating a cursor (Django's wrapper, and psycopg's cursor with its own copy of the
connection's adapters) cost a third of running a short statement, so the few statements on
every request's path reuse one. Each `kept_cursor()` is one use: what it must close is kept
on the instance, never shared between uses (two threads sharing a process-wide cursor once
closed each other's cursors, which crashed the SQLite module). The kept cursors live on the
connection's wrapper, which belongs to one thread: reusing one checks that this is that
thread, as creating a cursor does, and it is dropped when the connection changes.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, NotSupportedError, connections
from django.db.backends.base.base import BaseDatabaseWrapper


class kept_cursor:  # lower case: used like connection.cursor()
    """`with kept_cursor() as cursor:` as `with connection.cursor() as cursor:`, but the cursor
    is kept for the next statement on the same database connection instead of being closed.

    Django's checks still run on every statement (a broken transaction refuses it, errors
    become Django's). While queries are being recorded (DEBUG, tests counting queries) each
    statement gets a fresh recording cursor as usual, closed when the block ends.

    `kept_cursor(prepared=True)` (PostgreSQL only) gives psycopg's own cursor instead, on
    which `execute(sql, params, prepare=True)` prepares the statement on its first run: the
    statements of a transition run thousands of times per connection, and prepared they are
    planned once. With DATABASE_PREPARE_THRESHOLD at 0 (a pooler that cannot track prepared
    statements) psycopg prepares nothing, these statements neither. Errors still come out as
    Django's exception types, and Django learns when the connection broke; such statements
    are not recorded with Django's queries.
    """

    __slots__ = ("_errors", "_fresh", "_prepared")

    def __init__(self, *, prepared: bool = False) -> None:
        self._prepared = prepared
        self._fresh: Any = None
        self._errors: Any = None

    def __enter__(self) -> Any:
        db = connections[DEFAULT_DB_ALIAS]
        if self._prepared:
            return self._enter_prepared(db)
        if db.queries_logged:
            self._fresh = db.cursor()
            return self._fresh
        kept = getattr(db, "_kept_cursor", None)
        if kept is None or db.connection is None or kept[0] is not db.connection:
            cursor = db.cursor()  # connects if needed
            kept = db._kept_cursor = (db.connection, cursor)  # type: ignore[attr-defined]
        else:
            db.validate_thread_sharing()
        return kept[1]

    def _enter_prepared(self, db: BaseDatabaseWrapper) -> psycopg.Cursor[Any]:
        if db.vendor != "postgresql":
            raise NotSupportedError("prepared statements are for PostgreSQL")
        if db.connection is None:
            db.ensure_connection()
        else:
            db.validate_thread_sharing()
        raw = db.connection
        assert isinstance(raw, psycopg.Connection)
        cursor: psycopg.Cursor[Any] | None = getattr(db, "_kept_prepared_cursor", None)
        if cursor is None or cursor.connection is not raw:
            cursor = db._kept_prepared_cursor = psycopg.Cursor(raw)  # type: ignore[attr-defined]
        self._errors = db.wrap_database_errors
        self._errors.__enter__()
        return cursor

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._errors is not None:
            self._errors.__exit__(exc_type, exc_value, traceback)
        if self._fresh is not None:
            self._fresh.close()
