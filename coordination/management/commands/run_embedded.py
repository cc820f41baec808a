"""`python manage.py run_embedded`: the web server, a Celery worker and Celery beat, as child
processes of this one, for `make run` on a machine with no Redis (DESIGN.md, "Components").

SIGINT and SIGTERM are passed on to every child; if one child stops, the others are stopped
too and this command exits with that child's status, so a supervisor (or the person at the
terminal) sees the failure instead of a half-running system.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

GRACE_SECONDS = 10.0
POLL_SECONDS = 0.2


class Launcher:
    """Start `commands` (name -> argv), wait until one exits or a signal arrives, then stop
    all. Returns the exit status to use: the first child's that stopped on its own, else 0."""

    def __init__(
        self, commands: Mapping[str, Sequence[str]], *, grace: float = GRACE_SECONDS
    ) -> None:
        self.commands = dict(commands)
        self.grace = grace
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self._stopping = False

    def run(self) -> int:
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            for name, argv in self.commands.items():
                # argv is built by this module (embedded_commands), never from input.
                self.children[name] = subprocess.Popen(list(argv))  # noqa: S603
            status = self._wait()
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return status

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _wait(self) -> int:
        while not self._stopping:
            for name, child in self.children.items():
                code = child.poll()
                if code is not None:
                    sys.stderr.write(f"run_embedded: {name} exited with status {code}\n")
                    return code if code != 0 else 1
            time.sleep(POLL_SECONDS)
        return 0

    def stop(self) -> None:
        running = [c for c in self.children.values() if c.poll() is None]
        for child in running:
            child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for child in running:
            try:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def embedded_commands(host: str, port: int) -> dict[str, list[str]]:
    python = sys.executable
    schedule = str(settings.CELERY_BEAT_SCHEDULE_FILENAME)
    os.makedirs(os.path.dirname(schedule), exist_ok=True)
    return {
        "web": [
            python, "-m", "uvicorn", "config.asgi:application",
            "--host", host, "--port", str(port), "--no-access-log",
        ],
        # One process: the embedded SQLite file takes one writer at a time anyway.
        "worker": [
            python, "-m", "celery", "-A", "config.celery", "worker",
            "--pool", "solo", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
        ],
        "beat": [
            python, "-m", "celery", "-A", "config.celery", "beat",
            "--loglevel", "INFO", "--schedule", schedule,
        ],
    }  # fmt: skip


class Command(BaseCommand):
    help = "Serve the web application with a Celery worker and beat (the embedded default)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: Any, **options: Any) -> None:
        launcher = Launcher(embedded_commands(options["host"], options["port"]))
        status = launcher.run()
        if status:
            sys.exit(status)
