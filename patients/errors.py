"""Errors raised by the patients app's services and selectors. The API layer maps them to HTTP
answers (400 for invalid input, 404 for not found, 403 for not allowed, 409 for conflicts);
nothing here knows about HTTP."""

from __future__ import annotations

import datetime as dt

from core import errors as core_errors
from core.errors import DomainError, NotFoundOutcome, Problem


class PatientsError(DomainError):
    """Base of the patients app's domain errors."""


class InvalidInput(core_errors.InvalidInput, PatientsError):
    """The input does not validate; carries every problem found, in input order."""


class InvalidIdentifier(InvalidInput):
    """An identifier (INS: NIR/NIA and its OID, birth place code) is malformed.

    `field` names the input field, `reason` says what is wrong; on a key mismatch
    `expected_key` holds the key the number calls for (two digits, as a string).
    """

    def __init__(self, field: str, reason: str, *, expected_key: str | None = None) -> None:
        self.field = field
        self.reason = reason
        self.expected_key = expected_key
        super().__init__([Problem(field, reason)])


class InvalidPatient(InvalidInput):
    """A patient field other than an identifier is invalid (empty name, unknown sex...)."""


class InvalidConsent(InvalidInput):
    pass


class InvalidDevice(InvalidInput):
    pass


class InvalidObservation(InvalidInput):
    """One or more observations do not validate. In a batch, locations are `items.N.field`
    and nothing was stored."""


class InvalidAuditRecord(InvalidInput):
    """An audit record argument is out of its vocabulary or too large."""


class InvalidPermission(InvalidInput):
    """A permission that cannot be granted on a patient."""


class InvalidRange(InvalidInput):
    """A time range or window that is empty, unbounded, too long or malformed."""

    def __init__(self, message: str) -> None:
        super().__init__([Problem("range", message)])
        self.args = (message,)


class PatientNotFound(core_errors.NotFound, PatientsError):
    """The patient does not exist, or the user may not see it: both read the same.

    `outcome` tells the two apart for the audit trail only ("not_found" or "denied"); it must
    never reach the user, who gets the same answer either way.
    """

    def __init__(self, patient_id: object, *, outcome: NotFoundOutcome = "not_found") -> None:
        pid = patient_id if isinstance(patient_id, int) else None
        super().__init__("patient", patient_id, patient_id=pid, outcome=outcome)


class NoActiveConsent(core_errors.Conflict, PatientsError):
    """The patient has no active consent of the scope the action needs to end."""


class ConsentWithdrawn(core_errors.Conflict, PatientsError):
    """The patient withdrew the consent this action needs (`scope`, withdrawn at `since`):
    a device reading while `remote_monitoring` is withdrawn. Nothing was written."""

    def __init__(self, *, patient_id: int, scope: str, since: dt.datetime | None) -> None:
        self.patient_id, self.scope, self.since = patient_id, scope, since
        when = f" on {since.isoformat()}" if since is not None else ""
        super().__init__(
            f"patient {patient_id} withdrew their {scope} consent{when}: nothing was stored; "
            f"readings are accepted again once the patient gives {scope} consent again"
        )


class NotAllowed(core_errors.NotAllowed, PatientsError):
    """The actor lacks the (global) permission this action needs."""


class Conflict(core_errors.Conflict, PatientsError):
    """The write conflicts with the current state: a stale `expected_version`, a duplicate
    INS, a second active consent for a scope, a device registered to another patient.

    For a stale version, `expected` and `actual` hold the versions.
    """

    def __init__(
        self, message: str, *, expected: int | None = None, actual: int | None = None
    ) -> None:
        super().__init__(message, current_version=actual, expected=expected)

    @property
    def actual(self) -> int | None:
        return self.current_version


__all__ = [
    "Conflict",
    "ConsentWithdrawn",
    "InvalidAuditRecord",
    "InvalidConsent",
    "InvalidDevice",
    "InvalidIdentifier",
    "InvalidInput",
    "InvalidObservation",
    "InvalidPatient",
    "InvalidPermission",
    "InvalidRange",
    "NoActiveConsent",
    "NotAllowed",
    "PatientNotFound",
    "PatientsError",
    "Problem",
]
