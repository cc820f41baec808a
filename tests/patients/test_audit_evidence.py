"""The audit trail as evidence, not a log: a chain keyed with a secret the database does not
hold, checkpoints of it kept outside the database, and database roles under which the
application cannot rewrite it (docs/audit.md)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import importlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import time_machine
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from coordination.tasks import audit_chain_backstop
from patients.chain_keys import chain_keys, key_id
from patients.models import GENESIS_HASH, AuditChainHead, AuditEvent, chain_hash
from patients.services import audit_chain_extend
from tests.patients.factories import PatientFactory, UserFactory
from tests.patients.test_audit import TABLE, append_only_lifted, read, verify

ROOT = Path(__file__).resolve().parents[2]
HEAD = AuditChainHead._meta.db_table
TRIGGER = "patients_audit_append_only"
CHECKED_AT = dt.datetime(2026, 3, 3, tzinfo=dt.UTC)
CHECKED = "2026-03-03T00:00:00.000000Z"
KEY_A = "rotation-test-key-a-0123456789abcdefghijkl"
KEY_B = "rotation-test-key-b-0123456789abcdefghijkl"
ATTACKERS_KEY = b"the-attackers-own-key-0123456789abcdefghij"


def chain_of(patient, nurse, count: int, start: int = 0) -> list[AuditEvent]:
    records = [
        read(nurse, patient, CHECKED_AT - dt.timedelta(hours=start + i)) for i in range(count)
    ]
    audit_chain_extend()
    return [AuditEvent.objects.get(pk=r.pk) for r in records]


def checked_at(moment: dt.datetime = CHECKED_AT, *args: str) -> tuple[int, str]:
    with time_machine.travel(moment, tick=False):
        return verify(*args)


def rechain(
    cursor,
    first: int,
    *,
    key: bytes | None,
    key_id: str | None = None,
    resource_id: str = "999",
    through: int | None = None,
) -> None:
    """What someone who can write the table does: change the record at seq `first`, then
    recompute the hashes from it on (through seq `through`, or to the end, moving the chain
    head along) with `key` (None: the public unkeyed SHA-256), writing `key_id` in each
    (None: leaving it as it is)."""
    events = AuditEvent.objects.filter(seq__gte=first).order_by("seq")
    if through is not None:
        events = events.filter(seq__lte=through)
    prev = AuditEvent.objects.get(seq=first - 1).hash if first > 1 else GENESIS_HASH
    for event in events:
        if event.seq == first:
            event.resource_id = resource_id
        event.prev_hash = prev
        if key_id is not None:
            event.key_id = key_id
        event.hash = prev = chain_hash(prev, event.canonical_record(), key)
        cursor.execute(
            f"UPDATE {TABLE} SET resource_id = %s, prev_hash = %s, hash = %s, key_id = %s "
            "WHERE seq = %s",
            [event.resource_id, event.prev_hash, event.hash, event.key_id, event.seq],
        )
    if through is None:
        cursor.execute(f"UPDATE {HEAD} SET last_hash = %s", [prev])


def checkpoint_lines(directory: Path) -> list[dict[str, Any]]:
    path = directory / "audit-checkpoints.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def the_key() -> bytes:
    return settings.AUDIT_CHAIN_KEY.encode()


# --- the attacker who owns the table -------------------------------------------------------


@contextmanager
def as_table_owner() -> Iterator[str]:
    """The session acts as a role that owns the audit tables and is not a superuser: what
    the application's role is when one role runs the migrations and the application. Undone
    with the test's transaction."""
    owner = f"parcours_test_owner_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        # Deferred foreign-key checks of the rows just inserted must run before ALTER TABLE.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"CREATE ROLE {owner}")
        for table in (TABLE, HEAD):
            cursor.execute(f"ALTER TABLE {table} OWNER TO {owner}")
        cursor.execute(f"SET ROLE {owner}")
    try:
        yield owner
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")


OWN_KEY_ID = key_id(ATTACKERS_KEY)


@pytest.mark.parametrize(
    ("key", "written_key_id", "reason"),
    [
        (None, None, "hash mismatch: stored "),
        (None, "", "hashed without a key, but keyed hashing began at seq 1\n"),
        (ATTACKERS_KEY, None, "hash mismatch: stored "),
        (
            ATTACKERS_KEY,
            OWN_KEY_ID,
            f"hashed with key id {OWN_KEY_ID}, which is neither AUDIT_CHAIN_KEY nor one of "
            "AUDIT_CHAIN_KEY_FALLBACKS\n",
        ),
    ],
    ids=[
        "public algorithm, key id kept",
        "public algorithm, key id cleared",
        "a key of their own, key id kept",
        "a key of their own, named by its id",
    ],
)
def test_the_table_owner_rewriting_a_record_and_recomputing_the_chain_is_caught(
    postgres_only, patient, nurse, key, written_key_id, reason
):
    chain_of(patient, nurse, 4)

    with as_table_owner(), connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER {TRIGGER}")
        rechain(cursor, 2, key=key, key_id=written_key_id)
        cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER {TRIGGER}")
    code, output = verify()

    assert code == 1
    assert output.startswith(f"audit chain broken at seq 2: {reason}")
    assert AuditEvent.objects.get(seq=2).resource_id == "999"  # the rewrite itself went through


def test_the_table_owner_cannot_truncate_the_trail_without_disabling_the_trigger(
    postgres_only, patient, nurse
):
    chain_of(patient, nurse, 2)

    with (
        as_table_owner(),
        pytest.raises(DatabaseError, match=r"append-only \(TRUNCATE refused\)"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"TRUNCATE {TABLE}")

    assert AuditEvent.objects.count() == 2


def test_postgresql_refuses_to_chain_a_record_without_a_key(postgres_only, patient, nurse):
    record = read(nurse, patient)

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=record.pk).update(seq=1, prev_hash=GENESIS_HASH, hash="1" * 64)

    assert audit_chain_extend() == 1
    assert AuditEvent.objects.get(pk=record.pk).key_id == chain_keys().current.id


def test_the_command_reports_a_rewritten_history_with_exit_status_1(
    postgres_transactional, tmp_path
):
    """Through `manage.py verify_audit` in a process of its own, on committed data."""
    nurse, patient = UserFactory.create(username="synthetic-nurse"), PatientFactory.create()
    chain_of(patient, nurse, 3)
    params = connection.get_connection_params()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": (
            f"postgres://{params.get('user', '')}@{params.get('host', '')}:"
            f"{params.get('port', '')}/{connection.settings_dict['NAME']}"
        ),
        "AUDIT_CHECKPOINT_DIR": str(tmp_path),
    }

    def verify_audit() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", "verify_audit"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    before = verify_audit()
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER {TRIGGER}")
        try:
            rechain(cursor, 2, key=None)
        finally:
            cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER {TRIGGER}")
    after = verify_audit()

    assert before.returncode == 0, before.stdout + before.stderr
    assert before.stdout.splitlines()[0] == "audit chain intact: 3 records"
    assert before.stdout.splitlines()[2].startswith("checkpoint written: seq 3 in ")
    assert after.returncode == 1, after.stdout + after.stderr
    assert after.stdout.startswith("audit chain broken at seq 2: hash mismatch: stored ")


# --- checkpoints -----------------------------------------------------------------------------


def test_a_correct_chain_matches_its_checkpoints_and_is_anchored_again(
    patient, nurse, audit_checkpoint_dir
):
    chain_of(patient, nurse, 3)
    checked_at()
    chain_of(patient, nurse, 2, start=3)
    file = audit_checkpoint_dir / "audit-checkpoints.jsonl"

    grown = checked_at(CHECKED_AT + dt.timedelta(hours=1))
    unchanged = checked_at(CHECKED_AT + dt.timedelta(hours=2))

    assert grown == (
        0,
        "audit chain intact: 5 records\n"
        f"checkpoints matched: 1 in {audit_checkpoint_dir}, the last at seq 3 ({CHECKED})\n"
        f"checkpoint written: seq 5 in {file}\n",
    )
    assert unchanged == (
        0,
        "audit chain intact: 5 records\n"
        f"checkpoints matched: 2 in {audit_checkpoint_dir}, the last at seq 5 "
        "(2026-03-03T01:00:00.000000Z)\n",
    )
    current = chain_keys().current.id
    assert [
        (c["seq"], c["keyed_from"], c["key_id"]) for c in checkpoint_lines(audit_checkpoint_dir)
    ] == [(3, 1, current), (5, 1, current)]


def test_a_checkpoint_line_can_be_checked_from_the_documented_recipe(
    patient, nurse, audit_checkpoint_dir
):
    (*_, last) = chain_of(patient, nurse, 2)
    checked_at()

    (line,) = checkpoint_lines(audit_checkpoint_dir)

    body = {name: value for name, value in line.items() if name != "sig"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    signed = ("parcours audit checkpoint:" + text).encode()
    assert line["sig"] == hmac.new(the_key(), signed, hashlib.sha256).hexdigest()
    assert body == {
        "at": CHECKED,
        "hash": last.hash,
        "key_id": chain_keys().current.id,
        "keyed_from": 1,
        "seq": 2,
    }


def test_cutting_the_tail_after_a_checkpoint_is_reported(patient, nurse):
    records = chain_of(patient, nurse, 5)
    checked_at()

    with append_only_lifted(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE seq > 3")
        cursor.execute(f"UPDATE {HEAD} SET last_seq = 3, last_hash = %s", [records[2].hash])

    assert verify() == (
        1,
        f"audit chain broken at seq 4: record missing (the checkpoint of {CHECKED} (seq 5, "
        "audit-checkpoints.jsonl line 1) vouches for the chain up to seq 5; it ends at seq 3)\n",
    )


def test_a_history_rewritten_with_the_key_itself_differs_from_the_checkpoints(patient, nurse):
    chain_of(patient, nurse, 1)
    checked_at()
    chain_of(patient, nurse, 3, start=1)
    checked_at()
    stored = AuditEvent.objects.get(seq=4).hash

    with append_only_lifted(), connection.cursor() as cursor:
        rechain(cursor, 3, key=the_key())
    code, output = verify()

    forged = AuditEvent.objects.get(seq=4).hash
    assert (code, output) == (
        1,
        f"audit chain broken at seq 4: hash {forged} is not the one the checkpoint of "
        f"{CHECKED} (seq 4, audit-checkpoints.jsonl line 2) recorded ({stored}): a record "
        "after seq 1, the last checkpoint matched, was rewritten and the chain recomputed\n",
    )


def test_a_chain_recomputed_without_a_key_from_seq_1_on_is_caught_by_its_checkpoint(patient, nurse):
    chain_of(patient, nurse, 3)
    checked_at()

    with append_only_lifted(), connection.cursor() as cursor:
        rechain(cursor, 1, key=None, key_id="")

    assert verify() == (
        1,
        "audit chain broken at seq 1: hashed without a key, but keyed hashing began at seq 1 "
        f"(the checkpoint of {CHECKED} (seq 3, audit-checkpoints.jsonl line 1) says so)\n",
    )


def test_an_altered_checkpoint_line_is_reported(patient, nurse, audit_checkpoint_dir):
    chain_of(patient, nurse, 3)
    checked_at()
    path = audit_checkpoint_dir / "audit-checkpoints.jsonl"
    path.write_text(path.read_text().replace('"seq":3', '"seq":2'))

    assert verify() == (
        1,
        "audit checkpoints cannot be trusted: audit-checkpoints.jsonl line 1: the signature "
        "does not match the checkpoint (the line was altered, or forged without the key)\n",
    )


def test_a_restored_copy_of_the_checkpoints_catches_a_cut_whose_local_file_was_removed(
    patient, nurse, audit_checkpoint_dir, tmp_path
):
    records = chain_of(patient, nurse, 4)
    checked_at()
    restored = tmp_path / "restored-from-write-once-storage"
    shutil.copytree(audit_checkpoint_dir, restored)

    (audit_checkpoint_dir / "audit-checkpoints.jsonl").unlink()
    with append_only_lifted(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE seq = 4")
        cursor.execute(f"UPDATE {HEAD} SET last_seq = 3, last_hash = %s", [records[2].hash])

    assert verify("--no-checkpoint")[0] == 0  # nothing left here says otherwise
    assert verify("--checkpoint-dir", str(restored), "--no-checkpoint") == (
        1,
        f"audit chain broken at seq 4: record missing (the checkpoint of {CHECKED} (seq 4, "
        "audit-checkpoints.jsonl line 1) vouches for the chain up to seq 4; it ends at seq 3)\n",
    )
    assert not (audit_checkpoint_dir / "audit-checkpoints.jsonl").exists()


# --- the backstop job anchors the chain --------------------------------------------------------


def test_the_backstop_job_anchors_the_chain_at_most_every_interval(
    settings, patient, nurse, audit_checkpoint_dir
):
    settings.AUDIT_CHECKPOINT_SECONDS = 60
    read(nurse, patient)
    read(nurse, patient)

    def backstop(after: dt.timedelta) -> int:
        with time_machine.travel(CHECKED_AT + after, tick=False):
            return int(audit_chain_backstop.apply().get())

    first = backstop(dt.timedelta(0))
    read(nurse, patient)
    soon = backstop(dt.timedelta(seconds=30))
    later = backstop(dt.timedelta(seconds=61))
    idle = backstop(dt.timedelta(seconds=200))

    assert (first, soon, later, idle) == (2, 1, 0, 0)
    assert [(c["seq"], c["at"]) for c in checkpoint_lines(audit_checkpoint_dir)] == [
        (2, CHECKED),
        (3, "2026-03-03T00:01:01.000000Z"),
    ]


def test_the_backstop_job_does_not_anchor_a_chain_it_finds_broken(
    settings, patient, nurse, audit_checkpoint_dir, caplog
):
    settings.AUDIT_CHECKPOINT_SECONDS = 60
    chain_of(patient, nurse, 2)
    with time_machine.travel(CHECKED_AT, tick=False):
        audit_chain_backstop.apply().get()
    chain_of(patient, nurse, 1, start=2)
    with append_only_lifted(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET resource_id = %s WHERE seq = %s", ["999", 3])

    with (
        caplog.at_level(logging.ERROR, logger="patients.services.audit"),
        time_machine.travel(CHECKED_AT + dt.timedelta(minutes=2), tick=False),
    ):
        audit_chain_backstop.apply().get()

    assert [c["seq"] for c in checkpoint_lines(audit_checkpoint_dir)] == [2]
    (error,) = [r.getMessage() for r in caplog.records if r.name == "patients.services.audit"]
    assert error.startswith("audit chain broken at seq 3: hash mismatch: stored ")
    assert error.endswith("; no checkpoint written")


def test_the_backstop_job_anchors_a_long_unanchored_stretch_a_batch_at_a_time(
    settings, monkeypatch, patient, nurse, audit_checkpoint_dir
):
    settings.AUDIT_CHECKPOINT_SECONDS = 60
    monkeypatch.setattr("patients.services.audit.CHECKPOINT_BATCH", 2)
    chain_of(patient, nurse, 5)

    def backstop(seconds: int) -> None:
        with time_machine.travel(CHECKED_AT + dt.timedelta(seconds=seconds), tick=False):
            audit_chain_backstop.apply().get()

    for seconds in (0, 1, 2, 62):
        backstop(seconds)

    # Catching up goes on at once; the last record, less than a batch behind, waits for the
    # interval.
    assert [(c["seq"], c["at"][11:19]) for c in checkpoint_lines(audit_checkpoint_dir)] == [
        (2, "00:00:00"),
        (4, "00:00:01"),
        (5, "00:01:02"),
    ]
    assert verify("--no-checkpoint")[1].splitlines()[1].startswith("checkpoints matched: 3 ")


def test_the_backstop_job_logs_a_checkpoint_directory_it_cannot_write(
    settings, tmp_path, patient, nurse, caplog
):
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "a-file-not-a-directory"
    settings.AUDIT_CHECKPOINT_DIR.write_text("")
    read(nurse, patient)

    with caplog.at_level(logging.ERROR, logger="patients.services.audit"):
        chained = audit_chain_backstop.apply().get()

    assert chained == 1
    (error,) = [r.getMessage() for r in caplog.records if r.name == "patients.services.audit"]
    assert error.startswith(f"no audit checkpoint written to {settings.AUDIT_CHECKPOINT_DIR}: ")


# --- key rotation ----------------------------------------------------------------------------


def test_records_hashed_with_a_rotated_out_key_verify_while_it_is_a_fallback(
    settings, patient, nurse, audit_checkpoint_dir
):
    settings.AUDIT_CHAIN_KEY = KEY_A
    before = chain_of(patient, nurse, 2)
    checked_at()

    settings.AUDIT_CHAIN_KEY, settings.AUDIT_CHAIN_KEY_FALLBACKS = KEY_B, [KEY_A]
    after = chain_of(patient, nurse, 2, start=2)
    code, output = checked_at(CHECKED_AT + dt.timedelta(hours=1))

    a, b = key_id(KEY_A.encode()), key_id(KEY_B.encode())
    assert [r.key_id for r in before + after] == [a, a, b, b]
    assert (code, output.splitlines()[:2]) == (
        0,
        [
            "audit chain intact: 4 records",
            f"checkpoints matched: 1 in {audit_checkpoint_dir}, the last at seq 2 ({CHECKED})",
        ],
    )
    assert [c["key_id"] for c in checkpoint_lines(audit_checkpoint_dir)] == [a, b]


def test_a_key_dropped_from_the_fallbacks_leaves_what_it_signed_unverifiable(
    settings, patient, nurse, audit_checkpoint_dir
):
    settings.AUDIT_CHAIN_KEY = KEY_A
    chain_of(patient, nurse, 2)
    checked_at()
    settings.AUDIT_CHAIN_KEY, settings.AUDIT_CHAIN_KEY_FALLBACKS = KEY_B, []
    a = key_id(KEY_A.encode())

    with_checkpoint = verify()
    (audit_checkpoint_dir / "audit-checkpoints.jsonl").unlink()
    without = verify()

    assert with_checkpoint == (
        1,
        f"audit checkpoints cannot be trusted: audit-checkpoints.jsonl line 1: signed with key "
        f"id {a}, which is neither AUDIT_CHAIN_KEY nor one of AUDIT_CHAIN_KEY_FALLBACKS\n",
    )
    assert without == (
        1,
        f"audit chain broken at seq 1: hashed with key id {a}, which is neither "
        "AUDIT_CHAIN_KEY nor one of AUDIT_CHAIN_KEY_FALLBACKS\n",
    )


@pytest.mark.parametrize("key", ["", "too-short-0123456789"])
def test_a_missing_or_short_chain_key_is_refused_naming_the_variable(settings, key):
    settings.AUDIT_CHAIN_KEY = key

    with pytest.raises(ImproperlyConfigured, match="AUDIT_CHAIN_KEY"):
        chain_keys()


# --- records chained before the chain was keyed ----------------------------------------------


def chained_unkeyed(patient, nurse, count: int) -> list[AuditEvent]:
    """Records chained as the chainer did before keys: SHA-256 alone, no key id."""
    records = [
        read(nurse, patient, CHECKED_AT - dt.timedelta(days=1, hours=i)) for i in range(count)
    ]
    prev = GENESIS_HASH
    with append_only_lifted(), connection.cursor() as cursor:
        for seq, record in enumerate(records, 1):
            record.seq, record.prev_hash = seq, prev
            record.hash = prev = chain_hash(prev, record.canonical_record(), None)
            cursor.execute(
                f"UPDATE {TABLE} SET seq = %s, prev_hash = %s, hash = %s WHERE id = %s",
                [seq, record.prev_hash, record.hash, record.pk],
            )
    AuditChainHead.objects.create(last_seq=count, last_hash=prev)
    return records


def test_records_chained_before_keying_verify_by_the_old_recipe(
    patient, nurse, audit_checkpoint_dir
):
    old = chained_unkeyed(patient, nurse, 3)
    new = chain_of(patient, nurse, 2)

    code, output = checked_at()

    assert (code, output.splitlines()[0]) == (
        0,
        "audit chain intact: 5 records (seq 1 to 3 hashed without a key: chained before "
        "keyed hashing)",
    )
    assert [r.key_id for r in new] == [chain_keys().current.id] * 2
    assert new[0].prev_hash == old[2].hash
    (checkpoint,) = checkpoint_lines(audit_checkpoint_dir)
    assert (checkpoint["seq"], checkpoint["keyed_from"]) == (5, 4)


def test_rewriting_an_unkeyed_record_breaks_the_link_of_the_first_keyed_one(patient, nurse):
    old = chained_unkeyed(patient, nurse, 3)
    chain_of(patient, nurse, 2)

    with append_only_lifted(), connection.cursor() as cursor:
        rechain(cursor, 2, key=None, through=3)
    code, output = verify()

    forged = AuditEvent.objects.get(seq=3).hash
    assert (code, output) == (
        1,
        f"audit chain broken at seq 4: prev_hash {old[2].hash} is not the hash of the "
        f"previous record ({forged})\n",
    )


# --- production database roles -------------------------------------------------------------


@dataclass(frozen=True)
class Roles:
    owner: str
    app: str


@pytest.fixture
def roles(postgres_only) -> Roles:
    """The roles the shipped SQL sets up, under fresh names, in the test's transaction."""
    suffix = uuid.uuid4().hex[:8]
    made = Roles(f"parcours_test_owner_{suffix}", f"parcours_test_app_{suffix}")
    sql = io.StringIO()
    call_command("database_roles_sql", "--owner", made.owner, "--app", made.app, stdout=sql)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(sql.getvalue())
    return made


@contextmanager
def acting_as(role: str) -> Iterator[None]:
    with connection.cursor() as cursor:
        cursor.execute(f"SET ROLE {role}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")


def test_the_application_role_records_and_chains_audit_records(roles, patient, nurse):
    with acting_as(roles.app):
        record = read(nurse, patient)
        chained = audit_chain_extend()

    stored = AuditEvent.objects.get(pk=record.pk)
    assert (chained, stored.seq, stored.key_id) == (1, 1, chain_keys().current.id)
    assert verify()[0] == 0


def test_the_application_role_owns_nothing(roles):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM pg_class WHERE relowner = %s::regrole), "
            "(SELECT count(*) FROM pg_proc WHERE proowner = %s::regrole), "
            "(SELECT tableowner FROM pg_tables WHERE tablename = %s), "
            "(SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = %s)",
            [roles.app, roles.app, TABLE, TRIGGER],
        )
        owned = cursor.fetchone()

    assert owned == (0, 0, roles.owner, roles.owner)


FORBIDDEN = {
    "change a chained record": (
        f"UPDATE {TABLE} SET resource_id = '999' WHERE seq = 1",
        "permission denied for table patients_auditevent",
    ),
    "rehash a chained record": (
        f"UPDATE {TABLE} SET hash = repeat('0', 64) WHERE seq = 1",
        r"patients_auditevent is append-only \(UPDATE refused\)",
    ),
    "delete a record": (
        f"DELETE FROM {TABLE} WHERE seq = 1",
        "permission denied for table patients_auditevent",
    ),
    "truncate the trail": (f"TRUNCATE {TABLE}", "permission denied for table patients_auditevent"),
    "disable its trigger": (
        f"ALTER TABLE {TABLE} DISABLE TRIGGER {TRIGGER}",
        "must be owner of table patients_auditevent",
    ),
    "drop the trail": (f"DROP TABLE {TABLE} CASCADE", "must be owner of table patients_auditevent"),
    "replace the trigger's function": (
        f"CREATE OR REPLACE FUNCTION {TRIGGER}() RETURNS trigger "
        "LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'",
        "permission denied for schema public",
    ),
    "remove the chain head": (
        f"DELETE FROM {HEAD}",
        "permission denied for table patients_auditchainhead",
    ),
    "truncate the pathway history": (
        "TRUNCATE workflows_historyentry",
        "permission denied for table workflows_historyentry",
    ),
}


@pytest.mark.parametrize(("statement", "refusal"), FORBIDDEN.values(), ids=FORBIDDEN.keys())
def test_the_application_role_cannot_rewrite_the_trail(roles, patient, nurse, statement, refusal):
    (record,) = chain_of(patient, nurse, 1)

    with (
        acting_as(roles.app),
        pytest.raises(DatabaseError, match=refusal),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)

    assert AuditEvent.objects.get(pk=record.pk).hash == record.hash
    assert verify()[0] == 0


def test_the_roles_command_refuses_a_name_that_is_not_a_plain_identifier(db):
    with pytest.raises(Exception, match=r"--app 'app; DROP TABLE x': use a lowercase name"):
        call_command("database_roles_sql", "--app", "app; DROP TABLE x", stdout=io.StringIO())


def test_the_keyed_chain_migration_cannot_be_unapplied_once_records_carry_key_ids(patient, nurse):
    migration = importlib.import_module("patients.migrations.0005_audit_keyed_chain")
    chain_of(patient, nurse, 2)

    with pytest.raises(RuntimeError, match="2 audit records are hashed with a key"):
        migration.backward(apps, SimpleNamespace(connection=connection))

    assert AuditEvent.objects.exclude(key_id="").count() == 2
