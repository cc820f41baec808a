"""`run_embedded` (make run): children started together, stopped together."""

from __future__ import annotations

import os
import signal
import sys
import threading

from coordination.management.commands.run_embedded import Launcher, embedded_commands

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_when_one_child_exits_the_others_are_stopped_and_its_status_returned():
    launcher = Launcher(
        {"web": SLEEPER, "worker": [sys.executable, "-c", "raise SystemExit(3)"]}, grace=5
    )

    status = launcher.run()

    assert status == 3
    assert [child.poll() is not None for child in launcher.children.values()] == [True, True]
    assert launcher.children["web"].returncode == -signal.SIGTERM


def test_sigterm_to_the_launcher_stops_every_child():
    launcher = Launcher({"web": SLEEPER, "worker": SLEEPER, "beat": SLEEPER}, grace=5)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM))

    timer.start()
    status = launcher.run()

    assert status == 0
    assert not any(alive(child.pid) for child in launcher.children.values())


def test_embedded_commands_start_web_worker_and_beat_on_the_settings_schedule(settings):
    commands = embedded_commands("127.0.0.1", 8123)

    assert list(commands) == ["web", "worker", "beat"]
    assert commands["web"][-5:] == ["--host", "127.0.0.1", "--port", "8123", "--no-access-log"]
    assert commands["beat"][-2:] == ["--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME]
    assert "worker" in commands["worker"]
