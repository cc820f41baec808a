"""The base errors of every app's services and selectors. Each app subclasses them for its
own cases; api/problems.py and the web views map these bases to answers (400, 404, 403,
409), so a new error needs no new mapping unless it carries fields of its own. Nothing here
knows about HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal


class DomainError(Exception):
    """Base of the apps' domain errors."""


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with an input: where (`ins_nir`, `items.3.unit`) and what."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class InvalidInput(DomainError):
    """The input does not validate; carries every problem found, in input order."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        summary = "; ".join(str(p) for p in self.problems[:10])
        more = f" (and {len(self.problems) - 10} more)" if len(self.problems) > 10 else ""
        super().__init__(f"{summary}{more}")


NotFoundOutcome = Literal["not_found", "denied"]


class NotFound(DomainError):
    """Does not exist, or the user may not see it: callers cannot tell which.

    `patient_id` (the patient the object belongs to, when it exists) and `outcome`
    ("not_found", or "denied" for an object that exists but is not the user's) are for the
    audit trail only, which records a refused access under the patient it targeted; they
    must never reach the user, who gets the same answer either way.
    """

    def __init__(
        self,
        kind: str,
        object_id: object,
        *,
        patient_id: int | None = None,
        outcome: NotFoundOutcome = "not_found",
        message: str | None = None,
    ) -> None:
        self.kind, self.object_id = kind, object_id
        self.patient_id, self.outcome = patient_id, outcome
        super().__init__(message or f"no {kind} with id {object_id}")


class NotAllowed(DomainError):
    """The user sees the object but may not do this to it."""


class Conflict(DomainError):
    """The write conflicts with the current state: the object changed since the caller read
    it (a stale version), or the action no longer applies to it.

    For a stale version, `expected` holds the version the caller sent (when it sent one) and
    `current_version` the stored one.
    """

    def __init__(
        self, message: str, *, current_version: int | None = None, expected: int | None = None
    ) -> None:
        self.current_version, self.expected = current_version, expected
        super().__init__(message)


__all__ = [
    "Conflict",
    "DomainError",
    "InvalidInput",
    "NotAllowed",
    "NotFound",
    "NotFoundOutcome",
    "Problem",
]
