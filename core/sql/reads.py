"""Model instances from hand-written SQL, for the few reads on every request's path.

Building a query with the ORM costs about a millisecond of Python for a select_related of
three models, ten times the query itself; these reads run on every API request (the bearer
token, the practitioner behind the user, the task's keys). Here the statement's text is
written once per process and the rows are turned into instances as the ORM would: every
concrete column, the fields' database converters, and joined rows put in the instance's
related-object cache as select_related puts them (None for an absent one). Only table and
column names, from the models' metadata, go into the text; every value is a parameter.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Field, ForeignKey, Model

from core.sql.cursors import kept_cursor

M = TypeVar("M", bound=Model)
Converter = Callable[[Any, Any, Any], Any]


def select_list(model: type[Model], alias: str) -> str:
    """`alias.column, ...` of every concrete field of `model`, in the model's field order."""
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(f.column)}" for f in model._meta.concrete_fields)


def table(model: type[Model]) -> str:
    """The model's table name, quoted."""
    return connection.ops.quote_name(model._meta.db_table)


def column(model: type[Model], name: str) -> str:
    """The quoted column of the concrete field `name` ("pk" for the primary key)."""
    field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    if not isinstance(field, Field) or not field.concrete or field.column is None:
        raise ValueError(f"{model._meta.label}.{name} is not a column")
    return connection.ops.quote_name(field.column)


def key_in_range(model: type[Model], value: int) -> bool:
    """Whether `value` fits the model's integer primary key column. A key from a URL may not;
    the ORM answers such a lookup with no row, a written statement must not send it (SQLite
    refuses integers beyond 64 bits)."""
    low, high = connection.ops.integer_field_range(model._meta.pk.get_internal_type())
    return (low is None or value >= low) and (high is None or value <= high)


def related_model(model: type[Model], name: str) -> type[Model]:
    """The model the forward relation `name` of `model` points to."""
    field = model._meta.get_field(name)
    target = field.related_model
    if not (field.many_to_one or field.one_to_one) or not isinstance(target, type):
        raise ValueError(f"{model._meta.label}.{name} is not a forward relation")
    return target


class _Layout:
    """How one model's columns read: their number, where the primary key is, the field
    names, and the database converters of the columns that have any."""

    def __init__(self, model: type[Model]) -> None:
        fields: Sequence[Field[Any, Any]] = model._meta.concrete_fields
        self.count = len(fields)
        self.names = [f.attname for f in fields]
        self.pk_index = self.names.index(model._meta.pk.attname)
        self.converted: list[tuple[int, Any, tuple[Converter, ...]]] = []
        for index, field in enumerate(fields):
            column = field.get_col(model._meta.db_table)
            converters = tuple(
                connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            )
            if converters:
                self.converted.append((index, column, converters))


@functools.cache
def _layout(model: type[Model]) -> _Layout:
    return _Layout(model)


def from_row(model: type[M], row: Sequence[Any], start: int = 0) -> tuple[M | None, int]:
    """The instance of `model` read from `row[start:]` (as laid out by `select_list`), or
    None if its primary key is NULL (an outer join that found nothing), and where the next
    model's columns start."""
    layout = _layout(model)
    end = start + layout.count
    values = list(row[start:end])
    if values[layout.pk_index] is None:
        return None, end
    for index, column, converters in layout.converted:
        value = values[index]
        for convert in converters:
            value = convert(value, column, connection)
        values[index] = value
    return model.from_db(connection.alias, layout.names, values), end


def instances(model: type[M], sql: str, params: Sequence[Any]) -> list[M]:
    """The instances of `model` whose rows `sql` (selecting `select_list(model, ...)`) reads."""
    with kept_cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    found = (from_row(model, row)[0] for row in rows)
    return [instance for instance in found if instance is not None]


def any_row(sql: str, params: Sequence[Any] = ()) -> bool:
    """Whether `sql` reads a row (write it with LIMIT 1)."""
    with kept_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone() is not None


def locking(*, skip_locked: bool = False) -> str:
    """The clause that locks the rows read until the end of the transaction, where rows lock
    ("" on SQLite, whose IMMEDIATE transactions already serialise writers)."""
    features = connection.features
    if not features.has_select_for_update:
        return ""
    if skip_locked and features.has_select_for_update_skip_locked:
        return " FOR UPDATE SKIP LOCKED"
    return " FOR UPDATE"


def attach(instance: Model, field_name: str, related: Model | None) -> None:
    """Put `related` in `instance`'s cache of the forward relation `field_name`, as
    select_related does: reading the attribute then runs no query."""
    field = instance._meta.get_field(field_name)
    if not isinstance(field, ForeignKey):  # one-to-one fields are foreign keys too
        raise ValueError(f"{instance._meta.label}.{field_name} is not a forward relation")
    field.set_cached_value(instance, related)
