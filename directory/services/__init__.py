"""Every write of the directory. Each module states its locks and what it records."""

from directory.services.care_teams import (
    care_team_for_patient,
    care_team_member_add,
    care_team_member_remove,
    consent_set,
    patient_access_sync,
)
from directory.services.organisations import (
    organization_create,
    practitioner_create,
    service_team_create,
    service_team_member_add,
    service_team_member_remove,
)

__all__ = [
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
]
