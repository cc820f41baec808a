"""Appending to the access audit trail.

Contract of `audit_record`:
- it runs in `transaction.atomic()`, so inside a caller's transaction it joins it: a change
  and its audit record commit together or not at all. Refusals are recorded by the caller
  after its own transaction rolled back, in a transaction of their own;
- it locks the chain head row (SELECT ... FOR UPDATE) until that transaction ends, so appends
  are serialised and the chain follows commit order. Callers take their own row locks first
  and call this last, to hold the head for as short a time as possible and always lock in the
  same order (domain rows, then the head). A caller composing several audited writes in one
  transaction holds the head from the first record on: it must lock every row the later
  writes need before the first audited write, or risk a deadlock (PostgreSQL then aborts one
  of the transactions, which may be retried);
- every audited write in the system is serialised on the head while its transaction is open,
  so keep audited transactions short;
- the record's hash is computed as AuditEvent's docstring says.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from patients.errors import InvalidAuditRecord, Problem
from patients.models import (
    GENESIS_HASH,
    AuditChainHead,
    AuditEvent,
    Patient,
    canonical_address,
    canonical_json,
)
from patients.selectors import break_glass_grant_active

MAX_DETAIL_BYTES = 4096

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
) -> AuditEvent:
    """Append one record to the audit trail and return it.

    `actor` is the user acting, or None for the system or a platform (then say who in
    `actor_label`, e.g. "client:regional-platform"; it defaults to the username, or
    "system"). `detail` is a small JSON object (at most 4 KiB) of strings, integers, booleans,
    null, arrays and objects: no floats, whose text form databases do not keep. A `patient_id`
    that names no patient (an access to a missing record) is kept in
    `detail["requested_patient_id"]` and the record has no patient.

    Raises InvalidAuditRecord, listing every problem, before anything is written.
    """
    label = actor_label or (actor.get_username() if actor is not None else "system")
    detail = dict(detail or {})
    resource_id = str(resource_id)
    problems = _check(
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
    if patient_id is not None:
        requested, patient_id = patient_id, _existing_patient_id(patient_id)
        if patient_id is None:
            detail["requested_patient_id"] = str(requested)
    with transaction.atomic():
        head = _lock_head()
        event = AuditEvent(
            seq=head.last_seq + 1,
            # Taken once the head is locked, so occurred_at never goes backwards along seq.
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
            prev_hash=head.last_hash,
        )
        event.hash = event.compute_hash()
        event.save(force_insert=True)
        head.last_seq, head.last_hash = event.seq, event.hash
        head.save(update_fields=["last_seq", "last_hash"])
    return event


def _check(
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


def _lock_head() -> AuditChainHead:
    head = AuditChainHead.objects.select_for_update().filter(pk=AuditChainHead.SINGLETON_ID).first()
    if head is not None:
        return head
    # First append (or the head row was lost): start from the last stored record, if any.
    last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    try:
        with transaction.atomic():
            AuditChainHead.objects.create(
                pk=AuditChainHead.SINGLETON_ID,
                last_seq=last[0] if last else 0,
                last_hash=last[1] if last else GENESIS_HASH,
            )
    except IntegrityError:
        pass  # a concurrent first append created it; lock that one
    return AuditChainHead.objects.select_for_update().get(pk=AuditChainHead.SINGLETON_ID)


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
