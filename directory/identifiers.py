"""The RPPS number: 11 digits, the last a Luhn check digit."""

from __future__ import annotations


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def rpps_problem(value: str) -> str | None:
    """Why `value` is not an RPPS number, or None when it is one."""
    if len(value) != 11:
        return f"an RPPS number has 11 digits, got {len(value)} characters"
    if not value.isdigit():
        return "an RPPS number has digits only"
    if not luhn_valid(value):
        return "the check digit (Luhn) does not match: mistyped number?"
    return None


# The national identifier of a professional (idNatPs), as Pro Santé Connect sends it in
# `SubjectNameID`: "8" followed by the RPPS number for RPPS holders. Other prefixes (ADELI
# holders: "0" + ADELI, test accounts) name no RPPS number.
RPPS_NATIONAL_ID_PREFIX = "8"


def rpps_from_national_id(value: str) -> str | None:
    """The RPPS number in a national identifier ("8" + 11 digits), or None when it holds
    none (another kind of identifier, or a mistyped number)."""
    if not value.startswith(RPPS_NATIONAL_ID_PREFIX):
        return None
    rpps = value[len(RPPS_NATIONAL_ID_PREFIX) :]
    return None if rpps_problem(rpps) else rpps


# Profession codes of the national directory (ANS nomenclature TRE_G15-ProfessionSante, sent
# by Pro Santé Connect as `SubjectRefPro.exercices[].codeProfession`) and the Parcours
# professions each one allows. A physician (10) may be recorded as a GP or a specialist: the
# code does not tell which.
PROFESSION_CODES: dict[str, tuple[str, ...]] = {
    "10": ("gp", "specialist"),  # médecin
    "21": ("pharmacist",),  # pharmacien
    "40": ("dentist",),  # chirurgien-dentiste
    "50": ("midwife",),  # sage-femme
    "60": ("nurse",),  # infirmier
    "69": ("nurse",),  # infirmier psychiatrique
    "70": ("physiotherapist",),  # masseur-kinésithérapeute
    "80": ("podiatrist",),  # pédicure-podologue
    "93": ("psychologist",),  # psychologue
    "95": ("dietitian",),  # diététicien
}
