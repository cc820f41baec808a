"""The database goes away under a production server and comes back: while it is away, API
requests answer 503 problem+json with Retry-After, web pages a plain 503 page and /health/ a
503, each within two seconds; once it is back, the server serves again by itself. The
database is a PostgreSQL cluster this test starts and stops (never the machine's own)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

import pytest
import requests

from tests.integration.conftest import free_port
from tests.integration.processes import (
    PASSWORD,
    Practice,
    PrivatePostgres,
    prepare,
    start,
    stop,
    wait_until,
)

ANSWER_WITHIN = 2.0


@dataclass
class Deployment:
    url: str
    database: PrivatePostgres
    server: Popen[bytes]
    log: Path
    practice: Practice


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    database = PrivatePostgres()
    try:
        database.start()
        env = {
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "SECRET_KEY": "synthetic-outage-test-secret-" + "x" * 40,
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",  # plain HTTP between this test and the server
            "DATABASE_URL": database.url,
            "PARCOURS_VAR_DIR": str(tmp_path / "var"),
            "STATIC_ROOT": str(tmp_path / "static"),
            "AUDIT_CHAIN_KEY": "synthetic-outage-test-audit-key-" + "k" * 32,
            "AUDIT_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
            "LIVE_RELAY_EMBEDDED": "false",
            "LOG_LEVEL": "WARNING",
            "EMAIL_URL": "smtp://smtp.example.org",
            "DEFAULT_FROM_EMAIL": "no-reply@example.org",
        }
        practice = prepare(env, collect_static=True)
        port = free_port()
        log = tmp_path / "uvicorn.log"
        server = start(
            ["-m", "uvicorn", "config.asgi:application", "--port", str(port), "--workers", "2"],
            env, log,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _status(url + "/health/") == 200, 60, "the server's /health/")
        try:
            yield Deployment(url, database, server, log, practice)
        finally:
            stop(server)
    finally:
        database.remove()


def _status(url: str) -> int:
    try:
        return requests.get(url, timeout=5).status_code
    except requests.RequestException:
        return 0


def timed(send: object) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = send()  # type: ignore[operator]
    return response, time.monotonic() - started


@pytest.mark.slow
def test_with_the_database_down_requests_answer_503_quickly_and_service_comes_back(
    deployment: Deployment,
):
    api = f"{deployment.url}/api/v1/tasks/?view=mine"
    token = {"Authorization": f"Token {deployment.practice.gp_token}"}
    https = {"X-Forwarded-Proto": "https"}  # as the proxy says; cookies are Secure
    login = requests.get(deployment.url + "/login/", headers=https, timeout=5)
    assert login.status_code == 200
    csrf = re.search(r"csrftoken=([^;]+)", login.headers["Set-Cookie"])  # Secure: not kept
    assert csrf is not None
    form = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
    assert form is not None
    assert requests.get(api, headers=token, timeout=5).status_code == 200

    def log_in() -> requests.Response:
        return requests.post(
            deployment.url + "/login/",
            data={"username": deployment.practice.gp, "password": PASSWORD,
                  "csrfmiddlewaretoken": form[1]},
            cookies={"csrftoken": csrf[1]},
            headers={**https, "Referer": "https://127.0.0.1/login/", "Host": "127.0.0.1"},
            allow_redirects=False, timeout=10,
        )  # fmt: skip

    deployment.database.stop()

    for _ in range(3):  # the first finds the pool's dead connections, the next an empty pool
        answer, took = timed(lambda: requests.get(api, headers=token, timeout=10))
        assert answer.status_code == 503, answer.text
        assert took < ANSWER_WITHIN
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert answer.json()["type"].endswith("/service-unavailable")
        assert answer.headers["Retry-After"] == "5"
    page, took = timed(log_in)
    assert page.status_code == 503
    assert took < ANSWER_WITHIN
    assert "Service momentanément indisponible" in page.text
    assert page.headers["Retry-After"] == "5"
    health, took = timed(lambda: requests.get(deployment.url + "/health/", timeout=10))
    assert health.status_code == 503
    assert took < ANSWER_WITHIN
    assert health.json()["checks"]["database"]["ok"] is False

    deployment.database.start()

    wait_until(lambda: _status(deployment.url + "/health/") == 200, 30, "health back to 200")
    # Each of the two workers has its own pool, which finds the database back on its own
    # schedule: one worker answering is not both. Ten answers in a row, spread over the
    # workers by the kernel, are.
    wait_until(
        lambda: all(
            requests.get(api, headers=token, timeout=10).status_code == 200 for _ in range(10)
        ),
        30, "the API serving again from every worker",
    )  # fmt: skip
    assert log_in().status_code == 302  # logged in
    assert deployment.server.poll() is None
