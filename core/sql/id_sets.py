"""`column IN (ids)` for a set of ids already read into Python.

The worklists filter tasks by sets of patients (those the user may see, those whose care
team they play a role in). Written as subqueries, PostgreSQL joins them to the tasks and
can no longer walk the tasks in worklist order and stop at the page's end; given as a
constant array, the same sets become hashed filters on an ordered index scan.

On PostgreSQL the array is written into the statement (`= ANY('{1,2,3}'::bigint[])`), not
bound as a parameter. Statements are prepared by the server once run
DATABASE_PREPARE_THRESHOLD times, and a prepared statement soon runs a generic plan, made
without its parameters' values: for `= ANY($1)` the planner then assumes an array of ten
elements, reads the tasks of those few patients through `task_patient_status` and sorts
them, which for a nurse seeing 3000 patients is 2400 rows sorted instead of 101 walked
(22 ms against 3 ms on the worklist benchmark's data). Written into the text, the set is
part of the statement: any plan of it, generic or not, is made knowing the set. The text
holds only the integers formatted here. Elsewhere (SQLite, for development) the ids go as an
`IN` list of parameters.
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
            return f"{column} = ANY('{_array_literal(self.ids)}'::bigint[])", tuple(params)
        placeholders = ", ".join(["%s"] * len(self.ids))
        return f"{column} IN ({placeholders})", (*params, *self.ids)

    def __repr__(self) -> str:
        return f"InIds({self.column!r}, {len(self.ids)} ids)"


def _array_literal(ids: list[int]) -> str:
    """The array's text form, from ints only (`__init__` made them so): nothing to quote."""
    return "{" + ",".join(map(str, ids)) + "}"
