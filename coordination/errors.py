"""Errors raised by coordination's services and selectors: the bases of core.errors, under
coordination's own base class. api/ and web/ map them to HTTP by their bases."""

from __future__ import annotations

from core import errors as core_errors
from core.errors import DomainError, Problem


class CoordinationError(DomainError):
    """Base of coordination's domain errors."""


class NotFound(core_errors.NotFound, CoordinationError):
    __doc__ = core_errors.NotFound.__doc__


class NotAllowed(core_errors.NotAllowed, CoordinationError):
    """The user sees the object but may not do this to it."""


class Conflict(core_errors.Conflict, CoordinationError):
    """The object changed since the caller read it (stale version), or the action no longer
    applies to its current state."""


class InvalidInput(core_errors.InvalidInput, CoordinationError):
    """The input does not validate; carries every problem found."""


__all__ = ["Conflict", "CoordinationError", "InvalidInput", "NotAllowed", "NotFound", "Problem"]
