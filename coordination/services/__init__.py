"""Every write of coordination. Each module states its locks and what it records."""

from coordination.services.care_teams import (
    care_team_for_patient,
    care_team_member_add,
    care_team_member_remove,
    consent_set,
    patient_access_sync,
)
from coordination.services.directory import (
    organization_create,
    practitioner_create,
    service_team_create,
    service_team_member_add,
    service_team_member_remove,
)
from coordination.services.pathways import (
    care_pathway_cancel,
    care_pathway_fire,
    care_pathway_resume,
    care_pathway_start,
    care_pathway_suspend,
)
from coordination.services.tasks import TaskActionInput, task_act

__all__ = [
    "TaskActionInput",
    "care_pathway_cancel",
    "care_pathway_fire",
    "care_pathway_resume",
    "care_pathway_start",
    "care_pathway_suspend",
    "care_team_for_patient",
    "care_team_member_add",
    "care_team_member_remove",
    "consent_set",
    "organization_create",
    "patient_access_sync",
    "practitioner_create",
    "service_team_create",
    "service_team_member_add",
    "service_team_member_remove",
    "task_act",
]
