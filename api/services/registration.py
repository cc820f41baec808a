"""Who joins the care team of a patient registered through the API, in the same transaction.

A patient is seen only through its care team. Whoever registers a patient and has no other
way to reach it would lose it at once, and so would everyone else: the registering platform
joins as `platform`, a registering care coordinator as `coordinator`. Either may then set
the rest of the care team (api.v1.directory). Anyone else who registers a patient (a GP, a
registrar with the permission) is not added: they add the care team through a coordinator
or the patient's GP, as before.
"""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser

from api.selectors import platform_account_for_user
from directory.models import Practitioner
from directory.selectors import PLATFORM_ROLE, practitioner_of
from directory.services.care_teams import care_team_member_add
from patients.models import Patient

COORDINATOR_ROLE = "coordinator"


def registrar_joins_care_team(*, patient: Patient, user: AbstractBaseUser) -> str | None:
    """Put the registering platform or care coordinator in the new patient's care team, in
    the caller's transaction; returns the role it joined in, or None."""
    practitioner = practitioner_of(user)
    if practitioner is None:
        return None
    if platform_account_for_user(user_id=user.pk) is not None:
        role = PLATFORM_ROLE
    elif practitioner.profession == Practitioner.Profession.COORDINATOR:
        role = COORDINATOR_ROLE
    else:
        return None
    care_team_member_add(patient=patient, role=role, practitioner=practitioner, actor=user)
    return role
