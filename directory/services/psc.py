"""Signing in with Pro Santé Connect (PSC), the national identity provider of French health
professionals: which practitioner the provider's claims name, and what of them Parcours
keeps.

The practitioner is found by national identifier only (`SubjectNameID`: "8" + RPPS), never
by name or e-mail, and no account is ever created here: an identifier no practitioner holds
is refused (`PscIdentifierUnknown`), as is an inactive account (`PscAccountInactive`). On
each sign-in the names and the profession the provider vouches for are brought up to date
on the account (see `practitioner_psc_sign_in`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from core.errors import InvalidInput, NotAllowed, NotFound, Problem
from directory.identifiers import PROFESSION_CODES, rpps_from_national_id
from directory.models import Practitioner

MAX_IDENTIFIER = 64


class PscIdentifierUnknown(NotFound):
    """No active or inactive practitioner holds this national identifier."""

    def __init__(self, national_id: str) -> None:
        self.national_id = national_id
        super().__init__(
            "practitioner",
            national_id,
            message=f"no practitioner with national identifier {national_id}",
        )


class PscAccountInactive(NotAllowed):
    """The practitioner (or their user account) is deactivated."""

    def __init__(self, national_id: str) -> None:
        self.national_id = national_id
        super().__init__(f"the account of national identifier {national_id} is deactivated")


@dataclass(frozen=True)
class PscIdentity:
    """What Parcours reads of the provider's userinfo claims."""

    national_id: str  # SubjectNameID, e.g. "8" + RPPS
    rpps: str | None  # None: the identifier holds no RPPS number
    given_name: str
    family_name: str
    profession_codes: tuple[str, ...]  # codeProfession of each exercise, in order


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def psc_identity_from_claims(claims: Mapping[str, Any]) -> PscIdentity:
    """The identity in PSC's userinfo claims: `SubjectNameID` (else `preferred_username`),
    `given_name` and `family_name` (else the first exercise's names), and the profession
    code of each exercise in `SubjectRefPro.exercices`. Raises InvalidInput when the claims
    carry no national identifier."""
    national_id = _text(claims.get("SubjectNameID")) or _text(claims.get("preferred_username"))
    if not national_id or len(national_id) > MAX_IDENTIFIER:
        raise InvalidInput([Problem("SubjectNameID", _("no national identifier in the claims"))])
    ref_pro = claims.get("SubjectRefPro")
    exercises = ref_pro.get("exercices") if isinstance(ref_pro, Mapping) else None
    exercises = (
        [e for e in exercises if isinstance(e, Mapping)] if isinstance(exercises, list) else []
    )
    first: Mapping[str, Any] = exercises[0] if exercises else {}
    codes = tuple(code for e in exercises if (code := _text(e.get("codeProfession"))))
    return PscIdentity(
        national_id=national_id,
        rpps=rpps_from_national_id(national_id),
        given_name=_text(claims.get("given_name")) or _text(first.get("prenomDexercice")),
        family_name=_text(claims.get("family_name")) or _text(first.get("nomDexercice")),
        profession_codes=codes,
    )


def vouched_profession(recorded: str, codes: tuple[str, ...]) -> str:
    """The profession to record, given the recorded one and PSC's profession codes: the
    recorded one when a code allows it (a physician stays a GP or a specialist) or when it
    is a role PSC does not know (care coordinator); otherwise the first profession the
    first known code allows. Unknown codes change nothing."""
    allowed = [p for code in codes for p in PROFESSION_CODES.get(code, ())]
    if not allowed or recorded in allowed or recorded == Practitioner.Profession.COORDINATOR:
        return recorded
    return allowed[0]


def practitioner_psc_sign_in(*, identity: PscIdentity) -> Practitioner:
    """The practitioner whose RPPS number is in `identity`, for a sign-in: their user's
    names and their profession are updated from the identity when they differ (the rows
    locked, `version` moved on when the profession changes). Never creates an account.

    Raises PscIdentifierUnknown (no RPPS number in the identifier, or none recorded) and
    PscAccountInactive (practitioner or user deactivated), having written nothing."""
    if identity.rpps is None:
        raise PscIdentifierUnknown(identity.national_id)
    with transaction.atomic():
        practitioner = (
            Practitioner.objects.select_for_update()
            .select_related("user")
            .filter(rpps=identity.rpps)
            .first()
        )
        if practitioner is None:
            raise PscIdentifierUnknown(identity.national_id)
        user = practitioner.user
        if not practitioner.active or not user.is_active:
            raise PscAccountInactive(identity.national_id)
        changed_user = []
        for field, value in (
            ("first_name", identity.given_name[:150]),
            ("last_name", identity.family_name[:150]),
        ):
            if value and getattr(user, field) != value:
                setattr(user, field, value)
                changed_user.append(field)
        if changed_user:
            user.save(update_fields=changed_user)
        profession = vouched_profession(practitioner.profession, identity.profession_codes)
        if profession != practitioner.profession:
            practitioner.profession = profession
            practitioner.version += 1
            practitioner.save(update_fields=["profession", "version"])
    return practitioner
