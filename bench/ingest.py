"""Observations per second through the REST batch API, alert evaluation included, against
plain INSERTs of the same rows into PostgreSQL measured in the same run on the same server.

    python bench/ingest.py [--quick]

Needs PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres: the
server to use; the benchmark creates and drops its own database `parcours_bench_ingest`).

API side: `POST /api/v1/patients/<id>/observations/` with `{items: [...]}` (1000 readings a
batch: weight, SpO2, heart rate, as a telemonitoring hub would send them), through the whole
Django stack in process (middleware, session authentication, parsing, validation, one bulk
insert, the audit record, the alerts of the patient's pathway — the heart-failure monitoring
alerts, `delta` over 3 days on every weight — and the JSON response).

Reference: the same rows inserted with one plain INSERT statement per row into the same
observations table, one transaction per batch of 1000, from the same process (psycopg).

Rounds interleave the two so that load from other work on a shared machine hits both alike;
each round gives a ratio and the median is reported. Ends with one JSON line of figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import fresh_databases, server_url, with_database  # noqa: E402

BENCH_DB = "parcours_bench_ingest"
BATCH = 1000
PATIENTS = 8

# The alerts of the heart-failure telemonitoring state (workflows/library/hf-telemonitoring).
DEFINITION = textwrap.dedent(
    """
    key: bench-ingest
    version: 1
    title: Ingest benchmark
    roles: [nurse, coordinator]
    initial: monitoring
    states:
      monitoring:
        alerts:
          - name: weight-gain
            when: "observation.code == '29463-7' && delta('29463-7', 'P3D') >= 2.0"
            event: decompensation_risk
          - name: low-spo2
            when: "observation.code == '59408-5' && observation.value < 90.0"
            event: hypoxaemia
          - name: abnormal-heart-rate
            when: >-
              observation.code == '8867-4' &&
              (observation.value > 120.0 || observation.value < 50.0)
            event: abnormal_heart_rate
        on:
          decompensation_risk: review
          hypoxaemia: review
          abnormal_heart_rate: review
          stop: {to: done, roles: [coordinator]}
      review:
        on_enter:
          - task: {code: call-patient, title: Call the patient, role: nurse, priority: urgent}
        on:
          resolved: {to: monitoring, roles: [nurse]}
      done: {final: true}
    """
)


def setup_django(db_url: str) -> None:
    os.environ["DATABASE_URL"] = db_url
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    os.environ["DEBUG"] = "false"
    os.environ["ALLOWED_HOSTS"] = "testserver"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def prepare() -> tuple[Any, list[int]]:
    """A nurse, and PATIENTS patients each in the care team and on the monitoring pathway."""
    from django.core.management import call_command

    from coordination.services import (
        care_pathway_start,
        care_team_member_add,
        practitioner_create,
    )
    from patients.services import patient_create
    from workflows.actors import SYSTEM
    from workflows.services import definition_publish

    call_command("migrate", verbosity=0, interactive=False)
    definition_publish(source=DEFINITION, actor=SYSTEM, fmt="yaml")
    nurse = practitioner_create(
        username="bench-nurse",
        given_name="Synthetic",
        family_name="Bench Nurse",
        profession="nurse",
        actor=None,
    )
    patients = []
    for n in range(PATIENTS):
        patient = patient_create(
            family_name=f"Synthetic Bench {n}",
            given_names="Patient",
            birth_date=dt.date(1950, 1, 1) + dt.timedelta(days=n),
            sex="female",
            actor=None,
            entry_point="system",
        )
        care_team_member_add(patient=patient, role="nurse", practitioner=nurse, actor=None)
        care_pathway_start(patient=patient, key="bench-ingest", user=None)
        patients.append(patient.pk)
    return nurse.user, patients


class Readings:
    """Plausible readings of a stable patient, one every few minutes, going forward in time
    (no alert fires: the common case, and the one where every condition is evaluated)."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.at = dt.datetime.now(dt.UTC) - dt.timedelta(days=60)
        self.weight = 80.0

    def batch(self) -> list[dict[str, Any]]:
        items = []
        for i in range(BATCH):
            self.at += dt.timedelta(minutes=3)
            kind = i % 3
            if kind == 0:
                self.weight += self.random.uniform(-0.05, 0.05)
                item = {"code": "29463-7", "value": f"{self.weight:.2f}", "unit": "kg"}
            elif kind == 1:
                item = {"code": "59408-5", "value": str(self.random.randint(93, 99)), "unit": "%"}
            else:
                item = {"code": "8867-4", "value": str(self.random.randint(55, 95)), "unit": "/min"}
            items.append({**item, "effective_at": self.at.isoformat()})
        return items


def measure_api(
    client: Any, patients: list[int], feeds: dict[int, Readings], batches: int
) -> float:
    from django.db import connection

    bodies = [(p, feeds[p].batch()) for p in (patients * batches)[:batches]]
    started = time.perf_counter()
    for patient_id, items in bodies:
        response = client.post(
            f"/api/v1/patients/{patient_id}/observations/", {"items": items}, format="json"
        )
        if response.status_code != 201:
            raise SystemExit(f"batch refused: {response.status_code} {response.content[:500]!r}")
    elapsed = time.perf_counter() - started
    connection.close()
    return batches * BATCH / elapsed


def measure_inserts(
    db_url: str, patients: list[int], feeds: dict[int, Readings], batches: int
) -> float:
    import psycopg

    bodies = [(p, feeds[p].batch()) for p in (patients * batches)[:batches]]
    with psycopg.connect(db_url) as conn:
        started = time.perf_counter()
        for patient_id, items in bodies:
            with conn.transaction(), conn.cursor() as cursor:
                for item in items:
                    cursor.execute(
                        "INSERT INTO patients_observation "
                        "(patient_id, code, value, unit, effective_at, source, received_at) "
                        "VALUES (%s, %s, %s, %s, %s, 'device', now())",
                        (
                            patient_id,
                            item["code"],
                            item["value"],
                            item["unit"],
                            item["effective_at"],
                        ),
                    )
        elapsed = time.perf_counter() - started
    return batches * BATCH / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short phases (under 60 s)")
    args = parser.parse_args()
    batches, rounds = (8, 3) if args.quick else (24, 5)
    url = server_url()
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("DATABASE_URL must point at PostgreSQL for this benchmark")

    db_url = with_database(url, BENCH_DB)
    api_runs: list[float] = []
    insert_runs: list[float] = []
    with fresh_databases(url, BENCH_DB):  # dropped WITH (FORCE): the pool holds connections
        setup_django(db_url)
        from rest_framework.test import APIClient

        from coordination.models import AlertRecord

        user, patients = prepare()
        client = APIClient()
        client.force_login(user)
        feeds = {p: Readings(p) for p in patients}
        measure_api(client, patients, feeds, len(patients))  # warm-up: caches, prepared plans
        for _ in range(rounds):
            api_runs.append(measure_api(client, patients, feeds, batches))
            insert_runs.append(measure_inserts(db_url, patients, feeds, batches))
        alerts = AlertRecord.objects.count()

    api, inserts = statistics.median(api_runs), statistics.median(insert_runs)
    ratio = statistics.median(a / i for a, i in zip(api_runs, insert_runs, strict=True))
    figures = {
        "bench": "ingest",
        "quick": args.quick,
        "rounds": rounds,
        "observations_per_round": batches * BATCH,
        "batch_size": BATCH,
        "api_observations_per_s": round(api, 1),
        "plain_inserts_per_s": round(inserts, 1),
        "ratio": round(ratio, 3),
        "goal_ratio": 0.3,
        "alerts_raised": alerts,
    }
    print(
        f"batch API with alerts: {api:.0f} obs/s; plain INSERTs: {inserts:.0f} rows/s; "
        f"ratio {ratio:.3f}",
        file=sys.stderr,
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
