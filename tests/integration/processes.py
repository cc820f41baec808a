"""Servers that integration tests start as separate processes, on databases of their own:
the practice they serve (migrated and filled through the services), and a private
PostgreSQL cluster a test may stop and start (never the machine's own)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import ROOT, free_port, wait_until

PASSWORD = "synthetic-integration-pass"  # throwaway accounts of throwaway databases


@dataclass
class Practice:
    """What tests.integration.small_practice created."""

    gp: str
    nurse: str
    patients: list[int]
    tasks: list[int]
    pathway: tuple[str, int]
    gp_token: str


def prepare(env: dict[str, str], *, collect_static: bool = False) -> Practice:
    """Migrate the database `env` names and fill it with a small practice (and collect the
    static files, for production settings: set STATIC_ROOT in `env`)."""
    done = None
    commands = [["manage.py", "collectstatic", "--noinput"]] if collect_static else []
    for command in (
        *commands,
        ["manage.py", "migrate", "--noinput"],
        ["-m", "tests.integration.small_practice", PASSWORD],
    ):
        done = subprocess.run(
            [sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True,
            timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
    assert done is not None
    created = json.loads(done.stdout.strip().splitlines()[-1])
    return Practice(**{**created, "pathway": tuple(created["pathway"])})


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`python argv...` in a session of its own (stopped with its children by `stop`)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, *argv], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


def _postgres_bin() -> Path:
    found = shutil.which("pg_config")
    if found:
        bindir = subprocess.run(
            [found, "--bindir"], capture_output=True, text=True, check=True
        ).stdout.strip()
        if (Path(bindir) / "initdb").exists():
            return Path(bindir)
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    pytest.skip("needs PostgreSQL's server programs (initdb, pg_ctl) to start a private cluster")


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own, in a temporary folder, on a free port. Run as
    the `postgres` system user when the tests run as root (initdb refuses root)."""

    def __init__(self) -> None:
        self.bin = _postgres_bin()
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="parcours-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(
            [*self._as, str(self.bin / program), *args], capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                  "start")  # fmt: skip

    def stop(self) -> None:
        """As a crash or a network cut would: connections end at once."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(AssertionError):
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def log_in(url: str, username: str, password: str = PASSWORD) -> requests.Session:
    """A session logged in through the login form, as a browser does, carrying the CSRF
    token (header and Referer) for the unsafe requests that follow."""
    session = requests.Session()
    form = session.get(url + "/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token is not None
    answer = session.post(
        url + "/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token[1]},
        headers={"Referer": url + "/login/"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.status_code
    csrf = session.cookies.get("csrftoken")
    assert csrf is not None
    session.headers.update({"X-CSRFToken": csrf, "Referer": url + "/"})
    return session


def answers(url: str, timeout: float = 2.0) -> bool:
    with contextlib.suppress(requests.RequestException):
        requests.get(url, timeout=timeout)
        return True
    return False


__all__ = ["PASSWORD", "Practice", "PrivatePostgres", "answers", "log_in", "prepare", "start",
           "stop", "wait_until"]  # fmt: skip
