"""The INS (Identifiant National de Santé): a NIR or NIA and the OID naming which one it is.

A NIR (and a NIA, which has the same shape) is 13 characters and a 2-digit key, 15 in all.
The key is 97 - (the 13-character number mod 97); for people born in Corsica the department
(characters 6-7) is `2A` or `2B`, counted as `19` and `18` when computing the key. Every other
character is a digit.

The number also encodes some of the person's traits, which `nir_trait_problems` compares
with the patient's record (see there for which digits and values count).

Pure functions of the standard library: the services call them, the API may call them to
check input early.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum

from django.utils.translation import gettext as _

from patients.errors import InvalidIdentifier, Problem

NIR_LENGTH = 15
_DEPARTMENT = slice(5, 7)
_CORSICA = {"2A": "19", "2B": "18"}
_BIRTH_PLACE = re.compile(r"^(?:\d{5}|2[AB]\d{3})$")
# Digit 1: 1 and 2 in a NIR; 3 and 4 in a provisional number given to a person born abroad
# while being registered; 7 and 8 in a temporary number (NIA). Other values encode no sex.
_SEX_OF_DIGIT = {"1": "male", "3": "male", "7": "male", "2": "female", "4": "female", "8": "female"}


class InsOid(StrEnum):
    """The OIDs of the INS (identifier.system is `urn:oid:<OID>` in FHIR)."""

    NIR = "1.2.250.1.213.1.4.8"
    NIA = "1.2.250.1.213.1.4.9"
    TEST_NIR = "1.2.250.1.213.1.4.10"
    TEST_NIA = "1.2.250.1.213.1.4.11"


def normalize_nir(raw: str) -> str:
    """Spaces removed and letters upper-cased: `1 84 12 2a 004 123 45` -> `184122A00412345`."""
    return "".join(raw.split()).upper()


def nir_key(number: str) -> str:
    """The 2-digit key of a 13-character NIR/NIA (`2A`/`2B` allowed as its department).

    The number must already be well-formed (13 characters, digits except the department).
    """
    assert len(number) == NIR_LENGTH - 2, "nir_key takes the 13-character number"
    department = number[_DEPARTMENT]
    digits = number[:5] + _CORSICA.get(department, department) + number[7:]
    return f"{97 - int(digits) % 97:02d}"


def check_nir(raw: str, *, field: str = "ins_nir") -> str:
    """The normalized NIR/NIA, or InvalidIdentifier naming `field` and saying why:
    wrong length, a bad character (and where), or a key mismatch (with the expected key)."""
    nir = normalize_nir(raw)
    if len(nir) != NIR_LENGTH:
        raise InvalidIdentifier(
            field,
            _("must be %(n)d characters (13-character number + 2-digit key), got %(got)d")
            % {"n": NIR_LENGTH, "got": len(nir)},
        )
    for index, char in enumerate(nir):
        if char.isascii() and char.isdigit():
            continue
        if index in (5, 6) and nir[_DEPARTMENT] in _CORSICA:
            continue
        raise InvalidIdentifier(
            field,
            _(
                "invalid character %(char)s at position %(position)d: only digits are allowed, "
                "and 2A or 2B as the department (positions 6-7)"
            )
            % {"char": repr(char), "position": index + 1},
        )
    expected = nir_key(nir[:13])
    if nir[13:] != expected:
        raise InvalidIdentifier(
            field,
            _("key mismatch: the key of %(number)s is %(expected)s, not %(given)s")
            % {"number": nir[:13], "expected": expected, "given": nir[13:]},
            expected_key=expected,
        )
    return nir


def check_oid(raw: str, *, field: str = "ins_oid") -> InsOid:
    try:
        return InsOid(raw.strip())
    except ValueError:
        allowed = ", ".join(f"{oid.value} ({oid.name})" for oid in InsOid)
        raise InvalidIdentifier(
            field,
            _("unknown INS OID %(oid)s; expected one of %(allowed)s")
            % {"oid": repr(raw), "allowed": allowed},
        ) from None


def check_birth_place(raw: str, *, field: str = "birth_place_code") -> str:
    """An INSEE commune code: 5 digits, or 2A/2B and 3 digits for Corsica."""
    code = raw.strip().upper()
    if not _BIRTH_PLACE.match(code):
        raise InvalidIdentifier(
            field,
            _("%(code)s is not an INSEE commune code (5 digits, or 2A/2B and 3 digits in Corsica)")
            % {"code": repr(raw)},
        )
    return code


def check_nir_birth_place(nir: str, birth_place_code: str) -> None:
    """A NIR whose department is 2A or 2B records a birth in that Corsican department, so a
    commune code given alongside must be in it. Nothing else is cross-checked: communes merge
    and are renumbered, and the NIR keeps the code in force at birth."""
    department = nir[_DEPARTMENT]
    if department in _CORSICA and birth_place_code and birth_place_code[:2] != department:
        raise InvalidIdentifier(
            "birth_place_code",
            _("%(code)s is not in department %(department)s, where the NIR records the birth")
            % {"code": birth_place_code, "department": department},
        )


def nir_trait_problems(nir: str, *, sex: object, birth_date: object) -> list[Problem]:
    """The contradictions between a well-formed NIR/NIA (as `check_nir` returns it) and the
    sex and birth date recorded with it: empty when they agree.

    What is compared, whatever the OID (NIR, NIA and their test numbers alike):

    - digit 1, the sex: 1, 3 or 7 is male, 2, 4 or 8 female (3/4: provisional numbers of
      persons born abroad being registered, 7/8: temporary numbers). Compared only when the
      recorded sex is `male` or `female`: `other` and `unknown` match any digit, and a digit
      outside these six matches any sex.
    - digits 2-3, the last two digits of the birth year: always compared.
    - digits 4-5, the birth month: compared only when 01 to 12. Every other value (20-42 and
      50-99 when the month was unknown or the birth registered on declaration, and anything
      else outside 01-12) encodes no month and matches any birth date.

    A `sex` or `birth_date` that is not a valid value (not a choice, not a date) is not
    compared: the caller reports it on its own. On a contradiction, the list names the NIR
    first (`ins_nir`, every contradiction in one message) and then each contradicted field
    (`sex`, `birth_date`), so that the person correcting it sees both sides.
    """
    nir_reasons: list[str] = []
    problems: list[Problem] = []
    encoded_sex = _SEX_OF_DIGIT.get(nir[0])
    if encoded_sex is not None and sex in ("male", "female") and sex != encoded_sex:
        nir_reasons.append(
            _("digit 1 (%(digit)s) encodes sex %(encoded)s, but sex is %(sex)s")
            % {"digit": nir[0], "encoded": encoded_sex, "sex": sex}
        )
        problems.append(
            Problem(
                "sex",
                _("%(sex)s, but ins_nir encodes %(encoded)s (digit 1 is %(digit)s)")
                % {"sex": sex, "encoded": encoded_sex, "digit": nir[0]},
            )
        )
    if isinstance(birth_date, dt.date) and not isinstance(birth_date, dt.datetime):
        date_reasons: list[str] = []
        year = nir[1:3]
        if int(year) != birth_date.year % 100:
            date_reasons.append(
                _("digits 2-3 (%(year)s) encode a birth year ending in %(year)s") % {"year": year}
            )
        month = nir[3:5]
        if 1 <= int(month) <= 12 and int(month) != birth_date.month:
            date_reasons.append(
                _("digits 4-5 (%(month)s) encode birth month %(month)s") % {"month": month}
            )
        if date_reasons:
            stated = _(" and ").join(date_reasons)
            nir_reasons.append(
                _("%(stated)s, but birth_date is %(date)s")
                % {"stated": stated, "date": birth_date.isoformat()}
            )
            problems.append(
                Problem(
                    "birth_date",
                    _("%(date)s, but in ins_nir %(stated)s")
                    % {"date": birth_date.isoformat(), "stated": stated},
                )
            )
    if not nir_reasons:
        return []
    return [Problem("ins_nir", "; ".join(nir_reasons)), *problems]
