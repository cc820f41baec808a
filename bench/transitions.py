"""Pathway transitions per second through the engine's service, on PostgreSQL, against
pgbench (TPC-B-like, 4 clients) measured in the same run on the same server.

    python bench/transitions.py [--quick]

Needs PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres: the
server to use; the benchmark creates and drops its own databases there) and `pgbench` on the
PATH. Each worker process fires events on its own instances, as pgbench's clients update
their own rows, through `workflows.services.instance_fire` (lock, resolve, timers, history).
Also measures how long validating a 300-state definition takes, and, per transition: the
client-server round trips (from libpq's protocol trace), the CPU time of the engine's Python
and of its PostgreSQL backend (when the server runs on this machine).

Ends with one JSON line of figures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import os
import re
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import fresh_databases, server_url, with_database  # noqa: E402

BENCH_DB = "parcours_bench"
PGBENCH_DB = "parcours_bench_pgbench"

# Two states taking turns, left by manual events with roles and a guard: the common shape
# of a pathway step. Two variants: "plain" (most states of the shipped pathways: 20 of 27
# have no timer) and "timers" (every state schedules a timer on entry, so every transition
# also cancels one and inserts one).
_LOOP = """
    key: bench-{variant}
    version: 1
    title: Benchmark loop ({variant})
    roles: [nurse]
    initial: waiting
    states:
      waiting:
        {waiting_timer}
        on:
          call: {{to: calling, roles: [nurse]}}
          reminder: waiting
          stop: {{to: done, roles: [nurse]}}
      calling:
        {calling_timer}
        on:
          answer: {{to: waiting, roles: [nurse], guard: "payload.outcome != ''"}}
          reminder: calling
      done: {{final: true}}
    """
DEFINITIONS = {
    "plain": textwrap.dedent(_LOOP).format(
        variant="plain", waiting_timer="title: Waiting", calling_timer="title: Calling"
    ),
    "timers": textwrap.dedent(_LOOP).format(
        variant="timers",
        waiting_timer="on_enter: [{timer: {event: reminder, after: P1D}}]",
        calling_timer="on_enter: [{timer: {event: reminder, after: PT4H}}]",
    ),
}
RENDER_MS: list[float] = []  # SVG rendering of the same 300-state definition
NEXT_EVENT = {"waiting": "call", "calling": "answer"}


def setup_django(db_url: str) -> None:
    os.environ["DATABASE_URL"] = db_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def prepare(db_url: str, instances: int) -> dict[str, list[int]]:
    from django.core.management import call_command

    from workflows.actors import SYSTEM
    from workflows.services import definition_publish, instance_start

    call_command("migrate", verbosity=0, interactive=False)
    ids = {}
    for variant, source in DEFINITIONS.items():
        definition_publish(source=source, actor=SYSTEM, fmt="yaml")
        key = f"bench-{variant}"
        ids[variant] = [instance_start(key=key, actor=SYSTEM).pk for _ in range(instances)]
    return ids


def worker(
    db_url: str,
    ids: list[int],
    seconds: float,
    ready: mp.Queue,  # type: ignore[type-arg]
    go: Any,
    out: mp.Queue,  # type: ignore[type-arg]
) -> None:
    setup_django(db_url)
    from django.db import connection

    from workflows.actors import Actor
    from workflows.models import PathwayInstance
    from workflows.services import instance_fire

    nurse = Actor.person("bench:nurse", {"nurse"})
    states = dict(PathwayInstance.objects.filter(pk__in=ids).values_list("pk", "state"))
    payload = {"outcome": "reached"}
    connection.ensure_connection()
    backend = connection.connection.info.backend_pid
    # Start together once every process is ready: on a loaded machine importing Django can
    # take longer than any fixed head start.
    ready.put(os.getpid())
    go.wait()
    cpu, server_cpu = time.process_time(), backend_cpu_seconds(backend)
    done, i, deadline = 0, 0, time.time() + seconds
    while time.time() < deadline:
        pk = ids[i % len(ids)]
        i += 1
        result = instance_fire(
            instance_id=pk, event=NEXT_EVENT[states[pk]], actor=nurse, payload=payload
        )
        states[pk] = result.instance.state
        done += 1
    server_end = backend_cpu_seconds(backend)
    server_used = None if server_cpu is None or server_end is None else server_end - server_cpu
    out.put((done, time.process_time() - cpu, server_used))


def backend_cpu_seconds(pid: int) -> float | None:
    """CPU time used so far by a PostgreSQL backend process, when the server runs on this
    machine and /proc shows it; None otherwise."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class EnginePhase:
    per_second: float
    transitions: int
    python_cpu_s: float
    server_cpu_s: float | None


def measure_engine(db_url: str, ids: list[int], processes: int, seconds: float) -> EnginePhase:
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    ready: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    go = ctx.Event()
    chunks = [ids[i::processes] for i in range(processes)]
    procs = [
        ctx.Process(target=worker, args=(db_url, chunk, seconds, ready, go, queue))
        for chunk in chunks
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=300)
    go.set()
    results = [queue.get(timeout=seconds + 300) for _ in procs]
    for proc in procs:
        proc.join()
    servers = [server for _, _, server in results]
    return EnginePhase(
        per_second=sum(done for done, _, _ in results) / seconds,
        transitions=sum(done for done, _, _ in results),
        python_cpu_s=sum(cpu for _, cpu, _ in results),
        server_cpu_s=None if None in servers else sum(s for s in servers if s is not None),
    )


def count_round_trips(ids: list[int], transitions: int = 50) -> float:
    """Client-server round trips per transition, from libpq's protocol trace of a few
    transitions in this process: every switch from sending to receiving is one wait."""
    import tempfile

    import psycopg
    from django.db import connection

    from workflows.actors import Actor
    from workflows.models import PathwayInstance
    from workflows.services import instance_fire

    nurse = Actor.person("bench:nurse", {"nurse"})
    chosen = ids[:10]
    states = dict(PathwayInstance.objects.filter(pk__in=chosen).values_list("pk", "state"))

    def fire(n: int) -> None:
        for i in range(n):
            pk = chosen[i % len(chosen)]
            result = instance_fire(
                instance_id=pk, event=NEXT_EVENT[states[pk]], actor=nurse, payload={"outcome": "x"}
            )
            states[pk] = result.instance.state

    fire(len(chosen))  # connection open, statements prepared
    raw = connection.connection
    assert isinstance(raw, psycopg.Connection)
    with tempfile.TemporaryFile("w+") as trace:
        raw.pgconn.trace(trace.fileno())
        raw.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            fire(transitions)
        finally:
            raw.pgconn.untrace()
        trace.seek(0)
        directions = [line.split("\t", 1)[0] for line in trace if line[:2] in ("F\t", "B\t")]
    waits = sum(1 for pair in itertools.pairwise(directions) if pair == ("F", "B"))
    return waits / transitions


def init_pgbench(url: str) -> None:
    subprocess.run(
        ["pgbench", "-i", "-q", "-s", "10", with_database(url, PGBENCH_DB)],
        check=True,
        capture_output=True,
        text=True,
    )


def measure_pgbench(url: str, seconds: float) -> float:
    pg_url = with_database(url, PGBENCH_DB)
    result = subprocess.run(
        ["pgbench", "-n", "-c", "4", "-j", "4", "-T", str(int(seconds)), pg_url],
        check=True,
        capture_output=True,
        text=True,
    )
    pattern = r"tps = ([\d.]+) \((?:without initial connection time|excluding)"
    match = re.search(pattern, result.stdout)
    if not match:
        raise RuntimeError(f"cannot read pgbench output:\n{result.stdout}")
    return float(match.group(1))


def measure_validation(states: int, repeat: int) -> tuple[float, float]:
    """(min, median) milliseconds to validate a generated definition of `states` states."""
    from workflows.definition import validate_source
    from workflows.diagrams import render_definition_svg

    lines = [
        "key: big",
        "version: 1",
        "title: Big",
        "roles: [nurse, gp]",
        "initial: s0",
        "states:",
    ]
    for i in range(states - 1):
        lines += [
            f"  s{i}:",
            f"    title: State {i}",
            "    on_enter:",
            f"      - task: {{code: t{i}, title: Task {i}, role: nurse, due: P{i % 9 + 1}D}}",
            "      - timer: {event: late, after: P2D}",
            "    on:",
            f"      tasks_completed: s{i + 1}",
            f"      late: {{to: s{max(i - 1, 0)}}}",
            f"      skip: {{to: s{min(i + 2, states - 1)}, roles: [gp],",
            '               guard: "payload.ok == true"}',
        ]
    lines += [f"  s{states - 1}: {{final: true}}"]
    text = "\n".join(lines) + "\n"
    timings = []
    renders = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = validate_source(text, fmt="yaml")
        timings.append((time.perf_counter() - started) * 1000)
        if not result.ok:
            raise RuntimeError(f"generated definition is invalid: {result.problems[:3]}")
        started = time.perf_counter()
        render_definition_svg(result.document, current_state="s150")
        renders.append((time.perf_counter() - started) * 1000)
    RENDER_MS.extend(renders)
    return min(timings), statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short phases (under 60 s)")
    args = parser.parse_args()
    # Rounds interleave the engine and pgbench so that load from other work on a shared
    # machine hits both sides alike; each round gives a ratio and the median is reported.
    seconds, rounds = (3.0, 1) if args.quick else (8.0, 3)
    if shutil.which("pgbench") is None:
        sys.exit("pgbench is not on the PATH (Debian: postgresql-client)")
    url = server_url()
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("DATABASE_URL must point at PostgreSQL for this benchmark")

    db_url = with_database(url, BENCH_DB)
    runs: dict[str, dict[str, list[EnginePhase]]] = {
        v: {"one": [], "four": []} for v in DEFINITIONS
    }
    pgbenches: list[float] = []
    round_trips: dict[str, float] = {}
    with fresh_databases(url, BENCH_DB, PGBENCH_DB):  # dropped WITH (FORCE): pools hold some
        setup_django(db_url)
        ids = prepare(db_url, instances=400)
        for variant in DEFINITIONS:
            round_trips[variant] = count_round_trips(ids[variant])
        from django.db import connections

        connections.close_all()
        validate_ms = measure_validation(300, repeat=9)
        init_pgbench(url)
        for _ in range(rounds):
            for variant in DEFINITIONS:
                runs[variant]["one"].append(measure_engine(db_url, ids[variant], 1, seconds))
                runs[variant]["four"].append(measure_engine(db_url, ids[variant], 4, seconds))
            pgbenches.append(measure_pgbench(url, seconds))

    pgbench = statistics.median(pgbenches)
    figures: dict[str, object] = {
        "bench": "transitions",
        "quick": args.quick,
        "rounds": rounds,
        "seconds_per_phase": seconds,
        "pgbench_tps_4clients": round(pgbench, 1),
    }
    summary = []
    for variant, phases in runs.items():
        measured = {n: [phase.per_second for phase in phases[n]] for n in ("one", "four")}
        one, four = statistics.median(measured["one"]), statistics.median(measured["four"])
        ratio_1 = statistics.median(o / p for o, p in zip(measured["one"], pgbenches, strict=True))
        ratio_4 = statistics.median(f / p for f, p in zip(measured["four"], pgbenches, strict=True))
        figures.update(
            {
                f"{variant}_transitions_per_s_1proc": round(one, 1),
                f"{variant}_transitions_per_s_4proc": round(four, 1),
                f"{variant}_ratio_1proc": round(ratio_1, 3),
                f"{variant}_ratio_4proc": round(ratio_4, 3),
                f"{variant}_round_trips_per_transition": round(round_trips[variant], 2),
            }
        )
        # CPU per transition, which the load of other work on a shared machine disturbs far
        # less than rates: the engine's Python and its PostgreSQL backend.
        for n, label in (("one", "1proc"), ("four", "4proc")):
            done = sum(phase.transitions for phase in phases[n])
            python_ms = sum(phase.python_cpu_s for phase in phases[n]) * 1000 / max(done, 1)
            figures[f"{variant}_python_cpu_ms_per_transition_{label}"] = round(python_ms, 3)
            servers = [phase.server_cpu_s for phase in phases[n]]
            if None not in servers:
                server_ms = sum(s for s in servers if s is not None) * 1000 / max(done, 1)
                figures[f"{variant}_postgres_cpu_ms_per_transition_{label}"] = round(server_ms, 3)
        summary.append(f"{variant}: {one:.0f}/s at 1, {four:.0f}/s at 4 (ratio {ratio_4:.3f})")
    figures.update(
        {
            "goal_ratio_4proc": 0.25,
            "validate_300_states_ms_min": round(validate_ms[0], 1),
            "validate_300_states_ms_median": round(validate_ms[1], 1),
            "goal_validate_ms": 100,
            "render_svg_300_states_ms_median": round(statistics.median(RENDER_MS), 1),
        }
    )
    validation = f"{validate_ms[0]:.1f} ms (min), {validate_ms[1]:.1f} ms (median)"
    print(
        f"pgbench: {pgbench:.0f} tps; {'; '.join(summary)}; 300-state validation: {validation}",
        file=sys.stderr,
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
