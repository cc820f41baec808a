"""Writing rows by statements written once per process, for the writes on every request's
path (a task action: its history, its event, its audit record; the relay's marks).

Django's `save`, `create`, `bulk_create` and `bulk_update` build their SQL anew on each call:
for the handful of rows of a request that costs more Python than PostgreSQL spends on them.
Here the text of each statement is made once per model and shape, from the models' metadata
(only quoted names go into it, every value is a parameter), and values are prepared for the
database by their fields exactly as the ORM prepares them. Signals are not sent, so a model
with save signal receivers is refused: it must be written with the ORM.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import NOT_PROVIDED, Field, JSONField, Model
from django.db.models.signals import post_save, pre_save

from core.sql.cursors import kept_cursor
from core.sql.statements import statement


def rows_insert(objs: Sequence[Model]) -> None:
    """Insert `objs` (new instances of one model with an automatic primary key) in one
    statement, in the caller's transaction, and give each its primary key, as `bulk_create`
    does. Fields are prepared as on save: `auto_now_add` and `auto_now` set, values adapted."""
    if not objs:
        return
    model = type(objs[0])
    if any(type(obj) is not model for obj in objs):
        raise ValueError("rows_insert takes instances of one model")
    _refuse_save_receivers(model)
    fields = _insert_fields(model)
    params: list[Any] = []
    for obj in objs:
        if obj.pk is not None:
            raise ValueError(f"{model._meta.label} #{obj.pk} already has a primary key")
        params.extend(
            field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields
        )
    with kept_cursor() as cursor:
        cursor.execute(_insert_sql(model, len(objs)), params)
        keys = cursor.fetchall()
    for obj, (pk,) in zip(objs, keys, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias


def rows_insert_columns(
    model: type[Model], *, shared: Mapping[str, Any], varying: Mapping[str, Sequence[Any]]
) -> int:
    """Insert rows of `model` that differ only in the fields of `varying` (a list of values
    each, one per row, all of one length) in one statement, in the caller's transaction;
    every other field takes its value in `shared`, else its default. Returns the number of
    rows; their keys are not read. Varying fields are JSON fields, or fields whose values
    are text, integers or None.

    On PostgreSQL the statement's text does not depend on the number of rows: the varying
    values are sent as one JSON array of rows, which the statement takes apart
    (`jsonb_array_elements`), so it is parsed and planned once per process (prepared after
    DATABASE_PREPARE_THRESHOLD uses) and its values are encoded by one `json.dumps`, where
    a VALUES list of a hundred rows is a new statement of a thousand parameters each time,
    each adapted on its own, which costs more than the rows (a page of the worklist writes
    one audit record per patient: 27 ms for 100 of them that way, about 5 ms this way).
    Elsewhere (SQLite), rows_insert. Fields are prepared as on save (`auto_now_add` and
    `auto_now` set, values adapted)."""
    counts = {len(values) for values in varying.values()}
    if len(counts) != 1:
        raise ValueError("rows_insert_columns takes varying lists of one length")
    (count,) = counts
    if count == 0:
        return 0
    _refuse_save_receivers(model)
    fields = _insert_fields(model)
    names = {f.name for f in fields} | {f.attname for f in fields}
    unknown = (set(shared) | set(varying)) - names
    if unknown or set(shared) & set(varying):
        raise ValueError(f"{model._meta.label}: unknown or repeated fields {sorted(unknown)}")
    if connection.vendor != "postgresql":
        objs = [
            model(**shared, **{name: values[i] for name, values in varying.items()})
            for i in range(count)
        ]
        for start in range(0, count, _VALUES_CHUNK):
            rows_insert(objs[start : start + _VALUES_CHUNK])
        return count
    varies = [f for f in fields if f.name in varying or f.attname in varying]
    probe = model(**shared)
    params: list[Any] = [
        field.get_db_prep_save(field.pre_save(probe, True), connection)
        for field in fields
        if field not in varies
    ]
    columns = [varying[f.name if f.name in varying else f.attname] for f in varies]
    for field, values in zip(varies, columns, strict=True):
        if isinstance(field, JSONField):
            if field.encoder is not None:
                raise ValueError(f"{model._meta.label}.{field.name}: a JSON encoder of its own")
        elif not all(
            value is None or (isinstance(value, str | int) and not isinstance(value, bool))
            for value in values
        ):
            raise ValueError(f"{model._meta.label}.{field.name}: text, integers or None only")
    params.append(json.dumps([list(row) for row in zip(*columns, strict=True)]))
    with kept_cursor() as cursor:
        cursor.execute(_json_rows_sql(model, tuple(f.attname for f in varies)), params)
    return count


def _refuse_save_receivers(model: type[Model]) -> None:
    """Writing `model` here would skip its save signal receivers: refuse it, loudly."""
    if pre_save.has_listeners(model) or post_save.has_listeners(model):
        raise ImproperlyConfigured(
            f"{model._meta.label} has save signal receivers, which rows_insert and rows_update "
            "do not send: write it with the ORM"
        )


# Rows per VALUES statement where rows_insert_columns falls back on rows_insert: SQLite caps
# the parameters of one statement.
_VALUES_CHUNK = 500


@statement
def _json_rows_sql(model: type[Model], varying: tuple[str, ...]) -> str:
    quote = connection.ops.quote_name
    fields = _insert_fields(model)
    position = {name: i for i, name in enumerate(varying)}

    def value(field: Field[Any, Any]) -> str:
        # Every value cast to its column's type: an untyped NULL would be taken for text.
        if field.attname not in position:
            return f"%s::{field.db_type(connection)}"
        if isinstance(field, JSONField):
            return f"r.value->{position[field.attname]}"
        return f"(r.value->>{position[field.attname]})::{field.db_type(connection)}"

    columns = ", ".join(quote(f.column) for f in fields)
    selected = ", ".join(value(f) for f in fields)
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "  # noqa: S608 (quoted names)
        f"SELECT {selected} FROM jsonb_array_elements(%s::jsonb) AS r"
    )


@functools.cache
def _insert_fields(model: type[Model]) -> tuple[Field[Any, Any], ...]:
    meta = model._meta
    if meta.auto_field is None or meta.parents:
        raise ValueError(f"{meta.label}: rows_insert needs an automatic key and no parent model")
    fields = tuple(
        f for f in meta.local_concrete_fields if f is not meta.auto_field and not f.generated
    )
    if any(f.db_default is not NOT_PROVIDED for f in fields):  # the database would fill those
        raise ValueError(f"{meta.label}: rows_insert does not handle database defaults")
    return fields


@statement
def _insert_sql(model: type[Model], count: int) -> str:
    quote = connection.ops.quote_name
    fields = _insert_fields(model)
    columns = ", ".join(quote(f.column) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    pk = model._meta.pk
    assert pk is not None
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "  # noqa: S608 (quoted names)
        f"VALUES {', '.join([row] * count)} RETURNING {quote(pk.column)}"
    )


def rows_update(objs: Sequence[Model], fields: Sequence[str]) -> None:
    """Write `fields` of each of `objs` (saved rows of one model) to the database, by primary
    key, in the caller's transaction: one prepared UPDATE per row, sent together (psycopg
    pipelines `executemany`). No other column is touched."""
    if not objs:
        return
    model = type(objs[0])
    if any(type(obj) is not model for obj in objs):
        raise ValueError("rows_update takes instances of one model")
    _refuse_save_receivers(model)
    concrete = _update_fields(model, tuple(fields))
    params = [
        [field.get_db_prep_save(getattr(obj, field.attname), connection) for field in concrete]
        + [obj.pk]
        for obj in objs
    ]
    with kept_cursor() as cursor:
        sql = _update_sql(model, tuple(fields))
        if len(params) == 1:
            cursor.execute(sql, params[0])
        else:
            cursor.executemany(sql, params)


@functools.cache
def _update_fields(model: type[Model], fields: tuple[str, ...]) -> tuple[Field[Any, Any], ...]:
    meta = model._meta
    concrete: list[Field[Any, Any]] = []
    for name in fields:
        field = meta.get_field(name)
        if not isinstance(field, Field) or not field.concrete:
            raise ValueError(f"{meta.label}.{name} is not a column")
        concrete.append(field)
    return tuple(concrete)


@statement
def _update_sql(model: type[Model], fields: tuple[str, ...]) -> str:
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in _update_fields(model, fields))
    pk = model._meta.pk
    assert pk is not None
    return (
        f"UPDATE {quote(model._meta.db_table)} SET {assignments} "  # noqa: S608 (quoted names)
        f"WHERE {quote(pk.column)} = %s"
    )
