"""Reads of coordination data for a user, filtered by what that user may see, by subject:
tasks and worklists (`tasks`), care pathways (`pathways`), alerts and triage (`alerts`).

A user sees a task when they may see its patient (care-team grants, see
directory.services.care_teams), when they own it, or when it is meant for them as the
patient. Fetch-one helpers raise NotFound alike for "does not exist" and "not yours".
"""

from coordination.selectors.alerts import (
    ALERT_ORDER,
    PENDING,
    access_alert,
    alert_observations,
    alert_patient_id,
    care_team_patient_ids,
    patient_alerts,
    patient_risk_rank,
    patient_risk_rank_subquery,
    risk_rank_expression,
    visible_alerts,
)
from coordination.selectors.pathways import (
    PathwayMonitoring,
    access_care_pathway,
    pathway_monitoring,
    pathway_patient_id,
    visible_care_pathways,
)
from coordination.selectors.tasks import (
    WORKLIST_ORDER,
    WORKLIST_ORDER_BY,
    TaskKeys,
    TaskStep,
    access_task,
    access_task_keys,
    overdue_condition,
    step_task_statuses,
    step_tasks_open_locked,
    task_locked,
    task_overdue,
    task_pathway_step,
    task_patient_id,
    tasks_for_patient,
    visible_tasks,
    with_overdue,
    worklist_mine,
    worklist_overdue,
    worklist_unclaimed,
)

__all__ = [
    "ALERT_ORDER",
    "PENDING",
    "WORKLIST_ORDER",
    "WORKLIST_ORDER_BY",
    "PathwayMonitoring",
    "TaskKeys",
    "TaskStep",
    "access_alert",
    "access_care_pathway",
    "access_task",
    "access_task_keys",
    "alert_observations",
    "alert_patient_id",
    "care_team_patient_ids",
    "overdue_condition",
    "pathway_monitoring",
    "pathway_patient_id",
    "patient_alerts",
    "patient_risk_rank",
    "patient_risk_rank_subquery",
    "risk_rank_expression",
    "step_task_statuses",
    "step_tasks_open_locked",
    "task_locked",
    "task_overdue",
    "task_pathway_step",
    "task_patient_id",
    "tasks_for_patient",
    "visible_alerts",
    "visible_care_pathways",
    "visible_tasks",
    "with_overdue",
    "worklist_mine",
    "worklist_overdue",
    "worklist_unclaimed",
]
