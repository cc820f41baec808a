"""Server time of the care-team worklist and the patient page with ten times the demo data.

    python bench/pages.py [--quick] [--scale 10]

Needs PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres: the
server to use; the benchmark creates and drops its own database `parcours_bench_pages`).

Data: `seed_demo` with its patient plan scaled (51 patients x scale, same stories, pathways,
care teams, tasks and device readings; synthetic INS numbers kept unique). Requests go
through the whole Django stack in process (middleware, session, permission-filtered
selectors, audit record, template rendering) with Django's test client; the time measured is
the server's, from request to rendered response. Pages: `/worklist/` of the demo nurse and
the demo coordinator, the triage board and the alert inbox of the demo nurse (and the board
again with the start-up heap not frozen, to show what config.asgi.settle_heap saves),
`/patients/<id>/` of the patients of a demo GP (in turn). Ends with one
JSON line: p50/p95 in ms and queries per page, and the login page measured the same way
as a reference for the machine's speed and load. Goal: p95 <= 100 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import psql_admin, server_url, with_database  # noqa: E402

BENCH_DB = "parcours_bench_pages"
GOAL_P95_MS = 100.0


def seeded_patients(url: str) -> int:
    """Patients in a kept benchmark database (0 when there is none or its seeding stopped
    before the end: seed_demo runs in one transaction)."""
    found = subprocess.run(
        ["psql", "-tAc", "SELECT count(*) FROM patients_patient",
         "-d", with_database(url, BENCH_DB)],
        check=False,  # no database yet: counted as 0
        capture_output=True,
        text=True,
    )  # fmt: skip
    return int(found.stdout.strip()) if found.returncode == 0 and found.stdout.strip() else 0


def setup_django(db_url: str) -> None:
    os.environ["DATABASE_URL"] = db_url
    os.environ.pop("REDIS_URL", None)  # no shared Redis: the cache is local to this process
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
    os.environ["DEBUG"] = "false"  # no query log, no debug pages: what production runs
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()  # lets the test client's host in
    import config.asgi  # noqa: F401  # what the server process does at start-up (settle_heap)


def seed(scale: int) -> None:
    """The demo data, `scale` times over."""
    from django.core.management import call_command

    from coordination.management.demo import plan
    from patients.identifiers import nir_key

    def synthetic_nir(number: int, sex: str, birth_date: dt.date) -> str:
        # The demo's order numbers (900 + n) run out past 99 patients: spread them over
        # communes instead (synthetic: 75 0xx is not a real Paris code beyond 020).
        digits = f"{1 if sex == 'male' else 2}{birth_date:%y%m}75{number // 100:03d}"
        digits += f"{900 + number % 100:03d}"
        return digits + nir_key(digits)

    plan.PATIENT_COUNT = 51 * scale
    plan.synthetic_nir = synthetic_nir
    call_command("migrate", verbosity=0, interactive=False)
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def measure(client: Any, urls: list[str], requests: int) -> dict[str, float]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for url in urls[:3]:  # warm-up: templates, compiled definitions, connection
        assert client.get(url).status_code == 200, url
    times: list[float] = []
    queries: list[int] = []
    for i in range(requests):
        url = urls[i % len(urls)]
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
        queries.append(len(captured.captured_queries))
    return {
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(percentile(times, 0.95), 1),
        "max_ms": round(max(times), 1),
        "queries_median": statistics.median(queries),
        "queries_max": max(queries),
        "requests": requests,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (under a minute)")
    parser.add_argument("--scale", type=int, default=10, help="times the demo data (10)")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the database, and reuse a kept one seeded at the same scale",
    )
    args = parser.parse_args()
    requests = 40 if args.quick else 200
    url = server_url()
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("DATABASE_URL must point at PostgreSQL for this benchmark")
    # The plan's patients times the scale, and the demo's few patients with a story of their
    # own after them (a seeding that stopped counts 0: it runs in one transaction).
    reuse = args.keep and seeded_patients(url) >= 51 * args.scale
    if not reuse:
        psql_admin(url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        psql_admin(url, f"CREATE DATABASE {BENCH_DB}")
    try:
        setup_django(with_database(url, BENCH_DB))
        started = time.perf_counter()
        if not reuse:
            seed(args.scale)
        seed_s = time.perf_counter() - started
        from django.test import Client

        from coordination.models import Task
        from directory.models import Practitioner
        from patients.models import Patient
        from patients.selectors import visible_patients

        figures: dict[str, Any] = {
            "bench": "pages",
            "scale": args.scale,
            "patients": Patient.objects.count(),
            "tasks": Task.objects.count(),
            "seed_s": round(seed_s, 1),
        }
        results = {}
        for username in ("demo-nurse-1", "demo-coordinator-1"):
            user = Practitioner.objects.get(user__username=username).user
            client = Client()
            client.force_login(user)
            results[f"worklist:{username}"] = measure(client, ["/worklist/"], requests)
        nurse = Practitioner.objects.get(user__username="demo-nurse-1").user
        client = Client()
        client.force_login(nurse)
        results["triage:demo-nurse-1"] = measure(client, ["/triage/"], requests)
        results["alerts:demo-nurse-1"] = measure(client, ["/alerts/"], requests)
        # The same board with the start-up heap back under the collector (config.asgi's
        # settle_heap undone): what gc.freeze saves, measured in this run.
        import gc

        gc.unfreeze()
        unfrozen = measure(client, ["/triage/"], requests)
        gc.collect()
        gc.freeze()
        gp = Practitioner.objects.get(user__username="demo-gp-1").user
        patient_ids = list(visible_patients(gp).values_list("pk", flat=True))
        client = Client()
        client.force_login(gp)
        results["patient:demo-gp-1"] = measure(
            client, [f"/patients/{pk}/" for pk in patient_ids], requests
        )
        # The same machine's floor, measured in the same run: the login page (middleware,
        # session, a template; no patient data), to read the figures above against.
        results["reference:login"] = measure(Client(), ["/login/"], requests)
        figures["gp_patients"] = len(patient_ids)
        figures["triage_without_frozen_heap"] = unfrozen
        figures["pages"] = results
        worst = max(r["p95_ms"] for name, r in results.items() if not name.startswith("ref"))
        figures["p95_worst_ms"] = worst
        # The worst page against the login page of the same run: how many times the machine's
        # floor a care-team page costs (steadier than milliseconds on a shared machine).
        figures["p95_worst_over_login"] = round(worst / results["reference:login"]["p95_ms"], 1)
        figures["goal_p95_ms"] = GOAL_P95_MS
        figures["goal_met"] = worst <= GOAL_P95_MS
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            psql_admin(url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
