"""Organisations, practitioners and service teams."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from core.errors import Conflict, InvalidInput, NotFound, Problem
from directory.identifiers import rpps_problem
from directory.models import Organization, Practitioner, ServiceTeam, ServiceTeamMembership

User = get_user_model()


def organization_create(
    *, name: str, kind: str, actor: AbstractBaseUser | None, finess: str = ""
) -> Organization:
    problems = []
    if not name.strip():
        problems.append(Problem("name", gettext("required")))
    if kind not in Organization.Kind.values:
        problems.append(
            Problem(
                "kind",
                gettext("%(value)s is not one of %(allowed)s")
                % {"value": repr(kind), "allowed": ", ".join(Organization.Kind.values)},
            )
        )
    if finess and (len(finess) != 9 or not finess[:2].isalnum() or not finess.isalnum()):
        problems.append(Problem("finess", gettext("a FINESS number has 9 characters")))
    if problems:
        raise InvalidInput(problems)
    return Organization.objects.create(
        name=name.strip(), kind=kind, finess=finess, created_at=timezone.now()
    )


def practitioner_create(
    *,
    username: str,
    given_name: str,
    family_name: str,
    profession: str,
    actor: AbstractBaseUser | None,
    rpps: str = "",
    specialty: str = "",
    email: str = "",
    organization: Organization | None = None,
    password: str | None = None,
    now: dt.datetime | None = None,
) -> Practitioner:
    """A user account and its practitioner profile. RPPS optional (coordinators may have none)
    but checked when given: 11 digits with a Luhn check digit."""
    problems = []
    if profession not in Practitioner.Profession.values:
        allowed = ", ".join(Practitioner.Profession.values)
        problems.append(
            Problem(
                "profession",
                gettext("%(value)s is not one of %(allowed)s")
                % {"value": repr(profession), "allowed": allowed},
            )
        )
    if profession == Practitioner.Profession.SPECIALIST and not specialty.strip():
        problems.append(Problem("specialty", gettext("required for a specialist")))
    if rpps and (reason := rpps_problem(rpps)):
        problems.append(Problem("rpps", reason))
    if not username.strip():
        problems.append(Problem("username", gettext("required")))
    if problems:
        raise InvalidInput(problems)
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                username=username,
                email=email,
                first_name=given_name,
                last_name=family_name,
                password=password,
            )
            return Practitioner.objects.create(
                user=user,
                profession=profession,
                specialty=specialty.strip(),
                rpps=rpps,
                organization=organization,
                created_at=now or timezone.now(),
            )
    except IntegrityError as exc:
        field = "rpps" if "rpps" in str(exc) else "username"
        raise Conflict(
            gettext("%(field)s: already used by another account") % {"field": field}
        ) from None


def service_team_create(
    *,
    name: str,
    roles: list[str],
    actor: AbstractBaseUser | None,
    organization: Organization | None = None,
) -> ServiceTeam:
    if not name.strip():
        raise InvalidInput([Problem("name", gettext("required"))])
    now = timezone.now()
    with transaction.atomic():
        group = Group.objects.create(name=f"service-team:{name.strip()}:{now.timestamp():.6f}")
        return ServiceTeam.objects.create(
            name=name.strip(),
            organization=organization,
            group=group,
            roles=sorted(set(roles)),
            created_at=now,
        )


def service_team_member_add(
    *, team: ServiceTeam, practitioner: Practitioner, actor: AbstractBaseUser | None
) -> ServiceTeamMembership:
    """Idempotent. The practitioner's user joins the team's group, so the team's object
    permissions reach them at once."""
    with transaction.atomic():
        membership, _ = ServiceTeamMembership.objects.get_or_create(
            team=team, practitioner=practitioner, defaults={"since": timezone.now()}
        )
        practitioner.user.groups.add(team.group)
    return membership


def service_team_member_remove(
    *, team: ServiceTeam, practitioner: Practitioner, actor: AbstractBaseUser | None
) -> None:
    with transaction.atomic():
        deleted, _ = ServiceTeamMembership.objects.filter(
            team=team, practitioner=practitioner
        ).delete()
        if not deleted:
            raise NotFound("service team membership", f"{team.pk}/{practitioner.pk}")
        practitioner.user.groups.remove(team.group)
