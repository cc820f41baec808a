"""Global roles, given through groups: what an account may do beyond the care teams it is
in (those rights are per patient, directory.services.care_teams).

- `coordinators`: register patients, upload and publish pathway definitions, add
  practitioners and service teams (what `manage.py onboard` gives the first coordinator);
- `emergency-access`: break the glass (patients.break_glass_patient), opening a record
  outside the care team for a few hours, audited (patients.services.access).

Each group is made or brought up to date with exactly its permissions when a role is given;
giving a role twice changes nothing.
"""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import Group, Permission

COORDINATORS_GROUP = "coordinators"
COORDINATOR_PERMISSIONS = (
    "patients.add_patient",
    "workflows.add_pathwaydefinition",
    "directory.add_practitioner",
    "directory.add_serviceteam",
    "directory.change_serviceteam",
)
EMERGENCY_ACCESS_GROUP = "emergency-access"
EMERGENCY_ACCESS_PERMISSIONS = ("patients.break_glass_patient",)


def _group(name: str, permissions: tuple[str, ...]) -> Group:
    group, _ = Group.objects.get_or_create(name=name)
    wanted = []
    for dotted in permissions:
        app_label, codename = dotted.split(".")
        wanted.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    group.permissions.set(wanted)
    return group


def coordinators_group() -> Group:
    """The `coordinators` group with exactly COORDINATOR_PERMISSIONS (made or brought up to
    date)."""
    return _group(COORDINATORS_GROUP, COORDINATOR_PERMISSIONS)


def coordinator_role_grant(*, user: AbstractBaseUser) -> None:
    """Put the account in the `coordinators` group (idempotent)."""
    user.groups.add(coordinators_group())  # type: ignore[attr-defined]


def emergency_access_grant(*, user: AbstractBaseUser) -> None:
    """Let the account break the glass: the `emergency-access` group (idempotent)."""
    user.groups.add(_group(EMERGENCY_ACCESS_GROUP, EMERGENCY_ACCESS_PERMISSIONS))  # type: ignore[attr-defined]
