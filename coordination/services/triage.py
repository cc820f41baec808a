"""Triage: a care pathway's risk, and the patient's rank kept on their open tasks.

The alert engine (coordination.services.alerts) computes a pathway's risk score and band;
`pathway_risk_apply` stores them and keeps `Task.risk_rank` of the patient's open tasks equal
to the patient's current rank: the highest band, then score, over their active pathways
(coordination.models.risk_rank). The worklists order by that column first, through the
open-task indexes, rather than joining every candidate task to its pathways.

Locks: the patient's care pathway rows (in id order); never waits for a task row. The
callers already hold task rows (a nurse completing an alert's task locks it, then the risk is
refreshed): two such changes on two pathways of one patient would each wait for the other's
task if the rank UPDATE waited. So the UPDATE skips the rows another transaction holds, and
when it skipped some, the patient's ranks are brought in step again right after commit
(`patient_risk_sync`, then holding nothing else). Concurrent applies on one patient are
serialised by the pathway locks, so the rank written last is computed from every pathway's
committed risk.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from coordination import task_states
from coordination.models import (
    RISK_RANK_NONE,
    CarePathway,
    RiskBand,
    Task,
    risk_rank,
)
from core.sql import any_row, column, kept_cursor, locking, statement, table
from live import events
from live.services.outbox import event_record
from workflows.models import PathwayInstance


def pathway_risk_apply(care_pathway_id: int, score: int, band: str, now: dt.datetime) -> bool:
    """Store the pathway's risk (`score`, `band`) and bring the patient's open tasks to the
    patient's new rank; write a `pathway.risk_changed` outbox event so that live views
    refresh. Returns False, writing nothing, when the pathway already had this risk.

    Runs in the caller's transaction when there is one (the alert's), else in its own. One
    statement locks the patient's pathways, one updates the pathway row, one the open tasks
    whose rank changes."""
    band = RiskBand(band).value
    score = max(int(score), 0)
    with transaction.atomic():
        pathways = _lock_patient_pathways(care_pathway_id)
        pathway = next((p for p in pathways if p.pk == care_pathway_id), None)
        if pathway is None:
            raise CarePathway.DoesNotExist(f"care pathway {care_pathway_id}")
        if pathway.risk_score == score and pathway.risk_band == band:
            return False
        CarePathway.objects.filter(pk=care_pathway_id).update(
            risk_score=score, risk_band=band, risk_updated_at=now
        )
        pathway.risk_score, pathway.risk_band = score, band
        rank = _patient_rank(pathways)
        _tasks_rank_set(pathway.patient_id, rank)
        event_record(
            type=events.PATHWAY_RISK_CHANGED,
            patient=pathway.patient_id,
            payload=events.risk_payload(pathway_id=care_pathway_id),
            occurred_at=now,
        )
        return True


def patient_risk_sync(*, patient_id: int) -> int:
    """Bring the patient's open tasks to the patient's current rank (after a pathway ended,
    say: its risk no longer counts). Waits for task rows other transactions hold: call it
    holding no task lock. Returns the rank."""
    with transaction.atomic():
        pathways = list(
            CarePathway.objects.select_for_update(of=("self",))
            .filter(patient_id=patient_id)
            .select_related("instance")
            .only("id", "patient_id", "risk_score", "risk_band", "instance__status")
            .order_by("pk")
        )
        rank = _patient_rank(pathways)
        _tasks_rank_set(patient_id, rank, wait=True)
        return rank


def _lock_patient_pathways(care_pathway_id: int) -> list[CarePathway]:
    patient = CarePathway.objects.filter(pk=care_pathway_id).values("patient_id")
    return list(
        CarePathway.objects.select_for_update(of=("self",))
        .filter(patient_id__in=patient)
        .select_related("instance")
        .only("id", "patient_id", "risk_score", "risk_band", "instance__status")
        .order_by("pk")
    )


def _patient_rank(pathways: list[CarePathway]) -> int:
    """The most pressing rank over the active pathways (RISK_RANK_NONE when none)."""
    ranks = [
        risk_rank(p.risk_band, p.risk_score)
        for p in pathways
        if p.instance is not None and p.instance.status == PathwayInstance.Status.ACTIVE
    ]
    return min(ranks, default=RISK_RANK_NONE)


def _tasks_rank_set(patient_id: int, rank: int, *, wait: bool = False) -> int:
    """The open tasks' rank, in one UPDATE (not a task change: version and updated_at stay,
    so nobody's optimistic check fails because a pathway's risk moved). Rows locked by
    another transaction are skipped unless `wait`; then, if any open task is left behind,
    the ranks are synced again after commit."""
    opened = sorted(task_states.OPEN)
    update, left_behind = _rank_statements(len(opened), wait)
    with kept_cursor() as cursor:
        cursor.execute(update, [rank, patient_id, *opened, rank])
        updated = int(cursor.rowcount)
    if not wait and any_row(left_behind, [patient_id, *opened, rank]):
        transaction.on_commit(lambda: patient_risk_sync(patient_id=patient_id))
    return updated


@statement
def _rank_statements(statuses: int, wait: bool) -> tuple[str, str]:
    """The UPDATE of the open tasks' rank, and the probe for rows it left behind."""
    status = ", ".join(["%s"] * statuses)
    t, key = table(Task), column(Task, "id")
    where = (
        f"{column(Task, 'patient')} = %s AND {column(Task, 'status')} IN ({status}) "
        f"AND {column(Task, 'risk_rank')} <> %s"
    )
    update = (
        f"UPDATE {t} SET {column(Task, 'risk_rank')} = %s WHERE {key} IN "  # noqa: S608
        f"(SELECT {key} FROM {t} WHERE {where}{locking(skip_locked=not wait)})"
    )
    return update, f"SELECT 1 FROM {t} WHERE {where} LIMIT 1"  # noqa: S608
