"""Task completions per second through the HTTP API, against pgbench (TPC-B-like, 4
clients) measured in the same run on the same PostgreSQL server.

    python bench/api_transitions.py [--quick] [--profile] [--compare] [--rounds N]

Needs PostgreSQL (DATABASE_URL: the server; the benchmark creates and drops its databases
`parcours_bench_api` and `parcours_bench_api_pgbench` there) and `pgbench` on the PATH.

The application runs as in production: uvicorn serving config.asgi with WORKERS processes,
DEBUG off. Platform accounts (one per client connection; OAuth2 bearer tokens are
platforms' only), each with a client-credentials token and a member of its patients' care
teams in the role nurse, own claimed in-progress tasks of those patients' care pathways,
built beforehand in bulk in the shape the services give them. Each client completes its
own tasks, one request at a time over a keep-alive connection: POST
/api/v1/tasks/{id}/complete/ with If-Match (the task's ETag) and a fresh Idempotency-Key.
Every request goes through authentication, the permission-filtered selector, the task
lock and version check, the task's history, the grant changes, the audit trail and the
idempotency record; every fourth completion finishes its pathway's step and moves the
engine on (the instance lock, the transition, the history). Only 200 answers are counted.

--compare: measures each way of running the web processes in VARIANTS (selected by the
environment variables the settings read at start-up) in the same run, each against the
pgbench phase that follows it, the order rotated from one round to the next; prints each
variant's ratio. For every variant the figures also give the web processes' CPU time per
completion, which other work on the machine disturbs much less than the ratio.

--profile: also completes tasks in-process under pyinstrument (if installed) and prints
where the time goes (stderr).

Ends with one JSON line of figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    ROOT,
    close_django_connections,
    fresh_databases,
    init_pgbench,
    measure_pgbench,
    median,
    require_pgbench,
    server_url,
    setup_django,
    with_database,
)

BENCH_DB = "parcours_bench_api"
PGBENCH_DB = "parcours_bench_api_pgbench"
WORKERS = 3
CLIENTS = 8
TASKS_PER_PATHWAY = 4
GOAL_RATIO = 0.08

# --compare: name -> the environment the server starts with (read by the settings at start-up).
VARIANTS: dict[str, dict[str, str]] = {
    "project": {"HTTP_HANDLER": "project"},  # the default: config.handlers
    "django": {"HTTP_HANDLER": "django"},  # Django's own ASGI handler
}

DEFINITION = textwrap.dedent(
    """
    key: bench-api
    version: 1
    title: Benchmark API completions
    roles: [gp, nurse]
    initial: assessment
    states:
      assessment:
        on_enter:
          - task: {code: visit, title: Home visit, role: nurse, due: PT48H}
        on:
          tasks_completed: review
      review:
        title: Review
        on:
          stop: {to: closed, roles: [gp]}
      closed: {final: true}
    """
)


def prepare(pathways: int) -> dict[str, Any]:
    """The platform accounts and their tokens through the services (the tokens as the
    client-credentials grant stores them); the pathways, tasks and grants in bulk. Returns
    {token: [(task id, version), ...]} under "work"."""
    import datetime as dt

    from django.db import connection
    from django.utils import timezone
    from oauth2_provider.models import AccessToken, Application

    from api.services.platforms import platform_client_create
    from directory.models import Organization
    from directory.services import organization_create
    from workflows.actors import SYSTEM
    from workflows.services import definition_publish

    definition = definition_publish(source=DEFINITION, actor=SYSTEM, fmt="yaml").definition
    organization = organization_create(
        name="Synthetic platforms", kind=Organization.Kind.PLATFORM, actor=None
    )
    clients = [
        platform_client_create(
            slug=f"bench-{i}",
            name=f"Synthetic platform {i}",
            organization=organization,
            scopes=["tasks:read", "tasks:write"],
            actor=None,
        )
        for i in range(CLIENTS)
    ]
    nurses = [client.practitioner for client in clients]
    tokens = []
    for client in clients:
        token = AccessToken.objects.create(
            application=Application.objects.get(client_id=client.client_id),
            user=None,
            token=f"bench-{uuid.uuid4().hex}",
            expires=timezone.now() + dt.timedelta(hours=2),
            scope="tasks:read tasks:write",
        )
        tokens.append(token.token)

    def perm(model: str, codename: str) -> int:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT p.id FROM auth_permission p JOIN django_content_type c "
                "ON c.id = p.content_type_id WHERE c.model = %s AND p.codename = %s",
                [model, codename],
            )
            return int(cur.fetchone()[0])

    view_patient = perm("patient", "view_patient")
    change_patient = perm("patient", "change_patient")
    change_task = perm("task", "change_task")
    # Patient g is looked after by nurse g % CLIENTS (a VALUES list: id -> practitioner, user).
    owners = ", ".join(f"({i}, {n.pk}, {n.user_id})" for i, n in enumerate(nurses))
    n, per = pathways, TASKS_PER_PATHWAY
    statements = [
        f"""INSERT INTO patients_patient (id, family_name, given_names, birth_date, sex,
                birth_place_code, phone, email, address_lines, postal_code, city, ins_nir,
                ins_oid, identity_status, created_at, updated_at, version, user_id)
            SELECT g, 'Synthetic ' || g, 'Patient', date '1935-01-01' + (g * 7) % 25000,
                'female', '', '', '', '[]', '', '', '', '', 'provisional', now(), now(), 1, NULL
            FROM generate_series(1, {n}) g""",
        f"""INSERT INTO coordination_careteam (id, created_at, version, patient_id)
            SELECT g, now(), 1, g FROM generate_series(1, {n}) g""",
        f"""INSERT INTO coordination_careteammember (role, active, since, until, care_team_id,
                practitioner_id, service_team_id)
            SELECT 'nurse', true, now(), NULL, g, o.practitioner, NULL
            FROM generate_series(1, {n}) g
            JOIN (VALUES {owners}) o (i, practitioner, usr) ON o.i = g % {CLIENTS}""",
        f"""INSERT INTO patients_patientuserobjectpermission (content_object_id, permission_id,
                user_id)
            SELECT g, perm, o.usr FROM generate_series(1, {n}) g
            JOIN (VALUES {owners}) o (i, practitioner, usr) ON o.i = g % {CLIENTS},
            unnest(ARRAY[{view_patient}, {change_patient}]) perm""",
        f"""INSERT INTO workflows_pathwayinstance (id, state, status, context, revision,
                started_at, updated_at, ended_at, definition_id, subject)
            SELECT g, 'assessment', 'active', '{{}}', 1, now(), now(), NULL, {definition.pk},
                'care-pathway:' || g
            FROM generate_series(1, {n}) g""",
        f"""INSERT INTO coordination_carepathway (id, created_at, instance_id, patient_id,
                started_by_id, care_team_id)
            SELECT g, now(), g, g, NULL, g FROM generate_series(1, {n}) g""",
        # Claimed and started: version 3 (opened, claimed, started), as the services leave it.
        f"""INSERT INTO coordination_task (id, code, title, description, status, priority,
                priority_rank, due_at, offered_role, for_patient, requester_label,
                pathway_state, pathway_revision, note, output, version, created_at,
                updated_at, ended_at, care_pathway_id, offered_team_id, owner_id, patient_id,
                requested_by_id)
            SELECT (g - 1) * {per} + j, 'visit-' || j, '"Home visit"', '""', 'in-progress',
                'routine', 3, now() + interval '2 days', 'nurse', false,
                'pathway:bench-api@1', 'assessment', 1, '', '{{}}', 3, now(), now(), NULL,
                g, NULL, o.practitioner, g, NULL
            FROM generate_series(1, {n}) g, generate_series(1, {per}) j,
                (VALUES {owners}) o (i, practitioner, usr)
            WHERE o.i = g % {CLIENTS}""",
        f"""INSERT INTO coordination_taskuserobjectpermission (content_object_id, permission_id,
                user_id)
            SELECT t.id, {change_task}, p.user_id FROM coordination_task t
            JOIN coordination_practitioner p ON p.id = t.owner_id""",
    ]
    with connection.cursor() as cur:
        for sql in statements:
            cur.execute(sql)
        for table in (
            "patients_patient", "coordination_careteam", "coordination_carepathway",
            "workflows_pathwayinstance", "coordination_task",
        ):  # fmt: skip
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        cur.execute("ANALYZE")
    work: dict[str, list[tuple[int, int]]] = {}
    for nurse, token in zip(nurses, tokens, strict=True):
        from coordination.models import Task

        rows = Task.objects.filter(owner=nurse).order_by("care_pathway_id", "id")
        work[token] = [(pk, version) for pk, version in rows.values_list("pk", "version")]
    return {"work": work, "nurses": [n.user_id for n in nurses]}


def check_one(work: dict[str, list[tuple[int, int]]]) -> list[int]:
    """One pathway step's completions in-process, through the real view: the data is what
    the API expects (200, the engine moved on when the step's last task was done). Returns
    the number of SQL queries of each completion."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from coordination.models import CarePathway, Task

    token, tasks = next(iter(work.items()))
    client = Client(HTTP_HOST="localhost")
    pathway_id = Task.objects.get(pk=tasks[0][0]).care_pathway_id
    counts = []
    for _ in range(TASKS_PER_PATHWAY):
        pk, version = tasks.pop(0)
        with CaptureQueriesContext(connection) as queries:
            response = client.post(
                f"/api/v1/tasks/{pk}/complete/",
                {},
                content_type="application/json",
                headers={
                    "Authorization": f"Bearer {token}",
                    "If-Match": f'"v{version}"',
                    "Idempotency-Key": uuid.uuid4().hex,
                },
            )
        assert response.status_code == 200, response.content[:300]
        counts.append(len(queries.captured_queries))
    instance = CarePathway.objects.select_related("instance").get(pk=pathway_id).instance
    assert instance is not None
    assert (instance.state, instance.revision) == ("review", 2), (instance.state, instance.revision)
    return counts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    db_url: str, port: int, var_dir: str, variant: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **(variant or {}),
        "DATABASE_URL": db_url,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PARCOURS_VAR_DIR": var_dir,
    }
    env.pop("REDIS_URL", None)
    command = [
        sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
        "--port", str(port), "--workers", str(WORKERS), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/health/")
            connection.getresponse().read()
            return server
        except OSError:
            if server.poll() is not None:
                raise RuntimeError("uvicorn exited during start-up") from None
            time.sleep(0.5)
    server.terminate()
    raise RuntimeError("uvicorn did not answer within 90 s")


class Client(threading.Thread):
    """One nurse completing her tasks in turn over one keep-alive connection."""

    def __init__(self, port: int, token: str, tasks: list[tuple[int, int]]) -> None:
        super().__init__(daemon=True)
        self.port, self.token, self.tasks = port, token, tasks
        self.deadline = 0.0
        self.start_at = 0.0
        self.done = 0
        self.failures: list[str] = []

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        while time.time() < self.start_at:
            time.sleep(0.001)
        while time.time() < self.deadline and self.tasks:
            pk, version = self.tasks.pop(0)
            connection.request(
                "POST",
                f"/api/v1/tasks/{pk}/complete/",
                body=b'{"note": "", "output": {}}',
                headers={
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {self.token}",
                    "If-Match": f'"v{version}"',
                    "Idempotency-Key": uuid.uuid4().hex,
                },
            )
            response = connection.getresponse()
            body = response.read()
            if response.status == 200:
                self.done += 1
            else:
                self.failures.append(f"{response.status} {body[:200]!r}")
        connection.close()


def measure_api(port: int, work: dict[str, list[tuple[int, int]]], seconds: float) -> float:
    clients = [Client(port, token, tasks) for token, tasks in work.items()]
    start = time.time() + 0.5
    for client in clients:
        client.start_at, client.deadline = start, start + seconds
        client.start()
    for client in clients:
        client.join(timeout=seconds + 120)
    failures = [f for c in clients for f in c.failures]
    if failures:
        raise RuntimeError(f"{len(failures)} completions refused, e.g. {failures[:3]}")
    if any(not c.tasks for c in clients):
        raise RuntimeError("a client ran out of tasks: raise the number of pathways")
    return sum(c.done for c in clients) / seconds


def warm_up(port: int, work: dict[str, list[tuple[int, int]]]) -> None:
    """Reads through every worker first (imports, connections), not counted."""
    for token in list(work)[: WORKERS * 2]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(5):
            connection.request(
                "GET",
                "/api/v1/tasks/?view=mine&page_size=1",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert connection.getresponse().read() is not None
        connection.close()


def profile(work: dict[str, list[tuple[int, int]]], count: int) -> str:
    """Completions in-process under pyinstrument: where a request's time goes."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        return "pyinstrument is not installed: pip install pyinstrument"
    from django.test import Client as DjangoClient

    token, tasks = next(iter(work.items()))
    client = DjangoClient(HTTP_HOST="localhost")
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(min(count, len(tasks))):
        pk, version = tasks.pop(0)
        client.post(
            f"/api/v1/tasks/{pk}/complete/",
            {},
            content_type="application/json",
            headers={
                "Authorization": f"Bearer {token}",
                "If-Match": f'"v{version}"',
                "Idempotency-Key": uuid.uuid4().hex,
            },
        )
    profiler.stop()
    return str(profiler.output_text(unicode=False, color=False, show_all=False))


def server_cpu_seconds(server: subprocess.Popen[bytes]) -> float:
    """CPU time (user and system) used so far by the server's process and its workers (its
    children), from /proc: how much work the served requests cost, whatever else the
    machine was doing meanwhile."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # a process that ended meanwhile
        pid, ppid = int(stat.parent.name), int(fields[1])
        if server.pid in (pid, ppid):
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def measure_variants(
    url: str,
    db_url: str,
    var_dir: str,
    variants: dict[str, dict[str, str]],
    work: dict[str, list[tuple[int, int]]],
    seconds: float,
    rounds: int,
) -> dict[str, tuple[list[float], list[float], list[float]]]:
    """For each variant: its API phases, the pgbench phase that followed each, and the
    server's CPU milliseconds per completion in each API phase. Rounds
    interleave the API and pgbench so that load from other work on a shared machine hits
    both sides alike. One server runs at a time (an idle one's relays would still wake on
    every commit), started and warmed up before its phase; with several variants their
    order rotates from one round to the next, so that none is always measured first."""
    names = list(variants)
    phases: dict[str, tuple[list[float], list[float], list[float]]] = {
        name: ([], [], []) for name in names
    }
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            apis, pgbenches, cpus = phases[name]
            port = free_port()
            server = start_server(db_url, port, var_dir, variants[name])
            try:
                warm_up(port, work)
                cpu = server_cpu_seconds(server)
                api = measure_api(port, work, seconds)
                cpus.append((server_cpu_seconds(server) - cpu) * 1000 / (api * seconds))
                apis.append(api)
            finally:
                server.terminate()
                server.wait(timeout=30)
            pgbenches.append(measure_pgbench(url, PGBENCH_DB, seconds))
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short phases (under 60 s)")
    parser.add_argument("--profile", action="store_true", help="pyinstrument profile (stderr)")
    parser.add_argument(
        "--compare", action="store_true", help="measure each variant of VARIANTS in one run"
    )
    parser.add_argument("--rounds", type=int, help="rounds of phases (default 1 quick, else 3)")
    args = parser.parse_args()
    seconds, rounds, pathways = (3.0, 1, 600) if args.quick else (8.0, 3, 3000)
    if args.rounds:
        rounds = args.rounds
    variants = VARIANTS if args.compare else {"default": {}}
    # Enough tasks for every client in every phase (a client completes up to about 60 a second).
    pathways = max(
        pathways, int(seconds * rounds * len(variants) * CLIENTS * 60 / TASKS_PER_PATHWAY)
    )
    require_pgbench()
    url = server_url()
    db_url = with_database(url, BENCH_DB)
    var_dir = f"/tmp/parcours-bench-api-{os.getpid()}"
    phases: dict[str, tuple[list[float], list[float], list[float]]] = {}
    profile_text = ""
    with fresh_databases(url, BENCH_DB, PGBENCH_DB):
        setup_django(db_url)
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        prepared = prepare(pathways)
        work: dict[str, list[tuple[int, int]]] = prepared["work"]
        queries = check_one(work)
        if args.profile:
            profile_text = profile(work, 200)
        close_django_connections()
        init_pgbench(url, PGBENCH_DB)
        phases = measure_variants(url, db_url, var_dir, variants, work, seconds, rounds)
    results = {}
    for name, (apis, pgbenches, cpus) in phases.items():
        ratios = [a / p for a, p in zip(apis, pgbenches, strict=True)]
        results[name] = {
            "pgbench_tps_4clients": round(median(pgbenches), 1),
            "api_completions_per_s": round(median(apis), 1),
            "ratio": round(median(ratios), 3),
            "ratios": [round(r, 3) for r in ratios],
            # The web processes' CPU per completion (the relay's share included).
            "server_cpu_ms_per_completion": round(median(cpus), 2),
        }
    figures: dict[str, Any] = {
        "bench": "api_transitions",
        "quick": args.quick,
        "rounds": rounds,
        "seconds_per_phase": seconds,
        "server_workers": WORKERS,
        "client_connections": CLIENTS,
    }
    if args.compare:
        figures["variants"] = {
            name: {**results[name], "environment": environment}
            for name, environment in variants.items()
        }
    else:
        figures.update({k: v for k, v in results["default"].items() if k != "ratios"})
        ratio = results["default"]["ratio"]
        figures["goal_met"] = ratio >= GOAL_RATIO
    # SQL queries of one completion; the last is the one that finishes the step.
    figures["queries_per_completion"] = queries
    figures["goal_ratio"] = GOAL_RATIO
    if profile_text:
        print(profile_text, file=sys.stderr)
    for name, result in results.items():
        print(
            f"{name}: pgbench {result['pgbench_tps_4clients']:.0f} tps; "
            f"API {result['api_completions_per_s']:.1f} completions/s; "
            f"ratio {result['ratio']:.3f} (rounds: {result['ratios']}); "
            f"server CPU {result['server_cpu_ms_per_completion']:.2f} ms per completion",
            file=sys.stderr,
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
