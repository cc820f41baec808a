"""Errors raised by coordination's services and selectors; api/ and web/ map them to HTTP."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal


class CoordinationError(Exception):
    """Base of coordination's domain errors."""


class NotFound(CoordinationError):
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
        outcome: Literal["not_found", "denied"] = "not_found",
    ) -> None:
        self.kind, self.object_id = kind, object_id
        self.patient_id, self.outcome = patient_id, outcome
        super().__init__(f"no {kind} with id {object_id}")


class NotAllowed(CoordinationError):
    """The user sees the object but may not do this to it."""


class Conflict(CoordinationError):
    """The object changed since the caller read it (stale version), or the action no longer
    applies to its current state."""

    def __init__(self, message: str, *, current_version: int | None = None) -> None:
        self.current_version = current_version
        super().__init__(message)


@dataclass(frozen=True, order=True)
class Problem:
    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class InvalidInput(CoordinationError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))
