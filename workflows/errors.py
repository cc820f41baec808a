"""Errors raised by the engine's services. The API layer maps them to HTTP answers."""

from __future__ import annotations

from enum import StrEnum

from workflows.definition.problems import InvalidDefinition


class WorkflowError(Exception):
    """Base of the engine's domain errors."""


class NotFound(WorkflowError):
    pass


class DefinitionConflict(WorkflowError):
    """A `(key, version)` already published with other content, or a forbidden status change."""


class StaleRevision(WorkflowError):
    """The caller's view of the instance is out of date."""

    def __init__(self, expected: int, actual: int) -> None:
        self.expected, self.actual = expected, actual
        super().__init__(f"instance is at revision {actual}, not {expected}")


class RefusalReason(StrEnum):
    NOT_ACTIVE = "not_active"
    NOT_AVAILABLE = "event_not_available"
    ROLE_NOT_ALLOWED = "role_not_allowed"
    GUARD_FALSE = "guard_false"
    BAD_PAYLOAD = "bad_payload"


class TransitionRefused(WorkflowError):
    """The event cannot be fired now; nothing was written."""

    def __init__(self, reason: RefusalReason, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(message)


class ActionNotRegistered(WorkflowError):
    """A state's `on_enter` uses an action kind no installed app handles."""


class MigrationRefused(WorkflowError):
    def __init__(self, message: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{message}: " + "; ".join(problems) if problems else message)


__all__ = [
    "ActionNotRegistered",
    "DefinitionConflict",
    "InvalidDefinition",
    "MigrationRefused",
    "NotFound",
    "RefusalReason",
    "StaleRevision",
    "TransitionRefused",
    "WorkflowError",
]
