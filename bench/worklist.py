"""A nurse's worklists through the REST API, on PostgreSQL, with a realistic volume behind
them: 10k patients, 100k tasks, about 1M object-permission rows.

    python bench/worklist.py [--quick]

Needs PostgreSQL (DATABASE_URL: the server; the benchmark creates and drops its own
database `parcours_bench_worklist` there). The schema comes from the migrations; the seed
(the measured nurse, her home-care team, the pathway definition) from the services; the
volume from INSERT ... SELECT generate_series in the shape the services give it:

- practitioners (half nurses, GPs, coordinators), each patient with a care team of
  MEMBERS of them in the role of their profession, and a care pathway;
- grants as `patient_access_sync` writes them: view_patient and change_patient on the
  patient to each member's user (and to the team's group where a service team is a member);
  change_task on each owned task to its owner's user; view/change on the care pathway to each
  member (the care pathway tables mirror the patient's grants);
- 10 tasks per patient: 5 finished (4 completed, 1 cancelled), 5 open (in progress, ready,
  requested), offered to the role of the care team, owned by a member playing that role when
  claimed, due from 20 days ago to 40 days ahead, all priorities;
- triage risk on each pathway (5 % high, 10 % medium, the rest low, with scores), kept on
  the patient's tasks as `risk_rank` the way coordination.services.triage keeps it: the
  worklists order by it first (band, score, priority, due time).

The measured nurse is in the care team of NURSE_PATIENTS patients in person, and of
TEAM_PATIENTS more through her home-care service team. Her three worklists (mine, unclaimed
for her roles and teams, overdue) are read through GET /api/v1/tasks/?view=...&page_size=N
with Django's test client in-process: session authentication, permission-filtered
selectors, serializer, audit record, the whole middleware stack. Latency (p50, p95) is
measured without query capture; queries per request are counted on separate requests.

The data is checked through the real selectors before anything is measured.
Ends with one JSON line of figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    fresh_databases,
    median,
    percentile,
    server_url,
    setup_django,
    with_database,
)

BENCH_DB = "parcours_bench_worklist"
VIEWS = ("mine", "unclaimed", "overdue")
PAGE_SIZES = (10, 100)
GOAL_P95_MS = 50.0

DEFINITION = textwrap.dedent(
    """
    key: bench-worklist
    version: 1
    title: Benchmark worklist
    roles: [gp, nurse, coordinator]
    initial: assessment
    states:
      assessment:
        on_enter:
          - task: {code: visit, title: Home visit, role: nurse, due: PT48H}
        on:
          tasks_completed: closed
      closed: {final: true}
    """
)


@dataclass(frozen=True)
class Sizes:
    patients: int
    practitioners: int
    members: int  # practitioners in each care team
    nurse_patients: int
    team_patients: int
    tasks_per_patient: int = 10


FULL = Sizes(patients=10_000, practitioners=2_000, members=24, nurse_patients=1_000,
             team_patients=2_000)  # fmt: skip
QUICK = Sizes(patients=1_000, practitioners=200, members=24, nurse_patients=100,
              team_patients=200)  # fmt: skip


@dataclass(frozen=True)
class Seed:
    nurse_user_id: int
    nurse_id: int
    team_id: int
    group_id: int
    definition_id: int


def seed() -> Seed:
    """What the services create: the nurse, her team, the published definition."""
    from directory.services import practitioner_create
    from directory.services.organisations import service_team_create, service_team_member_add
    from workflows.actors import SYSTEM
    from workflows.services import definition_publish

    definition = definition_publish(source=DEFINITION, actor=SYSTEM, fmt="yaml").definition
    nurse = practitioner_create(
        username="bench-nurse",
        given_name="Synthetic",
        family_name="Nurse",
        profession="nurse",
        actor=None,
    )
    team = service_team_create(name="Synthetic home care", roles=["nurse"], actor=None)
    service_team_member_add(team=team, practitioner=nurse, actor=None)
    return Seed(nurse.user_id, nurse.pk, team.pk, team.group_id, definition.pk)


def _sql_role(i: str) -> str:
    """Profession (and so care-team role) of practitioner number `i` (1-based): residues
    0-4 of ten are nurses, 5-7 GPs, 8-9 coordinators."""
    return f"CASE WHEN {i} % 10 < 5 THEN 'nurse' WHEN {i} % 10 < 8 THEN 'gp' ELSE 'coordinator' END"


def _sql_band(g: str) -> str:
    """Triage band of patient number `g`'s pathway: 5 % high, 10 % medium, the rest low (an
    inbox where most patients are stable)."""
    return f"CASE WHEN {g} % 20 = 0 THEN 'high' WHEN {g} % 10 = 5 THEN 'medium' ELSE 'low' END"


def _sql_score(g: str) -> str:
    """Its score, consistent with the band's default thresholds (medium 3, high 5)."""
    return (
        f"CASE WHEN {g} % 20 = 0 THEN 5 + {g} % 5 WHEN {g} % 10 = 5 THEN 3 + {g} % 2 "
        f"ELSE {g} % 3 END"
    )


def _sql_risk_rank(g: str) -> str:
    """coordination.models.risk_rank of that band and score, as pathway_risk_apply keeps it
    on the patient's open tasks (closed ones keep theirs too: the same value here)."""
    from coordination.models import BAND_RANK, RISK_SCORES, RiskBand

    band_rank = (
        f"CASE WHEN {g} % 20 = 0 THEN {BAND_RANK[RiskBand.HIGH]} "
        f"WHEN {g} % 10 = 5 THEN {BAND_RANK[RiskBand.MEDIUM]} ELSE {BAND_RANK[RiskBand.LOW]} END"
    )
    return f"({band_rank}) * {RISK_SCORES} + {RISK_SCORES - 1} - ({_sql_score(g)})"


def populate(s: Sizes, seed_: Seed) -> dict[str, int]:
    """Bulk rows in the services' shape; returns the row counts of the tables filled."""
    from django.db import connection

    def perm(model: str, codename: str) -> int:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT p.id FROM auth_permission p JOIN django_content_type c "
                "ON c.id = p.content_type_id WHERE c.model = %s AND p.codename = %s",
                [model, codename],
            )
            return int(cur.fetchone()[0])

    view_patient, change_patient = (
        perm("patient", "view_patient"),
        perm("patient", "change_patient"),
    )
    view_path = perm("carepathway", "view_carepathway")
    change_path = perm("carepathway", "change_carepathway")
    change_task = perm("task", "change_task")

    def top(table: str) -> int:
        with connection.cursor() as cur:
            cur.execute(f"SELECT coalesce(max(id), 0) FROM {table}")
            return int(cur.fetchone()[0])

    u0, r0 = top("auth_user") + 1000, top("coordination_practitioner") + 1000
    p0, ct0 = top("patients_patient"), top("coordination_careteam")
    cp0, pi0 = top("coordination_carepathway"), top("workflows_pathwayinstance")
    t0 = top("coordination_task")
    n, pr, k, c = s.patients, s.practitioners, s.members, s.nurse_patients
    team_end = s.nurse_patients + s.team_patients
    nurse, team, group = seed_.nurse_id, seed_.team_id, seed_.group_id
    # Member number `i` (1-based) of patient g's team, k = 0..members-1: consecutive
    # practitioners, so the ten residues (the three professions) are all there.
    member = f"((g * {k} + k) % {pr}) + 1"
    # The first member of patient g's team playing `role`: residue 0 nurse, 5 GP, 8 coordinator.
    first_of = (
        f"(((g * {k}) + ((((CASE role WHEN 'nurse' THEN 0 WHEN 'gp' THEN 5 ELSE 8 END)"
        f" - (g * {k}) % {pr} - 1) % 10 + 10) % 10)) % {pr}) + 1"
    )
    statements = [
        f"""INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name,
                email, is_staff, is_active, date_joined)
            SELECT {u0} + i, '!', false, 'bench-pro-' || i, 'Synthetic', 'Professional ' || i,
                '', false, true, now()
            FROM generate_series(1, {pr}) i""",
        f"""INSERT INTO coordination_practitioner (id, profession, specialty, rpps, active,
                created_at, version, organization_id, user_id)
            SELECT {r0} + i, {_sql_role("i")}, '', '', true, now(), 1, NULL, {u0} + i
            FROM generate_series(1, {pr}) i""",
        f"""INSERT INTO patients_patient (id, family_name, given_names, birth_date, sex,
                birth_place_code, phone, email, address_lines, postal_code, city, ins_nir,
                ins_oid, identity_status, created_at, updated_at, version, user_id)
            SELECT {p0} + g, 'Synthetic ' || g, 'Patient', date '1935-01-01' + (g * 7) % 25000,
                CASE WHEN g % 2 = 0 THEN 'female' ELSE 'male' END, '', '', '', '[]', '', '',
                '', '', 'provisional', now(), now(), 1, NULL
            FROM generate_series(1, {n}) g""",
        f"""INSERT INTO coordination_careteam (id, created_at, version, patient_id)
            SELECT {ct0} + g, now(), 1, {p0} + g FROM generate_series(1, {n}) g""",
        f"""INSERT INTO coordination_careteammember (role, active, since, until, care_team_id,
                practitioner_id, service_team_id)
            SELECT {_sql_role("m.i")}, true, now(), NULL, {ct0} + g, {r0} + m.i, NULL
            FROM generate_series(1, {n}) g, generate_series(0, {k} - 1) k,
                LATERAL (SELECT {member} AS i) m""",
        f"""INSERT INTO coordination_careteammember (role, active, since, until, care_team_id,
                practitioner_id, service_team_id)
            SELECT 'nurse', true, now(), NULL, {ct0} + g, {nurse}, NULL
            FROM generate_series(1, {c}) g""",
        f"""INSERT INTO coordination_careteammember (role, active, since, until, care_team_id,
                practitioner_id, service_team_id)
            SELECT 'nurse', true, now(), NULL, {ct0} + g, NULL, {team}
            FROM generate_series({c} + 1, {team_end}) g""",
        # Grants as patient_access_sync writes them.
        f"""INSERT INTO patients_patientuserobjectpermission (content_object_id, permission_id,
                user_id)
            SELECT ct.patient_id, perm, p.user_id
            FROM coordination_careteammember m
            JOIN coordination_careteam ct ON ct.id = m.care_team_id
            JOIN coordination_practitioner p ON p.id = m.practitioner_id,
            unnest(ARRAY[{view_patient}, {change_patient}]) perm
            WHERE ct.id > {ct0}""",
        f"""INSERT INTO patients_patientgroupobjectpermission (content_object_id, permission_id,
                group_id)
            SELECT {p0} + g, perm, {group}
            FROM generate_series({c} + 1, {team_end}) g,
            unnest(ARRAY[{view_patient}, {change_patient}]) perm""",
        f"""INSERT INTO workflows_pathwayinstance (id, state, status, context, revision,
                started_at, updated_at, ended_at, definition_id, subject)
            SELECT {pi0} + g, 'assessment', 'active', '{{}}', 1, now(), now(), NULL,
                {seed_.definition_id}, 'care-pathway:' || ({cp0} + g)
            FROM generate_series(1, {n}) g""",
        f"""INSERT INTO coordination_carepathway (id, created_at, instance_id, patient_id,
                started_by_id, care_team_id, risk_score, risk_band, risk_updated_at)
            SELECT {cp0} + g, now(), {pi0} + g, {p0} + g, NULL, {ct0} + g, {_sql_score("g")},
                {_sql_band("g")}, CASE WHEN {_sql_score("g")} > 0 THEN now() END
            FROM generate_series(1, {n}) g""",
        f"""INSERT INTO coordination_carepathwayuserobjectpermission (content_object_id,
                permission_id, user_id)
            SELECT {cp0} + (g.content_object_id - {p0}),
                CASE g.permission_id WHEN {view_patient} THEN {view_path} ELSE {change_path} END,
                g.user_id
            FROM patients_patientuserobjectpermission g WHERE g.content_object_id > {p0}""",
        # Tasks: status by (g + j) % 10, role by j % 3; claimed ones owned by the first
        # member playing the role, or by the measured nurse on her own patients (one in two).
        f"""INSERT INTO coordination_task (id, code, title, description, status, priority,
                priority_rank, risk_rank, due_at, offered_role, for_patient, requester_label,
                pathway_state, pathway_revision, note, output, version, created_at,
                updated_at, ended_at, care_pathway_id, offered_team_id, owner_id, patient_id,
                requested_by_id)
            SELECT {t0} + (g - 1) * {s.tasks_per_patient} + j + 1, 'step-' || j,
                to_jsonb('Synthetic task ' || j), '""', st.status,
                (ARRAY['stat', 'asap', 'urgent', 'routine'])[pr.rank + 1], pr.rank,
                {_sql_risk_rank("g")},
                now() + make_interval(days => (g * 13 + j * 7) % 61 - 20, hours => j),
                role, false, 'pathway:bench-worklist@1', 'assessment', 1, '', '{{}}',
                CASE WHEN owned THEN 3 ELSE 1 END, now() - interval '30 days', now(),
                CASE WHEN st.status IN ('completed', 'cancelled') THEN now() END,
                {cp0} + g, NULL,
                CASE WHEN NOT owned THEN NULL
                     WHEN role = 'nurse' AND g <= {c} AND (g + j) % 2 = 0 THEN {nurse}
                     ELSE {r0} + {first_of} END,
                {p0} + g, NULL
            FROM generate_series(1, {n}) g, generate_series(0, {s.tasks_per_patient} - 1) j,
                LATERAL (SELECT (ARRAY['nurse', 'gp', 'coordinator'])[j % 3 + 1] AS role) r,
                LATERAL (SELECT (ARRAY['completed', 'completed', 'completed', 'completed',
                    'cancelled', 'in-progress', 'in-progress', 'ready', 'ready', 'requested'])
                    [(g + j) % 10 + 1] AS status) st,
                LATERAL (SELECT (g * 7 + j) % 4 AS rank) pr,
                LATERAL (SELECT st.status NOT IN ('requested', 'cancelled')
                    AND NOT (st.status = 'ready' AND (g + j) % 4 < 2) AS owned) o""",
        f"""INSERT INTO coordination_taskuserobjectpermission (content_object_id, permission_id,
                user_id)
            SELECT t.id, {change_task}, p.user_id FROM coordination_task t
            JOIN coordination_practitioner p ON p.id = t.owner_id WHERE t.id > {t0}""",
    ]
    with connection.cursor() as cur:
        for sql in statements:
            cur.execute(sql)
        for table in (
            "auth_user", "coordination_practitioner", "patients_patient", "coordination_careteam",
            "coordination_carepathway", "workflows_pathwayinstance", "coordination_task",
        ):  # fmt: skip
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
    counts = {}
    with connection.cursor() as cur:
        for table in (
            "patients_patient", "coordination_task", "patients_patientuserobjectpermission",
            "patients_patientgroupobjectpermission", "coordination_carepathwayuserobjectpermission",
            "coordination_taskuserobjectpermission",
        ):  # fmt: skip
            cur.execute(f"SELECT count(*) FROM {table}")
            counts[table] = int(cur.fetchone()[0])
    return counts


def check(s: Sizes, seed_: Seed) -> dict[str, int]:
    """The data read back through the real selectors agrees with how it was built."""
    from django.contrib.auth import get_user_model

    from coordination.errors import NotFound
    from coordination.models import Task
    from coordination.selectors import (
        access_task,
        worklist_mine,
        worklist_overdue,
        worklist_unclaimed,
    )
    from directory.selectors import care_roles
    from patients.selectors import visible_patients

    user = get_user_model().objects.get(pk=seed_.nurse_user_id)
    visible = visible_patients(user).count()
    assert visible == s.nurse_patients + s.team_patients, visible
    mine = worklist_mine(user)
    expected_mine = Task.objects.filter(
        owner_id=seed_.nurse_id, status__in=["in-progress", "ready"]
    ).count()
    assert mine.count() == expected_mine > 0, (mine.count(), expected_mine)
    unclaimed = worklist_unclaimed(user)
    assert unclaimed.count() > 0
    assert all(t.owner_id is None and t.offered_role == "nurse" for t in unclaimed[:200])
    # The worklists follow the triage order: the patient's band and score first.
    from coordination.selectors import patient_risk_rank

    for rows in (mine, unclaimed):
        ranks = [t.risk_rank for t in rows[:200]]
        assert ranks == sorted(ranks), ranks[:20]
        assert len(set(ranks)) > 1, ranks[:20]
        first = rows[0]
        assert first.risk_rank == patient_risk_rank(patient_id=first.patient_id), first.pk
    own_patient = mine.first()
    assert own_patient is not None
    assert care_roles(user=user, patient_id=own_patient.patient_id) == {"nurse"}
    outsider = Task.objects.exclude(patient_id__in=visible_patients(user).values("pk")).first()
    assert outsider is not None
    try:
        access_task(user=user, task_id=outsider.pk)
    except NotFound:
        pass
    else:
        raise AssertionError("a task of a patient outside the nurse's teams is visible")
    return {
        "visible_patients": visible,
        "mine": mine.count(),
        "unclaimed": unclaimed.count(),
        "overdue": worklist_overdue(user).count(),
    }


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cur:
        # The state autovacuum keeps a live table in: statistics, and the visibility map
        # that lets the worklist walk its index without reading the table.
        cur.execute("VACUUM ANALYZE")


def measure(seed_: Seed, repeat: int) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    user = get_user_model().objects.get(pk=seed_.nurse_user_id)
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    figures: dict[str, Any] = {}
    for view in VIEWS:
        for size in PAGE_SIZES:
            url = f"/api/v1/tasks/?view={view}&page_size={size}"
            for _ in range(3):  # warm-up: first-use imports, connection, plan cache
                assert client.get(url).status_code == 200
            timings = []
            for _ in range(repeat):
                started = time.perf_counter()
                response = client.get(url)
                timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.content[:300]
            rows = len(response.json()["results"])
            counts = set()
            for _ in range(3):
                with CaptureQueriesContext(connection) as queries:
                    assert client.get(url).status_code == 200
                counts.add(len(queries.captured_queries))
            figures[f"{view}_{size}"] = {
                "p50_ms": round(median(timings), 1),
                "p95_ms": round(percentile(timings, 0.95), 1),
                "queries": max(counts),
                "rows": rows,
            }
    return figures


def explain(seed_: Seed) -> dict[str, str]:
    """EXPLAIN ANALYZE of the statement that reads each worklist's first page of 100 keys,
    as the endpoint sends it (captured from a real request), for the record (stderr)."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    user = get_user_model().objects.get(pk=seed_.nurse_user_id)
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    sent: list[tuple[str, Any]] = []

    def capture(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        sent.append((sql, params))
        return execute(sql, params, many, context)

    plans = {}
    for view in VIEWS:
        sent.clear()
        with connection.execute_wrapper(capture):
            assert client.get(f"/api/v1/tasks/?view={view}&page_size=100").status_code == 200
        # The page's keys: the one statement that orders the tasks and stops at the page.
        keys = [(sql, params) for sql, params in sent if sql.endswith("LIMIT 101")]
        assert len(keys) == 1, [sql[:80] for sql, _ in sent]
        sql, params = keys[0]
        with connection.cursor() as cur:
            cur.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
            plans[view] = "\n".join(row[0] for row in cur.fetchall())
    return plans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the volume (under 60 s)")
    parser.add_argument("--explain", action="store_true", help="print the query plans (stderr)")
    args = parser.parse_args()
    sizes, repeat = (QUICK, 20) if args.quick else (FULL, 100)
    url = server_url()
    db_url = with_database(url, BENCH_DB)
    with fresh_databases(url, BENCH_DB):
        setup_django(db_url)
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        started = time.perf_counter()
        seed_ = seed()
        counts = populate(sizes, seed_)
        analyze()
        build_s = time.perf_counter() - started
        lists = check(sizes, seed_)
        figures = measure(seed_, repeat)
        if args.explain:
            for view, plan in explain(seed_).items():
                print(f"--- {view}\n{plan}", file=sys.stderr)
    permission_rows = sum(v for k, v in counts.items() if k.endswith("objectpermission"))
    worst_p95 = max(f["p95_ms"] for f in figures.values())
    same_queries = all(
        figures[f"{v}_{PAGE_SIZES[0]}"]["queries"] == figures[f"{v}_{PAGE_SIZES[1]}"]["queries"]
        for v in VIEWS
    )
    out: dict[str, Any] = {
        "bench": "worklist",
        "quick": args.quick,
        "patients": counts["patients_patient"],
        "tasks": counts["coordination_task"],
        "object_permission_rows": permission_rows,
        "build_s": round(build_s, 1),
        "nurse_visible_patients": lists["visible_patients"],
        "nurse_list_sizes": {v: lists[v] for v in VIEWS},
        "requests_per_case": repeat,
        **figures,
        "worst_p95_ms": worst_p95,
        "goal_p95_ms": GOAL_P95_MS,
        "goal_p95_met": worst_p95 <= GOAL_P95_MS,
        "goal_same_queries_10_and_100": same_queries,
    }
    summary = "; ".join(
        f"{key}: p50 {f['p50_ms']} ms, p95 {f['p95_ms']} ms, {f['queries']} queries"
        for key, f in figures.items()
    )
    print(
        f"{permission_rows} permission rows, built in {build_s:.0f} s; {summary}", file=sys.stderr
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
