"""Observations per second through the REST batch API, alert evaluation included, against
plain INSERTs of the same rows into PostgreSQL measured in the same run on the same server.

    python bench/ingest.py [--quick]

Needs PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres: the
server to use; the benchmark creates and drops its own database `parcours_bench_ingest`).

API side: `POST /api/v1/patients/<id>/observations/` with `{items: [...]}` (1000 readings a
batch: weight, SpO2, heart rate, as a telemonitoring hub would send them), through the whole
Django stack in process (middleware, session authentication, parsing, validation, one bulk
insert, the audit record, the alerts of the patient's pathway — pathway-level alerts
under `monitoring` like the heart-failure ones: `rise` over 3 days on every weight, SpO2
below a per-patient floor, heart rate out of range, with triage scores — and the JSON
response). About 1 % of the readings cross a threshold (ALERT_EVERY): the alert work
(the record, its task, the risk score, the outbox events) is measured with the rest. Between
rounds, outside the timing, the nurse completes the alerts' tasks, so that the next round's
alerts are raised afresh rather than absorbed as repeats of open work.

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

# One reading in ALERT_EVERY crosses a threshold (half SpO2, half heart rate): 1 %.
ALERT_EVERY = 100

# Pathway-level alerts as in the heart-failure telemonitoring pathway
# (workflows/library/hf-telemonitoring): watched in every non-final state, each opening a
# task for the nurse, with triage points.
DEFINITION = textwrap.dedent(
    """
    key: bench-ingest
    version: 1
    title: Ingest benchmark
    roles: [nurse, coordinator]
    initial: monitoring
    monitoring:
      measurements: ['29463-7', '59408-5', '8867-4']
      parameters:
        spo2_floor:
          title: {en: SpO2 floor, fr: Seuil de SpO2}
          default: 90
          minimum: 80
          maximum: 95
          unit: '%'
          roles: [nurse]
      alerts:
        - name: weight-gain
          title: {en: Weight gain, fr: Prise de poids}
          when: "observation.code == '29463-7' && rise('29463-7', 'P3D') >= 2.0"
          role: nurse
          priority: urgent
          score: [{when: "rise('29463-7', 'P3D') >= 3.0", points: 3}, {points: 2}]
        - name: low-spo2
          title: {en: Low SpO2, fr: SpO2 basse}
          when: "observation.code == '59408-5' && observation.value < params.spo2_floor"
          role: nurse
          priority: urgent
          score: 3
        - name: abnormal-heart-rate
          title: {en: Abnormal heart rate, fr: Fréquence cardiaque anormale}
          when: >-
            observation.code == '8867-4' &&
            (observation.value > 120.0 || observation.value < 50.0)
          role: nurse
          priority: urgent
          score: 2
      triage:
        bands: {medium: 3, high: 5}
    states:
      monitoring:
        on:
          stop: {to: done, roles: [coordinator]}
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

    from coordination.services import care_pathway_start
    from directory.services import care_team_member_add, practitioner_create
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
    """Plausible readings of a stable patient, one every few minutes, going forward in time:
    every condition is evaluated on each reading, and one reading in ALERT_EVERY crosses a
    threshold (SpO2 85 %, or heart rate 150/min, in turn)."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.at = dt.datetime.now(dt.UTC) - dt.timedelta(days=60)
        self.weight = 80.0
        self.crossing = 0  # readings generated that cross a threshold

    def batch(self) -> list[dict[str, Any]]:
        items = []
        for i in range(BATCH):
            self.at += dt.timedelta(minutes=3)
            kind = i % 3
            # i % 200 == 1 is a SpO2 reading (1 % 3 == 1), i % 200 == 101 a heart rate one.
            crossing = i % (2 * ALERT_EVERY) in (1, ALERT_EVERY + 1)
            if kind == 0:
                self.weight += self.random.uniform(-0.05, 0.05)
                item = {"code": "29463-7", "value": f"{self.weight:.2f}", "unit": "kg"}
            elif kind == 1:
                spo2 = 85 if crossing else self.random.randint(93, 99)
                item = {"code": "59408-5", "value": str(spo2), "unit": "%"}
            else:
                rate = 150 if crossing else self.random.randint(55, 95)
                item = {"code": "8867-4", "value": str(rate), "unit": "/min"}
            self.crossing += crossing
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


def _repeats() -> int:
    from coordination.models import AlertRecord

    return sum(AlertRecord.objects.values_list("repeats", flat=True))


def alert_work_done(nurse_user: Any, patients: list[int]) -> int:
    """The nurse completes the open tasks of the bench patients (outside the timing), as
    after a call: the next alerts are new work, not repeats absorbed by open work."""
    from coordination import task_states
    from coordination.models import Task
    from coordination.services import TaskActionInput, task_act

    done = 0
    open_tasks = Task.objects.filter(patient_id__in=patients, status__in=task_states.OPEN)
    for task_id in open_tasks.values_list("pk", flat=True):
        task_act(task_id=task_id, user=nurse_user, data=TaskActionInput(action="complete"))
        done += 1
    return done


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
        alert_work_done(user, patients)
        warm_up_alerts = AlertRecord.objects.count()
        warm_up_repeats = _repeats()
        crossing_sent = tasks_done = 0
        for _ in range(rounds):
            sent = sum(f.crossing for f in feeds.values())
            api_runs.append(measure_api(client, patients, feeds, batches))
            crossing_sent += sum(f.crossing for f in feeds.values()) - sent
            insert_runs.append(measure_inserts(db_url, patients, feeds, batches))
            tasks_done += alert_work_done(user, patients)
        alerts = AlertRecord.objects.count() - warm_up_alerts
        repeats = _repeats() - warm_up_repeats

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
        "goal_ratio_met": ratio >= 0.3,
        "api_readings": rounds * batches * BATCH,
        "readings_crossing_thresholds": crossing_sent,
        "alerts_raised": alerts,
        "alert_repeats": repeats,
        "alert_tasks_completed_between_rounds": tasks_done,
    }
    print(
        f"batch API with alerts: {api:.0f} obs/s; plain INSERTs: {inserts:.0f} rows/s; "
        f"ratio {ratio:.3f}; {crossing_sent} readings over thresholds, {alerts} alerts raised",
        file=sys.stderr,
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
