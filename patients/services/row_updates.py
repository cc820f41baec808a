"""Writing different values to each of a few rows: one prepared UPDATE per row, sent together
(psycopg pipelines `executemany`), instead of Django's bulk_update, whose CASE WHEN
expression per field and row costs milliseconds of Python to build for a handful of rows.
Used on the relay's hot path (outbox positions, audit chaining)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.db.models import Field, Model


def rows_update(objs: Sequence[Model], fields: Sequence[str]) -> None:
    """Write `fields` of each of `objs` (saved rows of one model) to the database, by primary
    key, in the caller's transaction. Signals are not sent and no other column is touched."""
    if not objs:
        return
    meta = type(objs[0])._meta
    concrete: list[Field[Any, Any]] = []
    for name in fields:
        field = meta.get_field(name)
        if not isinstance(field, Field) or not field.concrete:
            raise ValueError(f"{meta.label}.{name} is not a column")
        concrete.append(field)
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in concrete)
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608 (quoted names)
    params = [
        [field.get_db_prep_save(getattr(obj, field.attname), connection) for field in concrete]
        + [obj.pk]
        for obj in objs
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
