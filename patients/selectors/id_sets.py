"""`column IN (ids)` for a set of ids already read into Python.

The worklists filter tasks by sets of patients (those the user may see, those whose care
team they play a role in). Written as subqueries, PostgreSQL joins them to the tasks and
can no longer walk the tasks in worklist order and stop at the page's end; given as a
constant array, the same sets become hashed filters on an ordered index scan. On
PostgreSQL the ids travel as one array parameter (`= ANY(%s::bigint[])`); elsewhere (SQLite, for
development) as an `IN` list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db.models import BooleanField, Expression, F


class InIds(Expression):
    """True where `column` is one of `ids`; false for every row when `ids` is empty."""

    conditional = True
    output_field = BooleanField()

    def __init__(self, column: str, ids: Iterable[int]) -> None:
        super().__init__()
        self.column: Any = F(column)
        self.ids = sorted({int(i) for i in ids})

    def get_source_expressions(self) -> list[Any]:
        return [self.column]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.column,) = exprs

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        column, params = compiler.compile(self.column)
        if not self.ids:
            return "1 = 0", ()
        if connection.vendor == "postgresql":
            # The array's text form: psycopg's list adaptation costs milliseconds of Python
            # for a few thousand ids.
            return f"{column} = ANY(%s::bigint[])", (*params, _array_text(self.ids))
        placeholders = ", ".join(["%s"] * len(self.ids))
        return f"{column} IN ({placeholders})", (*params, *self.ids)

    def __repr__(self) -> str:
        return f"InIds({self.column!r}, {len(self.ids)} ids)"


def _array_text(ids: list[int]) -> str:
    return "{" + ",".join(map(str, ids)) + "}"
