"""Pages of one logged-in session loaded at the same time, on the server `make run` starts
(`run_embedded`: uvicorn with its request threads, a Celery worker and beat) with DEBUG on,
as a newcomer runs it: on the embedded SQLite file, and on PostgreSQL. While DEBUG records
queries, requests in different threads once closed each other's database cursors: 500s,
then the web process died of a segmentation fault. Every answer must be a 200 (a task action,
its redirect), and the server must still be running afterwards."""

from __future__ import annotations

import contextlib
import os
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

import psycopg
import pytest
import requests

from tests.integration.conftest import free_port, wait_until
from tests.integration.processes import Practice, log_in, prepare, start, stop

BURSTS = 5
AT_ONCE = 8


@dataclass
class EmbeddedServer:
    url: str
    process: Popen[bytes]
    log: Path
    practice: Practice

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _postgres_admin_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://... (CI does)")
    return url


@contextlib.contextmanager
def _database(backend: str, var: Path) -> Iterator[dict[str, str]]:
    """The environment of a server on a database of its own: the embedded SQLite file in
    `var`, or a PostgreSQL database created here and dropped afterwards."""
    if backend == "sqlite":
        yield {}
        return

    admin = _postgres_admin_url()
    name = f"parcours_concurrency_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {"DATABASE_URL": admin.rsplit("/", 1)[0] + "/" + name}
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def embedded_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EmbeddedServer]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SECRET_KEY")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",  # what `make run` uses
        DEBUG="true",
        PARCOURS_VAR_DIR=str(tmp_path / "var"),
        LOG_LEVEL="WARNING",
    )
    with _database(request.param, tmp_path / "var") as database:
        env.update(database)
        practice = prepare(env)
        port = free_port()
        log = tmp_path / "run_embedded.log"
        process = start(["manage.py", "run_embedded", "--port", str(port)], env, log)
        server = EmbeddedServer(f"http://127.0.0.1:{port}", process, log, practice)
        try:
            wait_until(lambda: _healthy(server), 90, "run_embedded answering /health/")
            yield server
        finally:
            stop(process)


def _healthy(server: EmbeddedServer) -> bool:
    if server.process.poll() is not None:
        raise AssertionError(f"run_embedded exited: {server.log_text()[-3000:]}")
    with contextlib.suppress(requests.RequestException):
        return requests.get(server.url + "/health/", timeout=2).status_code == 200
    return False


@pytest.mark.slow
def test_pages_of_one_session_loaded_at_once_all_answer_and_the_server_survives(
    embedded_server: EmbeddedServer,
):
    server, practice = embedded_server, embedded_server.practice
    session = log_in(server.url, practice.gp)
    assert session.get(server.url + "/", timeout=10).url.endswith("/worklist/")
    patients = [f"/patients/{pk}/" for pk in practice.patients]
    tasks = [f"/tasks/{pk}/" for pk in practice.tasks]
    key, version = practice.pathway
    pages = ["/worklist/", "/alerts/", "/triage/", "/pathways/", f"/pathways/{key}/{version}/",
             *patients,
             *tasks[:4]]  # fmt: skip
    task_id = practice.tasks[0]
    csrf = session.cookies["csrftoken"]

    def load(path: str) -> tuple[str, int]:
        try:
            return path, session.get(server.url + path, timeout=30).status_code
        except requests.ConnectionError:
            return path, 0  # no answer: the server went away

    def act(action: str) -> tuple[str, int]:
        detail = session.get(f"{server.url}/tasks/{task_id}/", timeout=30).text
        version = re.search(r'name="version" value="(\d+)"', detail)
        answer = session.post(
            f"{server.url}/tasks/{task_id}/act/",
            data={"action": action, "version": version[1] if version else "",
                  "csrfmiddlewaretoken": csrf},
            headers={"Referer": f"{server.url}/tasks/{task_id}/"},
            allow_redirects=False,
            timeout=30,
        )  # fmt: skip
        return f"{action} {task_id}", answer.status_code

    answers: list[tuple[str, int]] = []
    with ThreadPoolExecutor(AT_ONCE) as pool:
        for burst in range(BURSTS):
            loads = [pool.submit(load, path) for path in pages]
            # A task action submitted while the pages load, as from another tab.
            loads.append(pool.submit(act, "claim" if burst % 2 == 0 else "release"))
            answers += [future.result() for future in loads]
    time.sleep(0.5)  # a crash after the last answer would show now

    failed = [(what, status) for what, status in answers if status not in (200, 302)]
    assert failed == [], server.log_text()[-4000:]
    assert {status for what, status in answers if what.startswith(("claim", "release"))} == {302}
    assert len(answers) == BURSTS * (len(pages) + 1)
    assert server.process.poll() is None, server.log_text()[-4000:]
    assert "exited with status" not in server.log_text()
    assert "Internal Server Error" not in server.log_text()
