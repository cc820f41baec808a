"""PostgreSQL specifics shared by the engine's selectors and services."""

from __future__ import annotations

from typing import Any

import psycopg
from django.db import connection


def prepared_cursor() -> psycopg.Cursor[Any]:
    """A server-side-binding cursor on Django's current connection, inside its transaction.

    Django's own cursors bind parameters on the client, so PostgreSQL parses and plans every
    statement anew. The two statements of a transition run thousands of times per connection:
    as prepared statements they are planned once. (Behind a transaction-pooling proxy such as
    PgBouncer < 1.21, prepared statements need its `max_prepared_statements` setting.)
    """
    connection.ensure_connection()
    raw = connection.connection
    assert isinstance(raw, psycopg.Connection)
    return psycopg.Cursor(raw)
