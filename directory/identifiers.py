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
