"""The embedded default's SQLite connections refuse any use from a thread other than the one
that opened them, in the sqlite3 module itself (core/backends/sqlite3): a cursor closed from
a second thread while its own thread used it crashed the process (a use after free in the
module), where it is now an exception in the thread that tried."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from django.db.utils import ConnectionHandler

from config.settings.base import SQLITE_ENGINE, SQLITE_OPTIONS, database_settings


def sqlite_connection(folder: Path) -> Any:
    """A connection of the project's SQLite backend to a file of its own, whatever database
    the suite runs on."""
    handler = ConnectionHandler(
        {"default": {"ENGINE": SQLITE_ENGINE, "NAME": str(folder / "probe.sqlite3"),
                     "OPTIONS": SQLITE_OPTIONS}}
    )  # fmt: skip
    return handler["default"]


def test_a_cursor_used_from_another_thread_is_refused_not_shared(
    tmp_path: Path, django_db_blocker: Any
):
    wrapper = sqlite_connection(tmp_path)
    with django_db_blocker.unblock():  # a file of this test's own, not the test database
        wrapper.ensure_connection()
    cursor = wrapper.connection.cursor()  # sqlite3's own cursor, below Django's checks
    cursor.execute("SELECT 1")
    outcome: list[BaseException | None] = []

    def close_from_elsewhere() -> None:
        try:
            cursor.close()
            outcome.append(None)
        except BaseException as exc:  # recorded for the assertion below
            outcome.append(exc)

    thread = threading.Thread(target=close_from_elsewhere)
    thread.start()
    thread.join()

    assert len(outcome) == 1
    assert isinstance(outcome[0], sqlite3.ProgrammingError)
    assert "same thread" in str(outcome[0])
    assert cursor.fetchone() == (1,)  # untouched: its own thread still reads it
    wrapper.close()


def test_the_project_s_sqlite_backend_is_django_s_with_the_thread_check_on(tmp_path: Path):
    wrapper = sqlite_connection(tmp_path)

    params = wrapper.get_connection_params()

    assert params["check_same_thread"] is True
    assert wrapper.vendor == "sqlite"


@pytest.mark.parametrize("url", ["sqlite:////tmp/elsewhere.sqlite3", None])
def test_every_sqlite_database_uses_the_project_s_backend_and_options(url):
    config = database_settings(url)

    assert config["ENGINE"] == SQLITE_ENGINE
    assert config["OPTIONS"] == SQLITE_OPTIONS
