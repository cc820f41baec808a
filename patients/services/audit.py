"""Appending to the access audit trail, and chaining it.

Contract of `audit_record`:
- it inserts one row in the caller's transaction (or its own): a change and its audit record
  commit together or not at all. Refusals are recorded by the caller after its own
  transaction rolled back, in a transaction of their own;
- it takes no lock: recording is one INSERT, so audited transactions (every read of patient
  data is one) never wait on each other;
- the record is chained afterwards by `audit_chain_extend`, which gives committed records
  their `seq`, `prev_hash` and `hash` in the order it finds them (id order), as the outbox
  relay gives committed events their position. The relay runs it on every pass (within a
  second of the commit), the `audit_chain_backstop` job every few seconds, and
  `verify_audit` before it walks the chain;
- the record's hash is computed as AuditEvent's docstring says: an HMAC under the current
  AUDIT_CHAIN_KEY, whose id the record keeps in `key_id`;
- the chain head is anchored outside the database by `audit_chain_anchor` (the backstop
  job) and `audit_checkpoint_write` (verify_audit): a signed checkpoint appended to a file in
  AUDIT_CHECKPOINT_DIR, shipped by the operator to write-once storage (docs/audit.md).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.sql import (
    any_row,
    column,
    instances,
    locking,
    rows_insert,
    rows_update,
    select_list,
    statement,
    table,
)
from patients.chain_keys import chain_keys
from patients.checkpoints import (
    Checkpoint,
    CheckpointError,
    checkpoint_append,
    checkpoint_last,
    checkpoint_sign,
)
from patients.errors import InvalidAuditRecord, Problem
from patients.models import (
    GENESIS_HASH,
    AuditChainHead,
    AuditEvent,
    Patient,
    canonical_address,
    canonical_json,
)
from patients.selectors import audit_chain_verify, break_glass_grant_active

MAX_DETAIL_BYTES = 4096
# Records the backstop job checks per run before anchoring the furthest it reached: about
# 11 s at the 18,000 records a second measured on PostgreSQL, far within the job's time
# limit, whatever was left unanchored (a first checkpoint on a long trail, a worker down for
# days while the relays kept chaining); the next runs go on from there without waiting.
CHECKPOINT_BATCH = 200_000

logger = logging.getLogger(__name__)

Action = AuditEvent.Action
Purpose = AuditEvent.Purpose
Outcome = AuditEvent.Outcome
EntryPoint = AuditEvent.EntryPoint


def audit_record(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    resource_type: str,
    resource_id: str | int = "",
    patient_id: int | None = None,
    purpose: str,
    outcome: str = Outcome.SUCCESS,
    entry_point: str,
    client_address: str | None = None,
    detail: Mapping[str, Any] | None = None,
    actor_label: str | None = None,
    now: dt.datetime | None = None,
    patient_checked: bool = False,
) -> AuditEvent:
    """Append one record to the audit trail and return it (not chained yet: its `seq` and
    `hash` are given after commit by `audit_chain_extend`).

    `actor` is the user acting, or None for the system or a platform (then say who in
    `actor_label`, e.g. "client:regional-platform"; it defaults to the username, or
    "system"). `detail` is a small JSON object (at most 4 KiB) of strings, integers, booleans,
    null, arrays and objects: no floats, whose text form databases do not keep. A `patient_id`
    that names no patient (an access to a missing record) is kept in
    `detail["requested_patient_id"]` and the record has no patient; a caller that has just
    read the patient's row, or a row referring to it, in its transaction passes
    `patient_checked=True` to spare the lookup.

    Raises InvalidAuditRecord, listing every problem, before anything is written.
    """
    label = actor_label or (actor.get_username() if actor is not None else "system")
    detail = dict(detail or {})
    resource_id = str(resource_id)
    problems = audit_record_problems(
        label, action, resource_type, resource_id, purpose, outcome, entry_point, detail
    )
    address: str | None = None
    if client_address is not None:
        try:
            address = canonical_address(client_address)
        except ValueError:
            problems.append(Problem("client_address", f"{client_address!r} is not an IP address"))
    if problems:
        raise InvalidAuditRecord(problems)
    if patient_id is not None and not patient_checked:
        requested, patient_id = patient_id, _existing_patient_id(patient_id)
        if patient_id is None:
            detail["requested_patient_id"] = str(requested)
    event = AuditEvent(
        occurred_at=now or timezone.now(),
        actor_id=actor.pk if actor is not None else None,
        actor_label=label,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        patient_id=patient_id,
        purpose=purpose,
        outcome=outcome,
        entry_point=entry_point,
        client_address=address,
        detail=detail,
    )
    rows_insert([event])
    return event


def audit_chain_extend(*, limit: int = 2000) -> int:
    """Chain the committed records that have no `seq` yet, oldest id first, at most `limit`;
    returns how many were chained (0 when another process is chaining right now).

    Holds the chain head row (SELECT ... FOR UPDATE SKIP LOCKED) until its commit, so chainers
    never interleave: seq stays gap-free and each prev_hash is the hash of seq - 1. A record
    that commits while a chainer runs is chained by the next one. Idempotent, safe to call
    from any number of processes at once. Each record is hashed with the current
    AUDIT_CHAIN_KEY (ImproperlyConfigured when it is missing or too short).
    """
    # Looked at first without a transaction: on SQLite every transaction takes the write
    # lock, and a relay finding nothing to chain must not hold up writers.
    if not any_row(_chain_sql().unchained_any):
        return 0
    key = chain_keys().current
    with transaction.atomic():
        head = _lock_head()
        if head is None:
            return 0
        pending = instances(AuditEvent, _chain_sql().unchained, [limit])
        seq, prev_hash = head.last_seq, head.last_hash
        for event in pending:
            seq += 1
            event.seq, event.prev_hash, event.key_id = seq, prev_hash, key.id
            event.hash = prev_hash = event.compute_hash(key.secret)
        rows_update(pending, ["seq", "prev_hash", "hash", "key_id"])
        head.last_seq, head.last_hash = seq, prev_hash
        rows_update([head], ["last_seq", "last_hash"])
    return len(pending)


def audit_checkpoint_write(
    *, seq: int, hash: str, keyed_from: int | None, now: dt.datetime | None = None
) -> Checkpoint | None:
    """Sign a checkpoint of the chain at `seq` (whose record has `hash`; keyed hashing began
    at `keyed_from`) with the current key and append it to AUDIT_CHECKPOINT_DIR; returns it,
    or None when the last checkpoint there is at `seq` or beyond already.

    The caller has verified the chain up to `seq`: a checkpoint vouches for it. Raises
    OSError when the directory cannot be read or written, CheckpointError when its last line
    cannot be trusted.
    """
    directory = Path(settings.AUDIT_CHECKPOINT_DIR)
    keys = chain_keys()
    last = checkpoint_last(directory, keys)
    if last is not None and last.seq >= seq:
        return None
    checkpoint = checkpoint_sign(
        seq=seq, hash=hash, keyed_from=keyed_from, at=now or timezone.now(), key=keys.current
    )
    checkpoint_append(directory, checkpoint)
    return checkpoint


def audit_chain_anchor(*, now: dt.datetime | None = None) -> Checkpoint | None:
    """Anchor the chain outside the database, at most every AUDIT_CHECKPOINT_SECONDS: when
    the chain has grown since the last checkpoint, check the records chained since
    (`audit_chain_verify(since=...)`, from seq 1 when there is no checkpoint yet), at most
    CHECKPOINT_BATCH of them, and append a checkpoint of the last one checked. While more
    than a batch is left, the next run goes on at once, interval or not. Returns the
    checkpoint written, or None.

    Never anchors a chain it finds broken. A broken chain, a checkpoint file that cannot be
    trusted or a directory that cannot be written is logged as an error and nothing is
    written (the next run tries again): the backstop job that calls this keeps chaining.
    """
    now = now or timezone.now()
    directory = Path(settings.AUDIT_CHECKPOINT_DIR)
    try:
        last = checkpoint_last(directory, chain_keys())
    except CheckpointError as exc:
        logger.error("audit checkpoints cannot be trusted: %s; no checkpoint written", exc)
        return None
    except OSError as exc:
        logger.error("no audit checkpoint written to %s: %s", directory, exc)
        return None
    head = AuditChainHead.objects.filter(pk=AuditChainHead.SINGLETON_ID).first()
    if head is None or head.last_seq == 0 or (last is not None and head.last_seq == last.seq):
        return None
    anchored = last.seq if last is not None else 0
    catching_up = head.last_seq - anchored > CHECKPOINT_BATCH
    interval = dt.timedelta(seconds=settings.AUDIT_CHECKPOINT_SECONDS)
    if last is not None and not catching_up and now - last.at < interval:
        return None
    if not _writable(directory):
        return None
    until = anchored + CHECKPOINT_BATCH
    if last is None:
        report = audit_chain_verify(checkpoint_dir=directory, until=until)
    else:
        report = audit_chain_verify(since=last, until=until)
    if not report.intact:
        logger.error("%s; no checkpoint written", report)
        return None
    if report.records <= anchored:
        return None
    try:
        return audit_checkpoint_write(
            seq=report.records, hash=report.last_hash, keyed_from=report.keyed_from, now=now
        )
    except (OSError, CheckpointError) as exc:
        logger.error("no audit checkpoint written to %s: %s", directory, exc)
        return None


def _writable(directory: Path) -> bool:
    """Whether checkpoints can be appended there (checked before walking the chain for
    nothing); an error is logged when they cannot."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        logger.error("no audit checkpoint written to %s: %s", directory, exc)
        return False
    if not os.access(directory, os.W_OK | os.X_OK):
        logger.error("no audit checkpoint written to %s: the directory is not writable", directory)
        return False
    return True


class _ChainStatements:
    """The chainer's statements, written once per process: the relay runs them on every
    pass. Only quoted names from the models' metadata go into the text."""

    def __init__(self) -> None:
        seq, pk = column(AuditEvent, "seq"), column(AuditEvent, "pk")
        events = f"FROM {table(AuditEvent)} e WHERE e.{seq} IS NULL"
        self.unchained_any = f"SELECT 1 {events} LIMIT 1"
        self.unchained = f"SELECT {select_list(AuditEvent, 'e')} {events} ORDER BY e.{pk} LIMIT %s"
        skip = connection.vendor == "postgresql"  # SQLite's IMMEDIATE transactions serialise
        self.head = (
            f"SELECT {select_list(AuditChainHead, 'h')} FROM {table(AuditChainHead)} h "  # noqa: S608
            f"WHERE h.{column(AuditChainHead, 'pk')} = %s{locking(skip_locked=skip)}"
        )


@statement
def _chain_sql() -> _ChainStatements:
    return _ChainStatements()


def audit_record_problems(
    label: str,
    action: str,
    resource_type: str,
    resource_id: str,
    purpose: str,
    outcome: str,
    entry_point: str,
    detail: dict[str, Any],
) -> list[Problem]:
    problems: list[Problem] = []
    for name, value, choices in (
        ("action", action, Action),
        ("purpose", purpose, Purpose),
        ("outcome", outcome, Outcome),
        ("entry_point", entry_point, EntryPoint),
    ):
        if value not in choices.values:
            allowed = ", ".join(choices.values)
            problems.append(Problem(name, f"{value!r} is not one of {allowed}"))
    for name, value, longest in (
        ("actor_label", label, 150),
        ("resource_type", resource_type, 64),
        ("resource_id", resource_id, 64),
    ):
        if len(value) > longest:
            problems.append(Problem(name, f"longer than {longest} characters"))
    if not resource_type:
        problems.append(Problem("resource_type", "required"))
    problems.extend(_check_json(detail, "detail"))
    if not any(p.location.startswith("detail") for p in problems):
        size = len(canonical_json(detail).encode("utf-8"))
        if size > MAX_DETAIL_BYTES:
            problems.append(Problem("detail", f"{size} bytes; at most {MAX_DETAIL_BYTES}"))
    return problems


def _check_json(value: object, location: str) -> list[Problem]:
    if value is None or isinstance(value, str | bool | int):
        return []
    if isinstance(value, list | tuple):
        return [p for i, item in enumerate(value) for p in _check_json(item, f"{location}.{i}")]
    if isinstance(value, dict):
        problems: list[Problem] = []
        for key, item in value.items():
            if not isinstance(key, str):
                problems.append(Problem(location, f"key {key!r} is not a string"))
                continue
            problems.extend(_check_json(item, f"{location}.{key}"))
        return problems
    kind = "a float" if isinstance(value, float) else f"a {type(value).__name__}"
    return [Problem(location, f"{kind} cannot be hashed reproducibly; store it as a string")]


def _existing_patient_id(patient_id: object) -> int | None:
    try:
        pk = int(str(patient_id))
    except ValueError:
        return None
    return pk if Patient.objects.filter(pk=pk).exists() else None


def _lock_head() -> AuditChainHead | None:
    """The chain head, locked; None if another chainer holds it. Created on first use."""
    heads = instances(AuditChainHead, _chain_sql().head, [AuditChainHead.SINGLETON_ID])
    if heads:
        return heads[0]
    # First chaining (or the head row was lost): start from the last chained record, if any.
    chained = AuditEvent.objects.filter(seq__isnull=False).order_by("-seq")
    last = chained.values_list("seq", "hash").first()
    try:
        with transaction.atomic():
            AuditChainHead.objects.create(
                pk=AuditChainHead.SINGLETON_ID,
                last_seq=last[0] or 0 if last else 0,
                last_hash=last[1] if last else GENESIS_HASH,
            )
    except IntegrityError:
        pass  # a concurrent first chainer created it: it holds it, or it is free again
    heads = instances(AuditChainHead, _chain_sql().head, [AuditChainHead.SINGLETON_ID])
    return heads[0] if heads else None


def audit_read_record(
    *,
    actor: AbstractBaseUser | None,
    entry_point: str,
    resource_type: str,
    resource_id: str | int = "",
    patient_id: int | None = None,
    action: str = AuditEvent.Action.READ,
    outcome: str = Outcome.SUCCESS,
    client_address: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Record a user's read of patient data from a delivery layer (REST, web, ...).

    The purpose is care coordination, or emergency while the reader holds an unexpired
    break-the-glass grant on the patient (its id goes in the detail): every read during a
    broken glass is recorded as such, whatever page or endpoint it came through."""
    purpose = AuditEvent.Purpose.CARE_COORDINATION
    if actor is not None and patient_id is not None:
        grant = break_glass_grant_active(user=actor, patient_id=patient_id)
        if grant is not None:
            purpose = AuditEvent.Purpose.EMERGENCY
            detail = {**(detail or {}), "break_glass_grant": grant.pk}
    return audit_record(
        actor=actor,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        patient_id=patient_id,
        purpose=purpose,
        outcome=outcome,
        entry_point=entry_point,
        client_address=client_address,
        detail=detail,
        actor_label=None if actor is not None else "anonymous",
    )
