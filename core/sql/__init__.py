"""Hand-written SQL for the few statements on every request's path, and the one way to write it.

- `kept_cursor` runs a statement on a cursor kept per database connection (`prepared=True`
  for PostgreSQL's prepared statements);
- `statement` keeps each statement's text once written;
- `table`, `column` and `select_list` put names into the text, always quoted, always from the
  models' metadata; every value is a parameter;
- `instances`, `from_row`, `attach` turn rows into model instances as the ORM would;
- `rows_insert`, `rows_insert_columns`, `rows_update` write rows as the ORM would prepare
  them (no signals: a model with save receivers is refused);
- `InIds` filters a column by a set of ids already read into Python.

Everything else goes through the ORM. A statement belongs here only when a benchmark under
bench/ shows the ORM's cost on that path; docs/architecture.md says where such code lives.
"""

from core.sql.cursors import kept_cursor
from core.sql.id_sets import InIds
from core.sql.reads import (
    any_row,
    attach,
    column,
    from_row,
    instances,
    key_in_range,
    locking,
    related_model,
    select_list,
    table,
)
from core.sql.statements import statement, statements_clear
from core.sql.writes import rows_insert, rows_insert_columns, rows_update

__all__ = [
    "InIds",
    "any_row",
    "attach",
    "column",
    "from_row",
    "instances",
    "kept_cursor",
    "key_in_range",
    "locking",
    "related_model",
    "rows_insert",
    "rows_insert_columns",
    "rows_update",
    "select_list",
    "statement",
    "statements_clear",
    "table",
]
