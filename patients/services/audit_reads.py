"""Recording a read of several patients' rows at once (a list page, a search, an admin
changelist) in the access audit trail: one record per patient read, all written by one
multi-row INSERT.

One record per patient keeps the trail queryable per patient: each lands in that patient's
trail (`GET /api/v1/patients/<id>/audit-events/`, the `(patient, occurred_at)` index) like
the record of a read of one row. Writing them together keeps the cost of a list bounded
whatever its length (a page holds at most 200 rows): one query for the reader's
break-the-glass grants on the patients read, one INSERT whose text does not depend on the
number of records (core.sql.rows_insert_columns), taking no lock, in the
caller's transaction, as `audit_record` does. The records are chained after commit like any other
(patients.services.audit_chain_extend).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from core.sql import rows_insert_columns
from patients.errors import InvalidAuditRecord, PatientNotFound, Problem
from patients.models import AuditEvent, BreakGlassGrant, canonical_address, canonical_json
from patients.selectors import access_patient
from patients.services.audit import MAX_DETAIL_BYTES, audit_record_problems

MAX_RESOURCE_ID = 64
# Row ids kept in one record's detail (a page holds at most 200 rows).
MAX_IDS = 200

Action = AuditEvent.Action
Purpose = AuditEvent.Purpose
Outcome = AuditEvent.Outcome


def audit_reads_record(
    *,
    actor: AbstractBaseUser | None,
    entry_point: str,
    resource_type: str,
    rows: Iterable[tuple[int | None, int | str]],
    action: str = Action.SEARCH,
    purpose: str | None = None,
    searched_patient_id: int | None = None,
    client_address: str | None = None,
    detail: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> int:
    """Record that `actor` read `rows`, given as (patient id, row id) pairs: one record per
    patient, naming it, with the ids of its rows read in `detail["ids"]` (and in
    `resource_id` when there is one row); rows of no patient are not patient data and are
    left out. Returns how many records were written, in the order their patients first
    appear in `rows`.

    `searched_patient_id` is the patient a search was restricted to (`?patient=`): when none
    of its rows were read it gets a record of its own, `success` if the actor may see the
    patient (an empty result), else `denied`, or `not_found` (then, as with `audit_record`,
    the id is kept in `detail["requested_patient_id"]` and the record names no patient).
    With no row and no searched patient, one record naming no patient says who searched
    what.

    `purpose` defaults as in `audit_read_record`: care coordination, or emergency for each
    patient on which the actor holds an unexpired break-the-glass grant (its id in the
    detail). The patients of `rows` are trusted to exist (the caller has just read rows
    referring to them). Raises InvalidAuditRecord, listing every problem, before anything
    is written.
    """
    now = now or timezone.now()
    label = actor.get_username() if actor is not None else "anonymous"
    shared_detail = dict(detail or {})
    # Checked once for the page: what every record shares; then each record's own detail.
    shared_purpose = purpose or Purpose.CARE_COORDINATION
    problems = set(
        audit_record_problems(
            *(label, action, resource_type, "", shared_purpose, Outcome.SUCCESS, entry_point),
            shared_detail,
        )
    )
    shared_size = len(canonical_json(shared_detail).encode("utf-8"))
    address: str | None = None
    if client_address is not None:
        try:
            address = canonical_address(client_address)
        except ValueError:
            problems.add(Problem("client_address", f"{client_address!r} is not an IP address"))
    ids_by_patient: dict[int, list[int | str]] = {}
    for patient_id, row_id in rows:
        if patient_id is not None:
            ids_by_patient.setdefault(int(patient_id), []).append(row_id)
    # (the patient named or None, outcome, the record's own detail)
    targets: list[tuple[int | None, str, dict[str, Any]]] = [
        (patient_id, Outcome.SUCCESS, _ids_detail(ids))
        for patient_id, ids in ids_by_patient.items()
    ]
    if searched_patient_id is not None and searched_patient_id not in ids_by_patient:
        targets.append(_searched(actor, searched_patient_id))
    if not targets:
        targets.append((None, Outcome.SUCCESS, {}))
    named = [patient_id for patient_id, _, _ in targets if patient_id is not None]
    grants = _grants(actor, named, now) if purpose is None else {}
    varying: dict[str, list[Any]] = {
        "patient_id": [], "resource_id": [], "purpose": [], "outcome": [], "detail": [],
    }  # fmt: skip
    for patient_id, outcome, own in targets:
        record_detail = {**shared_detail, **own}
        grant = grants.get(patient_id) if patient_id is not None else None
        if grant is not None:
            record_detail["break_glass_grant"] = grant
        ids = own.get("ids", [])
        resource_id = str(ids[0]) if len(ids) == 1 else ""
        if len(resource_id) > MAX_RESOURCE_ID:
            problems.add(Problem("resource_id", f"longer than {MAX_RESOURCE_ID} characters"))
        # Measured only when it may be too long: an integer id takes 21 bytes at most, a
        # character of a text id 6 (an escape), its quotes and comma 3.
        bound = shared_size + 64 + sum(21 if isinstance(i, int) else 3 + 6 * len(i) for i in ids)
        if bound > MAX_DETAIL_BYTES:
            size = len(canonical_json(record_detail).encode("utf-8"))
            if size > MAX_DETAIL_BYTES:
                problems.add(Problem("detail", f"{size} bytes; at most {MAX_DETAIL_BYTES}"))
        varying["patient_id"].append(patient_id)
        varying["resource_id"].append(resource_id)
        varying["purpose"].append(
            purpose or (Purpose.EMERGENCY if grant is not None else Purpose.CARE_COORDINATION)
        )
        varying["outcome"].append(outcome)
        varying["detail"].append(record_detail)
    if problems:
        raise InvalidAuditRecord(sorted(problems))
    return rows_insert_columns(
        AuditEvent,
        shared={
            "occurred_at": now,
            "actor_id": actor.pk if actor is not None else None,
            "actor_label": label,
            "action": action,
            "resource_type": resource_type,
            "entry_point": entry_point,
            "client_address": address,
        },
        varying=varying,
    )


def _ids_detail(ids: list[int | str]) -> dict[str, Any]:
    """The ids of a patient's rows read, as the detail keeps them (integers stay integers,
    anything else is text), at most MAX_IDS of them: a page holds at most 200 rows."""
    kept = [i if isinstance(i, int) and not isinstance(i, bool) else str(i) for i in ids]
    if len(kept) <= MAX_IDS:
        return {"ids": kept}
    return {"ids": kept[:MAX_IDS], "ids_total": len(kept)}


def _searched(
    actor: AbstractBaseUser | None, patient_id: int
) -> tuple[int | None, str, dict[str, Any]]:
    """The record of a search restricted to a patient none of whose rows were read."""
    outcome: str = Outcome.SUCCESS
    try:
        access_patient(user=actor or AnonymousUser(), patient_id=patient_id)
    except PatientNotFound as refused:
        outcome = refused.outcome
    if outcome == Outcome.NOT_FOUND:
        return None, outcome, {"requested_patient_id": str(patient_id), "ids": []}
    return patient_id, outcome, {"ids": []}


def _grants(
    actor: AbstractBaseUser | None, patient_ids: list[int], now: dt.datetime
) -> dict[int, int]:
    """The actor's unexpired break-the-glass grant on each of the patients that has one (the
    latest if several), by patient id: one query."""
    if actor is None or not patient_ids:
        return {}
    found: dict[int, int] = {}
    rows = (
        BreakGlassGrant.objects.filter(
            user_id=actor.pk,
            patient_id__in=patient_ids,
            started_at__lte=now,
            expires_at__gt=now,
        )
        .order_by("patient_id", "expires_at", "pk")
        .values_list("patient_id", "pk")
    )
    for patient_id, grant_id in rows:
        found[patient_id] = grant_id  # the last one wins: the latest expiry
    return found
