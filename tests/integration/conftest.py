"""Real servers for integration tests: a private redis-server and uvicorn processes serving
config.asgi on free ports, against the test database (which must be PostgreSQL: several
processes write to it at once). Every process started here is stopped here; the machine's
own Redis and PostgreSQL are never touched."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

# The coordination scene (a patient, a care team, a started pathway) is reused here.
from tests.coordination.conftest import care_test, scene  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class RedisServer:
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(self.answers, 15, f"redis-server on port {self.port}")

    def answers(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
            return True
        return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=15)
            self.process = None


class PausableProxy:
    """A TCP proxy to 127.0.0.1:`target` on a free port that the test can pause: while
    paused it forwards nothing either way (bytes wait in the kernel's buffers), as a network
    or a server that stalls. Every connection through it ends with `stop`."""

    def __init__(self, target: int) -> None:
        self.target, self.port = target, free_port()
        self.paused, self.stopping = threading.Event(), threading.Event()
        self.sockets: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.listener.settimeout(0.1)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while not self.stopping.is_set():
                if self.paused.is_set():
                    time.sleep(0.01)
                    continue
                ready, _, _ = select.select([source], [], [], 0.05)
                if not ready:
                    continue
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self.stopping.set()
        self.listener.close()
        for end in self.sockets:
            with contextlib.suppress(OSError):
                end.close()


@dataclass
class AsgiServer:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/updates/"

    def answers(self) -> bool:
        try:
            urllib.request.urlopen(self.http + "/api/v1/live/tokens/", timeout=0.5)
        except urllib.error.HTTPError:
            return True  # any HTTP answer: it is serving
        except OSError:
            if self.process.poll() is not None:
                raise AssertionError(f"uvicorn exited: {self.log.read_text()[-3000:]}") from None
            return False
        return True


@pytest.fixture
def postgres_servers(transactional_db: None) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: several server processes share the test database")
    if shutil.which("redis-server") is None:
        pytest.skip("needs the redis-server program to start a private Redis")


@pytest.fixture
def redis_server(postgres_servers: None, tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def asgi_servers(redis_server: RedisServer, tmp_path: Path) -> Iterator[Callable[..., AsgiServer]]:
    """Start uvicorn processes: `start(relay=True)`, optionally with another Redis address
    (a proxy in front of the private Redis) and more environment; all are stopped at the
    end."""
    started: list[AsgiServer] = []
    db = connection.settings_dict

    def start(
        *, relay: bool = True, redis_url: str | None = None, env: dict[str, str] | None = None
    ) -> AsgiServer:
        port = free_port()
        log = tmp_path / f"uvicorn-{port}.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": (
                f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
                f"/{db['NAME']}"
            ),
            "REDIS_URL": redis_url or redis_server.url,
            "SECRET_KEY": settings.SECRET_KEY,
            "LIVE_RELAY_EMBEDDED": "true" if relay else "false",
            "LIVE_RELAY_POLL_SECONDS": "0.02",
            "LIVE_ACCESS_CACHE_SECONDS": "1",
            "LIVE_SESSION_CHECK_SECONDS": "1",
            "LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable, "-m", "uvicorn", "config.asgi:application",
                    "--host", "127.0.0.1", "--port", str(port),
                    "--lifespan", "on", "--no-access-log",
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        server = AsgiServer(port, process, log)
        started.append(server)
        wait_until(server.answers, 60, f"uvicorn on port {port}")
        return server

    yield start
    for server in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGTERM)
    for server in started:
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=15)
