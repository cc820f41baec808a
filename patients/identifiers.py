"""The INS (Identifiant National de Santé): a NIR or NIA and the OID naming which one it is.

A NIR (and a NIA, which has the same shape) is 13 characters and a 2-digit key, 15 in all.
The key is 97 - (the 13-character number mod 97); for people born in Corsica the department
(characters 6-7) is `2A` or `2B`, counted as `19` and `18` when computing the key. Every other
character is a digit.

Pure functions of the standard library: the services call them, the API may call them to
check input early.
"""

from __future__ import annotations

import re
from enum import StrEnum

from patients.errors import InvalidIdentifier

NIR_LENGTH = 15
_DEPARTMENT = slice(5, 7)
_CORSICA = {"2A": "19", "2B": "18"}
_BIRTH_PLACE = re.compile(r"^(?:\d{5}|2[AB]\d{3})$")


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
            f"must be {NIR_LENGTH} characters (13-character number + 2-digit key), got {len(nir)}",
        )
    for index, char in enumerate(nir):
        if char.isascii() and char.isdigit():
            continue
        if index in (5, 6) and nir[_DEPARTMENT] in _CORSICA:
            continue
        raise InvalidIdentifier(
            field,
            f"invalid character {char!r} at position {index + 1}: only digits are allowed, "
            "and 2A or 2B as the department (positions 6-7)",
        )
    expected = nir_key(nir[:13])
    if nir[13:] != expected:
        raise InvalidIdentifier(
            field,
            f"key mismatch: the key of {nir[:13]} is {expected}, not {nir[13:]}",
            expected_key=expected,
        )
    return nir


def check_oid(raw: str, *, field: str = "ins_oid") -> InsOid:
    try:
        return InsOid(raw.strip())
    except ValueError:
        allowed = ", ".join(f"{oid.value} ({oid.name})" for oid in InsOid)
        raise InvalidIdentifier(
            field, f"unknown INS OID {raw!r}; expected one of {allowed}"
        ) from None


def check_birth_place(raw: str, *, field: str = "birth_place_code") -> str:
    """An INSEE commune code: 5 digits, or 2A/2B and 3 digits for Corsica."""
    code = raw.strip().upper()
    if not _BIRTH_PLACE.match(code):
        raise InvalidIdentifier(
            field,
            f"{raw!r} is not an INSEE commune code (5 digits, or 2A/2B and 3 digits in Corsica)",
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
            f"{birth_place_code} is not in department {department}, where the NIR records "
            "the birth",
        )
