"""Errors raised by coordination's services and selectors; api/ and web/ map them to HTTP."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class CoordinationError(Exception):
    """Base of coordination's domain errors."""


class NotFound(CoordinationError):
    """Does not exist, or the user may not see it: callers cannot tell which."""

    def __init__(self, kind: str, object_id: object) -> None:
        self.kind, self.object_id = kind, object_id
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
