"""Errors raised by coordination's services and selectors: the bases of core.errors, under
coordination's own base class. api/ and web/ map them to HTTP by their bases."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from core import errors as core_errors
from core.errors import DomainError, Problem

if TYPE_CHECKING:
    from coordination.models import CarePathway


class CoordinationError(DomainError):
    """Base of coordination's domain errors."""


class NotFound(core_errors.NotFound, CoordinationError):
    __doc__ = core_errors.NotFound.__doc__


class NotAllowed(core_errors.NotAllowed, CoordinationError):
    """The user sees the object but may not do this to it."""


class Conflict(core_errors.Conflict, CoordinationError):
    """The object changed since the caller read it (stale version), or the action no longer
    applies to its current state."""


class PathwayRunning(Conflict):
    """A start refused because the patient already follows the pathway: `running` holds the
    care pathways of that key that have not ended (oldest first), so that a page can name
    them. `confirmable` is True when the definition allows several at once and the caller
    asked to be told first (a start confirmed after seeing them goes ahead)."""

    def __init__(
        self, message: str, *, running: Sequence[CarePathway], confirmable: bool = False
    ) -> None:
        super().__init__(message)
        self.running = list(running)
        self.confirmable = confirmable


class InvalidInput(core_errors.InvalidInput, CoordinationError):
    """The input does not validate; carries every problem found."""


__all__ = [
    "Conflict",
    "CoordinationError",
    "InvalidInput",
    "NotAllowed",
    "NotFound",
    "PathwayRunning",
    "Problem",
]
