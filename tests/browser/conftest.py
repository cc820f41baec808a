"""Browser tests: Playwright driving Debian's Chromium against a real uvicorn process (HTTP
and the `/ws/updates/` WebSocket) serving the test database. The server runs with the
in-memory channel layer and its own embedded relay, so it needs no Redis of its own; its
database is the test database (PostgreSQL when DATABASE_URL is set, else the SQLite file).
It runs with DEBUG on, as `make run` does (queries are recorded, errors would show Django's
debug page), and every test ends by checking that the server answered no request with a
5xx and is still running.

Skipped with a reason when Chromium or the playwright package is missing (CI installs both).
Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, connections

from tests.coordination.conftest import care_test, scene

__all__ = ["care_test", "scene"]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
AXE = ROOT / "web" / "static" / "vendor" / "axe.min.js"
PASSWORD = "synthetic-browser-pass"  # throwaway accounts of the test database
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class LiveServer:
    """uvicorn serving the test database, in a process of its own; `stop` and `start`
    take it down and bring it back on the same address (a real connection loss for the
    browser's WebSocket)."""

    url: str
    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "uvicorn", "config.asgi:application",
                    "--host", "127.0.0.1", "--port", str(self.port),
                    "--lifespan", "on",  # with the access log: each answer's status
                ],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        wait_until(self.answers, 90, f"uvicorn on port {self.port}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
        if connection.vendor == "postgresql":
            # The server's sessions end a moment after it exits; the test database can be
            # flushed and dropped only once they are gone. (This process's own pooled
            # connections stay: they are not the server's.)
            wait_until(lambda: _server_sessions() == 0, 15, "the server's database sessions")

    def server_errors(self) -> list[str]:
        """The requests the server answered with a 5xx, from its access log."""
        return SERVER_ERROR.findall(self.log.read_text(errors="replace"))

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def answers(self) -> bool:
        try:
            urllib.request.urlopen(self.url + "/login/", timeout=1)
        except urllib.error.HTTPError:
            return True
        except OSError:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"uvicorn exited: {self.log.read_text()[-3000:]}") from None
            return False
        return True


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        host = db["HOST"] or "127.0.0.1"
        return f"postgres://{db['USER']}@{host}:{db['PORT'] or 5432}/{db['NAME']}"
    name = str(db["NAME"])
    if connection.vendor == "sqlite" and "memory" not in name and not name.startswith("file:"):
        return f"sqlite:///{name}"
    pytest.skip("the browser tests need a database a second process can open")


@pytest.fixture
def browser_available() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"needs Chromium at {CHROMIUM} (apt-get install chromium; CI installs it)")
    try:
        import playwright  # noqa: F401, PLC0415 - optional dependency, skipped without it
    except ImportError:
        pytest.skip("needs the playwright package (requirements-dev.txt)")


@pytest.fixture
def app_server(
    browser_available: None, transactional_db: None, tmp_path: Path
) -> Iterator[LiveServer]:
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("REDIS_URL", "CELERY_BROKER_URL")
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": _database_url(),
            "SECRET_KEY": settings.SECRET_KEY,
            "DEBUG": "true",  # as `make run`
            "LIVE_RELAY_EMBEDDED": "true",
            "LIVE_RELAY_POLL_SECONDS": "0.02",
            "LOG_LEVEL": "WARNING",
            "PGAPPNAME": SERVER_APPLICATION_NAME,  # names the server's PostgreSQL sessions
        }
    )
    server = LiveServer(f"http://127.0.0.1:{port}", port, env, tmp_path / "uvicorn.log")
    try:
        server.start()
        yield server
        # A test that stopped the server without starting it again has nothing to check.
        assert server.process is None or server.running(), (
            f"the server died during the test: {server.log.read_text()[-3000:]}"
        )
        assert server.server_errors() == [], server.log.read_text()[-3000:]
    finally:
        server.stop()


@pytest.fixture
def live_url(app_server: LiveServer) -> str:
    return app_server.url


SERVER_APPLICATION_NAME = "parcours-browser-test-server"
# uvicorn's access log: `127.0.0.1:5555 - "GET /worklist/ HTTP/1.1" 500 Internal Server Error`
SERVER_ERROR = re.compile(r'"([A-Z]+ \S+) HTTP/[\d.]+" (5\d\d)')


def _server_sessions() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = %s",
            [SERVER_APPLICATION_NAME],
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


@pytest.fixture
def browser(browser_available: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - optional dependency

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still plain synchronous code, which Django would otherwise refuse here.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield instance
        instance.close()
        # ORM calls made while Playwright's loop runs in this thread get a connection of
        # their own; close it here, or it would keep the test database from being dropped.
        connections.close_all()


def log_in(browser: Any, base: str, username: str, *, viewport: dict[str, int] = DESKTOP) -> Any:
    """A new browser context logged in through the login form; returns its page. The page
    keeps the Content-Security-Policy violations the browser reports in `csp_violations`."""
    context = browser.new_context(viewport=viewport, locale="fr-FR")
    page = context.new_page()
    watch_csp(page)
    page.goto(base + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_load_state("networkidle")
    return page


def watch_csp(page: Any) -> None:
    """Record on `page.csp_violations` what the browser refused under the page's policy."""
    page.csp_violations = []
    page.on(
        "console",
        lambda message: (
            page.csp_violations.append(message.text)
            if "Content Security Policy" in message.text
            else None
        ),
    )


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations on the page as it stands. axe-core is loaded
    from the site's own static files (web/static/vendor), as the page's policy allows: a
    script injected inline would be refused."""
    origin = re.match(r"https?://[^/]+", page.url)
    assert origin is not None
    page.add_script_tag(url=f"{origin[0]}/static/vendor/{AXE.name}")
    result = page.evaluate("async () => await axe.run(document)")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
