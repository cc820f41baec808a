"""Triage: a care pathway's risk score and band, from the alerts whose work is still open.

The score of a pathway is the sum of the scores of its open alerts, one per alert name (the
latest raised); an alert is open while its task is. The band follows the pathway's
`monitoring.triage.bands`. Recomputed whenever an alert is raised or escalated and whenever
the task of an alert closes, in the transaction that changed it (the caller holds the
pathway's instance lock, so two changes of one pathway cannot interleave).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from coordination import task_states
from coordination.models import PRIORITY_FOR_BAND, AlertRecord, RiskBand
from coordination.services.triage import pathway_risk_apply
from workflows.definition.compiled import Bands, CompiledDefinition


@dataclass(frozen=True)
class Risk:
    score: int
    band: str


def open_alert_scores(*, care_pathway_id: int) -> dict[str, int]:
    """The score of each open alert of the pathway, by name (the latest raised wins)."""
    rows = (
        AlertRecord.objects.filter(
            care_pathway_id=care_pathway_id, task__status__in=task_states.OPEN
        )
        .order_by("name", "-raised_at", "-id")
        .values_list("name", "score")
    )
    scores: dict[str, int] = {}
    for name, score in rows:
        scores.setdefault(name, score)
    return scores


def pathway_risk_refresh(*, care_pathway_id: int, bands: Bands, now: dt.datetime) -> Risk:
    """Recompute and store the pathway's risk; returns it."""
    score = min(sum(open_alert_scores(care_pathway_id=care_pathway_id).values()), 32767)
    risk = Risk(score=score, band=bands.band(score))
    # Stores it, keeps the patient's open tasks' triage rank in step and tells live views
    # (a no-op when the risk did not change).
    pathway_risk_apply(care_pathway_id, risk.score, risk.band, now)
    return risk


def band_priority(band: str) -> str | None:
    """The least priority an alert's work has in a band (high: asap, medium: urgent)."""
    return PRIORITY_FOR_BAND.get(RiskBand(band)) if band in RiskBand.values else None


def alert_task_closed(
    *, task_ids: list[int], care_pathway_id: int, definition: CompiledDefinition, now: dt.datetime
) -> None:
    """Called when tasks of the pathway close: refresh its risk if one was an alert's work
    (nothing to read for a pathway that raises no alert)."""
    if not definition.raises_alerts:
        return
    if AlertRecord.objects.filter(task_id__in=task_ids).exists():
        pathway_risk_refresh(
            care_pathway_id=care_pathway_id, bands=definition.monitoring.bands, now=now
        )
