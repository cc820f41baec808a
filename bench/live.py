"""Live updates: commit-to-client latency through the outbox, the relay and `/ws/updates/`,
with 1,000 connected WebSocket clients.

    python bench/live.py [--quick] [--clients N] [--events N] [--rate PER_S]

Needs PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres: the
server to use; the benchmark creates and drops its own database there) and `redis-server` on
the PATH (it starts a private one on a free port). One uvicorn process serves config.asgi
with the relay embedded (the defaults: Redis channel layer, relay polling every 0.05 s);
the clients run in this process on one asyncio loop.

The scene: 100 patients, each with one nurse in its care team; the clients are spread over
the nurses (10 connections per nurse at 1,000 clients). A writer thread records events on
the patients in turn at a fixed rate, each in its own transaction, and notes the time right
after commit; every client notes when each event arrives. Figures:

- latency p50 / p99: arrival minus commit, over every delivery (goals: 50 ms, 250 ms);
- deliveries per second: deliveries over the time from the first commit to the last arrival;
- memory per idle connection: growth of the server's resident memory from before the
  clients connect to after they all idle, divided by the number of clients.

Ends with one JSON line of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import psql_admin, server_url, with_database  # noqa: E402

BENCH_DB = "parcours_bench_live"
PATIENTS = 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def prepare(nurses: int) -> list[tuple[int, str]]:
    """Patients with one nurse each; returns (patient id, the nurse's session cookie)."""
    import datetime as dt

    from django.core.management import call_command
    from django.test import Client

    from directory.services import care_team_member_add, practitioner_create
    from patients.services import patient_create

    call_command("migrate", verbosity=0)
    scene = []
    for n in range(nurses):
        nurse = practitioner_create(
            username=f"bench-nurse-{n}",
            given_name="Synthetic",
            family_name=f"Bench nurse {n}",
            profession="nurse",
            rpps="",
            actor=None,
        )
        patient = patient_create(
            family_name=f"Synthetic bench {n}",
            given_names="Patient",
            birth_date=dt.date(1950, 1, 1) + dt.timedelta(days=n),
            sex="female",
            actor=None,
            entry_point="system",
        )
        care_team_member_add(patient=patient, role="nurse", practitioner=nurse, actor=None)
        client = Client()
        client.force_login(nurse.user)
        scene.append((patient.pk, f"sessionid={client.cookies['sessionid'].value}"))
    return scene


class Clients:
    def __init__(self) -> None:
        self.arrivals: list[tuple[int, float]] = []  # (bench marker, arrival time)
        self.welcomed = 0

    async def one(self, url: str, cookie: str, ready: asyncio.Event, stop: asyncio.Event) -> None:
        from websockets.asyncio.client import connect

        async with connect(
            url, additional_headers={"Cookie": cookie, "Origin": "http://127.0.0.1"}
        ) as ws:
            async for raw in ws:
                message = json.loads(raw)
                if message["type"] == "welcome":
                    self.welcomed += 1
                    ready.set()
                elif message["type"] == "event" and "bench" in message["payload"]:
                    self.arrivals.append((message["payload"]["bench"], time.time()))
                if stop.is_set():
                    return


def writer(patients: list[int], events: int, rate: float, sent: dict[int, float]) -> None:
    from django.db import connection, transaction

    from live import events as types
    from live.services.outbox import event_record

    interval = 1.0 / rate
    next_at = time.monotonic()
    try:
        for i in range(events):
            next_at += interval
            with transaction.atomic():
                event_record(
                    type=types.TASK_CHANGED,
                    patient=patients[i % len(patients)],
                    payload={"bench": i},
                )
            sent[i] = time.time()
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
    finally:
        connection.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(
    port: int, scene: list[tuple[int, str]], clients: int, events: int, rate: float, pid: int
) -> dict[str, Any]:
    url = f"ws://127.0.0.1:{port}/ws/updates/"
    collected = Clients()
    stop = asyncio.Event()
    before = rss_kib(pid)
    tasks = []
    per_patient: dict[int, int] = {}
    for c in range(clients):
        patient, cookie = scene[c % len(scene)]
        per_patient[patient] = per_patient.get(patient, 0) + 1
        ready = asyncio.Event()
        tasks.append(asyncio.create_task(collected.one(url, cookie, ready, stop)))
        await asyncio.wait_for(ready.wait(), 30)
    await asyncio.sleep(3)  # idle
    idle = rss_kib(pid)
    expected = sum(per_patient.get(scene[i % len(scene)][0], 0) for i in range(events))
    sent: dict[int, float] = {}
    started = time.time()
    thread = threading.Thread(target=writer, args=([p for p, _ in scene], events, rate, sent))
    thread.start()
    deadline = time.monotonic() + events / rate + 60
    while len(collected.arrivals) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    thread.join()
    finished = max((t for _, t in collected.arrivals), default=time.time())
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies = [(t - sent[i]) * 1000 for i, t in collected.arrivals if i in sent]
    return {
        "clients": clients,
        "events": events,
        "rate_per_s": rate,
        "deliveries_expected": expected,
        "deliveries": len(collected.arrivals),
        "latency_ms_p50": round(percentile(latencies, 0.50), 1),
        "latency_ms_p99": round(percentile(latencies, 0.99), 1),
        "latency_ms_max": round(max(latencies), 1),
        "latency_ms_mean": round(statistics.fmean(latencies), 1),
        "deliveries_per_s": round(len(collected.arrivals) / max(1e-6, finished - started), 1),
        "server_rss_mib_before": round(before / 1024, 1),
        "idle_kib_per_connection": round((idle - before) / clients, 1),
        "goal_latency_ms_p50": 50,
        "goal_latency_ms_p99": 250,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 clients, 100 events")
    parser.add_argument("--clients", type=int, default=None)
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--rate", type=float, default=20.0, help="events committed per second")
    args = parser.parse_args()
    clients = args.clients or (200 if args.quick else 1000)
    events = args.events or (100 if args.quick else 300)
    url = server_url()
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("DATABASE_URL must point at PostgreSQL for this benchmark")

    psql_admin(url, f"DROP DATABASE IF EXISTS {BENCH_DB}")
    psql_admin(url, f"CREATE DATABASE {BENCH_DB}")
    db_url = with_database(url, BENCH_DB)
    redis_port, web_port = free_port(), free_port()
    os.environ.update(
        {
            "DATABASE_URL": db_url,
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "LOG_LEVEL": "WARNING",
            "DEBUG": "false",
        }
    )
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(
            subprocess.Popen(
                ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no"],
                stdout=subprocess.DEVNULL,
                start_new_session=True,
            )
        )  # fmt: skip
        wait_port(redis_port, 15)
        import django

        django.setup()
        scene = prepare(min(PATIENTS, clients))
        from django.db import connections

        connections.close_all()
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
             "--port", str(web_port), "--no-access-log", "--log-level", "warning"],
            cwd=ROOT,
            start_new_session=True,
        )  # fmt: skip
        processes.append(server)
        wait_port(web_port, 60)
        time.sleep(1)
        figures = asyncio.run(measure(web_port, scene, clients, events, args.rate, server.pid))
    finally:
        for process in reversed(processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        from django.db import connections

        connections.close_all()
        psql_admin(url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    print(
        f"{figures['clients']} clients: p50 {figures['latency_ms_p50']} ms, "
        f"p99 {figures['latency_ms_p99']} ms, {figures['deliveries_per_s']} deliveries/s, "
        f"{figures['idle_kib_per_connection']} KiB per idle connection",
        file=sys.stderr,
    )
    print(json.dumps({"bench": "live", "quick": args.quick, **figures}))


if __name__ == "__main__":
    main()
