"""Errors raised by the engine's services. The API layer maps them to HTTP answers."""

from __future__ import annotations

from enum import StrEnum

from core import errors as core_errors
from core.errors import DomainError
from workflows.definition.problems import InvalidDefinition


class WorkflowError(DomainError):
    """Base of the engine's domain errors."""


class NotFound(core_errors.NotFound, WorkflowError):
    """No such definition or instance."""

    def __init__(self, message: str) -> None:
        super().__init__("workflow object", None, message=message)


class DefinitionConflict(core_errors.Conflict, WorkflowError):
    """A `(key, version)` already published with other content, or a forbidden status change."""


class StaleRevision(core_errors.Conflict, WorkflowError):
    """The caller's view of the instance is out of date."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(
            f"instance is at revision {actual}, not {expected}",
            current_version=actual,
            expected=expected,
        )

    @property
    def actual(self) -> int:
        assert self.current_version is not None
        return self.current_version


class RefusalReason(StrEnum):
    NOT_ACTIVE = "not_active"
    NOT_AVAILABLE = "event_not_available"
    ROLE_NOT_ALLOWED = "role_not_allowed"
    GUARD_FALSE = "guard_false"
    BAD_PAYLOAD = "bad_payload"


class TransitionRefused(core_errors.Conflict, WorkflowError):
    """The event cannot be fired now; nothing was written."""

    def __init__(self, reason: RefusalReason, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(message)


class ActionNotRegistered(WorkflowError):
    """A state's `on_enter` uses an action kind no installed app handles."""


class MigrationRefused(core_errors.Conflict, WorkflowError):
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
