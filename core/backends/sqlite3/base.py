"""Django's SQLite backend, with the sqlite3 module's own thread check left on.

Django opens SQLite connections with `check_same_thread=False` and checks thread sharing in
its own wrapper instead (`validate_thread_sharing`). That check guards Django's paths only: a
cursor reached any other way (a cursor kept by a helper, a raw `connection.connection`) can
then be used from a second thread, and the sqlite3 module is not safe for that. Closing a
cursor releases the interpreter lock while the statement is reset, so a close from a second
thread, while the owner steps the same statement or closes it too, finalizes a statement the
other thread still uses: a use after free, and the process dies of a segmentation fault
(seen under concurrent page loads, `tests/config/test_sqlite_threads.py` shows it). With the
check on, any such use is a `ProgrammingError` in the thread that tried it.

Every connection here belongs to one thread: Django keeps one per thread, a request's
synchronous code runs in one thread, and nothing in this project shares a connection.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params: dict[str, Any] = super().get_connection_params()
        params["check_same_thread"] = True
        return params
