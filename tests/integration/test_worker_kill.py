"""Fault (a): SIGKILL the Celery worker in the middle of a job; the job runs again on another
worker and its effect happens once.

The broker is a redis-server this test starts on a free port (never the machine's): Redis
keeps an unacknowledged message aside and redelivers it once its visibility timeout has passed,
which is the production set-up (acks_late + Redis). The timeout and the restore sweep are
shortened through the environment so the redelivery takes seconds, not minutes.

The job is the real timer sweep. The test holds the pathway instance's row lock from its own
connection, so the worker's sweep blocks inside its transaction; the test sees it waiting
(pg_blocking_pids), kills the worker, lets go of the lock, and starts a second worker.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from celery import Celery
from django.db import connection

from coordination.models import Task
from coordination.services import care_pathway_start
from directory.services import care_team_member_add
from tests.coordination.conftest import make_patient, make_practitioner
from workflows.actors import Actor
from workflows.models import HistoryEntry, PathwayInstance, Timer
from workflows.services import definition_publish

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
WAIT = 120.0  # upper bound for each wait; the test polls, it does not sleep for a fixed time

SWEEP_TEST = """
key: sweep-kill
version: 1
title: Sweep under a killed worker
roles: [nurse]
initial: waiting
states:
  waiting:
    on_enter:
      - timer: {event: wake, after: P1D}
    on:
      wake: visit
  visit:
    on_enter:
      - task: {code: visit, title: Visit, role: nurse, due: P2D}
    on:
      tasks_completed: done
  done: {final: true}
"""


def wait_for(what: str, check: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("needs redis-server on the PATH to start a private broker")
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)

    def up() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    try:
        wait_for("the private redis-server", up, timeout=30)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def postgres_dsn(transactional_db: None) -> str:
    if connection.vendor != "postgresql":
        pytest.skip(
            "needs PostgreSQL: the worker processes share the test database "
            "(set DATABASE_URL=postgres://...; CI does)"
        )
    params = connection.get_connection_params()
    user, host, port = params.get("user", ""), params.get("host", ""), params.get("port", "")
    password = params.get("password") or ""
    auth = f"{user}:{password}@" if password else f"{user}@"
    return f"postgres://{auth}{host}:{port}/{connection.settings_dict['NAME']}"


class Worker:
    def __init__(self, name: str, env: dict[str, str], queue: str, log: Path) -> None:
        self.log = log
        self._out = log.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config.celery", "worker",
                "--pool", "solo", "--hostname", f"{name}@%h", "--queues", queue,
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "--loglevel", "INFO",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._out.close()


def test_a_job_killed_mid_way_runs_again_and_its_effect_happens_once(
    postgres_dsn: str, redis_url: str, tmp_path: Path
):
    # Given a pathway whose timer is due, and the instance row locked by the test
    definition_publish(source=SWEEP_TEST, actor=Actor(id="test"), fmt="yaml")
    patient = make_patient()
    care_team_member_add(
        patient=patient, role="nurse", practitioner=make_practitioner(), actor=None
    )
    pathway = care_pathway_start(patient=patient, key="sweep-kill", user=None)
    instance_id = pathway.instance_id
    assert instance_id is not None
    Timer.objects.filter(instance_id=instance_id).update(
        due_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    )
    queue = f"kill-test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": postgres_dsn,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_QUEUE": queue,
        "CELERY_BROKER_VISIBILITY_TIMEOUT": "3",
        "CELERY_BROKER_RESTORE_INTERVAL": "1",
        "CELERY_BROKER_RESTORE_THROTTLE": "1",
        "PARCOURS_VAR_DIR": str(tmp_path / "var"),
    }
    env.pop("REDIS_URL", None)
    holder = psycopg.connect(postgres_dsn)
    holder.execute(
        f"SELECT id FROM {PathwayInstance._meta.db_table} WHERE id = %s FOR UPDATE",
        [instance_id],
    )
    holder_pid = holder.info.backend_pid
    first = Worker("first", env, queue, tmp_path / "first.log")
    second: Worker | None = None
    try:
        sender = Celery(broker=redis_url)
        job_id = sender.send_task("coordination.timers_sweep", queue=queue).id
        watcher = psycopg.connect(postgres_dsn, autocommit=True)

        def sweep_is_waiting_on_the_lock() -> bool:
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                [holder_pid],
            ).fetchone()
            return bool(row and row[0])

        wait_for("the first worker to block inside the job", sweep_is_waiting_on_the_lock)

        # When the worker is killed in the middle of the job, then the lock let go
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=30)
        holder.rollback()
        assert Timer.objects.get(instance_id=instance_id).status == Timer.Status.SCHEDULED
        second = Worker("second", env, queue, tmp_path / "second.log")

        def fired() -> bool:
            return Timer.objects.get(instance_id=instance_id).status == Timer.Status.FIRED

        wait_for("the redelivered job to fire the timer", fired)
        wait_for(
            "the second worker to report the job done",
            lambda: f"coordination.timers_sweep[{job_id}] succeeded" in second.output(),
        )

        # Then the same job ran again on the second worker, and its effect happened once
        assert f"coordination.timers_sweep[{job_id}]" in first.output()
        assert f"coordination.timers_sweep[{job_id}] succeeded" not in first.output()
        moves = HistoryEntry.objects.filter(instance_id=instance_id, event="wake")
        assert moves.count() == 1
        assert PathwayInstance.objects.get(pk=instance_id).state == "visit"
        assert Task.objects.filter(care_pathway=pathway, code="visit").count() == 1
        watcher.close()
    finally:
        holder.close()
        first.stop()
        if second is not None:
            second.stop()
