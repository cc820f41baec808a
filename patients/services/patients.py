"""Creating and updating patients.

- Identifiers are checked first: InvalidIdentifier names the first bad one (`ins_nir`,
  `ins_oid`, `birth_place_code`) and why; then the other fields, InvalidPatient listing every
  problem. Nothing is written when either is raised.
- The INS number must agree with the sex and birth date it encodes
  (`identifiers.nir_trait_problems`): a contradiction is an InvalidPatient naming `ins_nir`
  and each contradicted field (`sex`, `birth_date`). It is checked whenever one of the three
  is written; an update of other fields does not re-check a stored row that predates the rule.
- `patient_update` locks the row, compares `expected_version` with the stored version (Conflict
  when they differ), writes only the changed fields and increments `version`.
- Changing a strict identity trait (names, birth date, sex, birth place, INS) of an identity
  that was validated, recovered or qualified makes it provisional again unless the same update
  states the new `identity_status`: the checks that qualified the old traits say nothing about
  the new ones.
- Each write records an audit event in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from patients import identifiers
from patients.errors import Conflict, InvalidIdentifier, InvalidPatient, Problem
from patients.models import AuditEvent, Patient
from patients.selectors import lock_patient
from patients.services.audit import audit_record

Sex = Patient.Sex
IdentityStatus = Patient.IdentityStatus

STRICT_TRAITS = frozenset(
    {"family_name", "given_names", "birth_date", "sex", "birth_place_code", "ins_nir", "ins_oid"}
)
MAX_ADDRESS_LINES = 4
EARLIEST_BIRTH = dt.date(1880, 1, 1)
_NIR_TRAITS = ("ins_nir", "sex", "birth_date")
_PHONE = re.compile(r"^\+?[0-9 ().-]{4,31}$")


class PatientChanges(TypedDict, total=False):
    """The fields `patient_update` may change; absent keys stay as they are."""

    family_name: str
    given_names: str
    birth_date: dt.date
    sex: str
    birth_place_code: str
    phone: str
    email: str
    address_lines: Sequence[str]
    postal_code: str
    city: str
    ins_nir: str
    ins_oid: str
    identity_status: str
    user: AbstractBaseUser | None


def patient_create(
    *,
    family_name: str,
    given_names: str,
    birth_date: dt.date,
    sex: str,
    actor: AbstractBaseUser | None,
    entry_point: str,
    birth_place_code: str = "",
    phone: str = "",
    email: str = "",
    address_lines: Sequence[str] = (),
    postal_code: str = "",
    city: str = "",
    ins_nir: str = "",
    ins_oid: str = "",
    identity_status: str = IdentityStatus.PROVISIONAL,
    user: AbstractBaseUser | None = None,
    purpose: str = AuditEvent.Purpose.CARE_COORDINATION,
    client_address: str | None = None,
    now: dt.datetime | None = None,
) -> Patient:
    """Create a patient at version 1. Raises InvalidIdentifier, InvalidPatient, or Conflict
    (the INS or the portal account already belongs to another patient)."""
    now = now or timezone.now()
    values = _clean(
        {
            "family_name": family_name,
            "given_names": given_names,
            "birth_date": birth_date,
            "sex": sex,
            "birth_place_code": birth_place_code,
            "phone": phone,
            "email": email,
            "address_lines": address_lines,
            "postal_code": postal_code,
            "city": city,
            "ins_nir": ins_nir,
            "ins_oid": ins_oid,
            "identity_status": identity_status,
        },
        today=timezone.localdate(now),
    )
    with transaction.atomic():
        _check_unique(values, user, patient_id=None)
        try:
            with transaction.atomic():
                patient = Patient.objects.create(
                    **values,
                    user_id=user.pk if user is not None else None,
                    created_at=now,
                    updated_at=now,
                    version=1,
                )
        except IntegrityError:
            raise Conflict(
                _("another patient was just created with the same INS or portal account")
            ) from None
        audit_record(
            actor=actor,
            action=AuditEvent.Action.CREATE,
            resource_type="Patient",
            resource_id=patient.pk,
            patient_id=patient.pk,
            purpose=purpose,
            entry_point=entry_point,
            client_address=client_address,
        )
    return patient


def patient_update(
    *,
    patient: Patient,
    expected_version: int,
    changes: PatientChanges,
    actor: AbstractBaseUser | None,
    entry_point: str,
    purpose: str = AuditEvent.Purpose.CARE_COORDINATION,
    client_address: str | None = None,
    now: dt.datetime | None = None,
) -> Patient:
    """Apply `changes` to the patient if it is still at `expected_version`; return the
    updated row (a new instance: `patient` itself is not modified).

    Raises Conflict (stale version, or a duplicate INS or portal account), InvalidIdentifier,
    InvalidPatient, PatientNotFound. Changing nothing writes nothing and keeps the version.
    """
    now = now or timezone.now()
    unknown = sorted(set(changes) - set(PatientChanges.__annotations__))
    if unknown:
        raise InvalidPatient([Problem(name, _("unknown field")) for name in unknown])
    with transaction.atomic():
        locked = lock_patient(patient_id=patient.pk)
        if locked.version != expected_version:
            raise Conflict(
                _(
                    "patient %(patient)s is at version %(current)s, not %(expected)s; "
                    "reload it and apply the change again"
                )
                % {"patient": locked.pk, "current": locked.version, "expected": expected_version},
                expected=expected_version,
                actual=locked.version,
            )
        fields: dict[str, Any] = {name: value for name, value in changes.items() if name != "user"}
        current = {name: getattr(locked, name) for name in _CLEANED_FIELDS}
        values = _clean(
            {**current, **fields},
            today=timezone.localdate(now),
            previous=None if "identity_status" in changes else current,
            stored=current,
        )
        changed = [name for name in _CLEANED_FIELDS if values[name] != current[name]]
        new_user = changes.get("user")
        new_user_id = new_user.pk if new_user is not None else None
        user_changed = "user" in changes and new_user_id != locked.user_id
        ins_changed = bool({"ins_nir", "ins_oid"}.intersection(changed))
        if ins_changed or user_changed:
            _check_unique(
                values if ins_changed else {},
                new_user if user_changed else None,
                patient_id=locked.pk,
            )
        if user_changed:
            locked.user_id = new_user_id
            changed.append("user")
        if not changed:
            return locked
        for name in changed:
            if name != "user":
                setattr(locked, name, values[name])
        locked.updated_at = now
        locked.version += 1
        try:
            with transaction.atomic():
                locked.save(update_fields=[*changed, "updated_at", "version"])
        except IntegrityError:
            raise Conflict(
                _("another patient was just given the same INS or portal account")
            ) from None
        audit_record(
            actor=actor,
            action=AuditEvent.Action.UPDATE,
            resource_type="Patient",
            resource_id=locked.pk,
            patient_id=locked.pk,
            purpose=purpose,
            entry_point=entry_point,
            client_address=client_address,
            detail={"fields": sorted(changed), "version": locked.version},
        )
    return locked


_CLEANED_FIELDS = (
    "family_name",
    "given_names",
    "birth_date",
    "sex",
    "birth_place_code",
    "phone",
    "email",
    "address_lines",
    "postal_code",
    "city",
    "ins_nir",
    "ins_oid",
    "identity_status",
)


def _clean(
    values: Mapping[str, Any],
    *,
    today: dt.date,
    previous: Mapping[str, Any] | None = None,
    stored: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Normalized values, or InvalidIdentifier (first bad identifier) / InvalidPatient (every
    other problem). With `previous` (an update that does not state the identity status), an
    identity whose strict traits change becomes provisional. With `stored` (an update), the
    INS number is compared with the sex and birth date only when one of the three changes."""
    cleaned = dict(values)
    nir = _text(values["ins_nir"])
    oid = _text(values["ins_oid"])
    birth_place = _text(values["birth_place_code"])
    if nir and not oid:
        raise InvalidIdentifier("ins_oid", _("required when ins_nir is given"))
    if oid and not nir:
        raise InvalidIdentifier("ins_nir", _("required when ins_oid is given"))
    cleaned["ins_nir"] = identifiers.check_nir(nir) if nir else ""
    cleaned["ins_oid"] = identifiers.check_oid(oid).value if oid else ""
    cleaned["birth_place_code"] = identifiers.check_birth_place(birth_place) if birth_place else ""
    if cleaned["ins_nir"]:
        identifiers.check_nir_birth_place(cleaned["ins_nir"], cleaned["birth_place_code"])

    problems: list[Problem] = []
    for name, longest in (
        ("family_name", 150),
        ("given_names", 255),
        ("postal_code", 10),
        ("city", 100),
        ("phone", 32),
        ("email", 254),
    ):
        value = values[name]
        if not isinstance(value, str):
            problems.append(Problem(name, _("must be text")))
            continue
        cleaned[name] = value = " ".join(value.split())
        if name in ("family_name", "given_names") and not value:
            problems.append(Problem(name, _("required")))
        elif len(value) > longest:
            problems.append(Problem(name, _("longer than %(n)d characters") % {"n": longest}))
    if (
        isinstance(cleaned["phone"], str)
        and cleaned["phone"]
        and not _PHONE.match(cleaned["phone"])
    ):
        problems.append(Problem("phone", _("digits, spaces, + ( ) . - only")))
    if isinstance(cleaned["email"], str) and cleaned["email"]:
        try:
            validate_email(cleaned["email"])
        except ValidationError:
            problems.append(Problem("email", _("not an email address")))
    birth_date_problems = _check_birth_date(values["birth_date"], today)
    problems.extend(birth_date_problems)
    if values["sex"] not in Sex.values:
        problems.append(
            Problem(
                "sex",
                _("%(value)s is not one of %(allowed)s")
                % {"value": repr(values["sex"]), "allowed": ", ".join(Sex.values)},
            )
        )
    if cleaned["ins_nir"] and (
        stored is None or any(cleaned[name] != stored[name] for name in _NIR_TRAITS)
    ):
        problems.extend(
            identifiers.nir_trait_problems(
                cleaned["ins_nir"],
                sex=values["sex"],
                birth_date=None if birth_date_problems else values["birth_date"],
            )
        )
    if previous is not None and any(cleaned[name] != previous[name] for name in STRICT_TRAITS):
        cleaned["identity_status"] = IdentityStatus.PROVISIONAL
    status = cleaned["identity_status"]
    if status not in IdentityStatus.values:
        allowed = ", ".join(IdentityStatus.values)
        problems.append(
            Problem(
                "identity_status",
                _("%(value)s is not one of %(allowed)s")
                % {"value": repr(status), "allowed": allowed},
            )
        )
    elif status in (IdentityStatus.RECOVERED, IdentityStatus.QUALIFIED) and not nir:
        problems.append(
            Problem(
                "identity_status",
                _("a %(status)s identity needs its INS (ins_nir, ins_oid)") % {"status": status},
            )
        )
    lines = values["address_lines"]
    if isinstance(lines, str) or not all(isinstance(line, str) for line in lines):
        problems.append(Problem("address_lines", _("must be a list of text lines")))
    else:
        cleaned["address_lines"] = [" ".join(line.split()) for line in lines if line.strip()]
        if len(cleaned["address_lines"]) > MAX_ADDRESS_LINES:
            problems.append(
                Problem("address_lines", _("at most %(n)d lines") % {"n": MAX_ADDRESS_LINES})
            )
        for index, line in enumerate(cleaned["address_lines"]):
            if len(line) > 200:
                problems.append(
                    Problem(
                        f"address_lines.{index}", _("longer than %(n)d characters") % {"n": 200}
                    )
                )
    if problems:
        raise InvalidPatient(problems)
    return cleaned


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _check_birth_date(value: object, today: dt.date) -> list[Problem]:
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        return [Problem("birth_date", _("must be a date"))]
    if value > today:
        return [Problem("birth_date", _("in the future"))]
    if value < EARLIEST_BIRTH:
        return [Problem("birth_date", _("before %(date)s") % {"date": EARLIEST_BIRTH.isoformat()})]
    return []


def _check_unique(
    values: Mapping[str, Any], user: AbstractBaseUser | None, *, patient_id: int | None
) -> None:
    others = Patient.objects.exclude(pk=patient_id) if patient_id else Patient.objects.all()
    if values.get("ins_nir") and (
        others.filter(ins_nir=values["ins_nir"], ins_oid=values["ins_oid"]).exists()
    ):
        raise Conflict(_("another patient already has this INS"))
    if user is not None and others.filter(user_id=user.pk).exists():
        raise Conflict(_("this portal account already belongs to another patient"))
