"""Every write of coordination. Each module states its locks and what it records."""

from coordination.services.acknowledgements import AlreadyAcknowledged, alert_acknowledge
from coordination.services.pathways import (
    care_pathway_cancel,
    care_pathway_fire,
    care_pathway_resume,
    care_pathway_start,
    care_pathway_suspend,
)
from coordination.services.tasks import TaskActionInput, task_act, task_actions_open

__all__ = [
    "AlreadyAcknowledged",
    "TaskActionInput",
    "alert_acknowledge",
    "care_pathway_cancel",
    "care_pathway_fire",
    "care_pathway_resume",
    "care_pathway_start",
    "care_pathway_suspend",
    "task_act",
    "task_actions_open",
]
