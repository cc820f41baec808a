"""Event types written to the outbox, and their payload builders.

Payloads are thin on purpose: ids, versions and what changed, never patient data (no name,
no INS: the INS leaves only through the API, and only for a qualified identity). A receiver
that needs more reads it through the API, where the usual permission checks and the audit
trail apply. Every builder returns a plain JSON object (it is stored as JSON and published as
is).
"""

from __future__ import annotations

from typing import TypedDict

TASK_CREATED = "task.created"
TASK_CHANGED = "task.changed"
PATHWAY_STARTED = "pathway.started"
PATHWAY_MOVED = "pathway.moved"
PATHWAY_SUSPENDED = "pathway.suspended"
PATHWAY_RESUMED = "pathway.resumed"
PATHWAY_CANCELLED = "pathway.cancelled"
CONSENT_CHANGED = "consent.changed"
CARE_TEAM_CHANGED = "care_team.changed"
# Written by the observation and alert services.
OBSERVATION_RECEIVED = "observation.received"
ALERT_RAISED = "alert.raised"
# Written by coordination.services.triage when a pathway's risk score or band changes.
PATHWAY_RISK_CHANGED = "pathway.risk_changed"
ALERT_ESCALATED = "alert.escalated"
# Written by coordination.services.acknowledgements: a care-team member took an alert in hand.
ALERT_ACKNOWLEDGED = "alert.acknowledged"
# Written by coordination.services.parameters.
PARAMETER_CHANGED = "parameter.changed"

TYPES = frozenset(
    {
        TASK_CREATED,
        TASK_CHANGED,
        PATHWAY_STARTED,
        PATHWAY_MOVED,
        PATHWAY_SUSPENDED,
        PATHWAY_RESUMED,
        PATHWAY_CANCELLED,
        CONSENT_CHANGED,
        CARE_TEAM_CHANGED,
        OBSERVATION_RECEIVED,
        ALERT_RAISED,
        PATHWAY_RISK_CHANGED,
        ALERT_ESCALATED,
        ALERT_ACKNOWLEDGED,
        PARAMETER_CHANGED,
    }
)

# Types that change who may see the patient: before handing one on, a web process re-reads
# the access of the users it concerns (live.consumers).
ACCESS_CHANGING = frozenset({CONSENT_CHANGED, CARE_TEAM_CHANGED})

# Which events a patient's own account receives about its record: the pathway, its consents,
# and the tasks meant for the patient (payload `for_patient`).
PATIENT_ACCOUNT_TYPES = frozenset(
    {
        PATHWAY_STARTED,
        PATHWAY_MOVED,
        PATHWAY_SUSPENDED,
        PATHWAY_RESUMED,
        PATHWAY_CANCELLED,
        CONSENT_CHANGED,
    }
)


class TaskPayload(TypedDict):
    task: int
    version: int
    status: str
    action: str
    owner: int | None
    offered_team: int | None
    for_patient: bool
    pathway: int | None


def task_payload(
    *,
    task_id: int,
    version: int,
    status: str,
    action: str,
    owner_id: int | None,
    offered_team_id: int | None,
    for_patient: bool,
    pathway_id: int | None,
) -> TaskPayload:
    """`owner` is a practitioner id; `action` the task action ("open" when created)."""
    return {
        "task": task_id,
        "version": version,
        "status": status,
        "action": action,
        "owner": owner_id,
        "offered_team": offered_team_id,
        "for_patient": for_patient,
        "pathway": pathway_id,
    }


class PathwayPayload(TypedDict):
    pathway: int
    instance: int
    revision: int
    status: str
    state: str
    from_state: str
    event: str


def pathway_payload(
    *,
    pathway_id: int,
    instance_id: int,
    revision: int,
    status: str,
    state: str,
    from_state: str = "",
    event: str = "",
) -> PathwayPayload:
    """`revision` is the engine instance's revision after the change."""
    return {
        "pathway": pathway_id,
        "instance": instance_id,
        "revision": revision,
        "status": status,
        "state": state,
        "from_state": from_state,
        "event": event,
    }


class ConsentPayload(TypedDict):
    scope: str
    given: bool


def consent_payload(*, scope: str, given: bool) -> ConsentPayload:
    return {"scope": scope, "given": given}


class CareTeamPayload(TypedDict):
    member: int
    change: str
    role: str
    practitioner: int | None
    user: int | None
    service_team: int | None
    version: int


def care_team_payload(
    *,
    member_id: int,
    change: str,
    role: str,
    practitioner_id: int | None,
    user_id: int | None,
    service_team_id: int | None,
    version: int,
) -> CareTeamPayload:
    """`change` is "added" or "removed"; `user` the member's user account (so that the relay
    can tell that user's connections to pick up, or drop, the patient); `version` the care
    team's version after the change."""
    return {
        "member": member_id,
        "change": change,
        "role": role,
        "practitioner": practitioner_id,
        "user": user_id,
        "service_team": service_team_id,
        "version": version,
    }


class ObservationsPayload(TypedDict):
    observations: list[int]
    codes: list[str]
    source: str


def observations_payload(
    *, observation_ids: list[int], codes: list[str], source: str
) -> ObservationsPayload:
    """One event per stored batch (or single observation): the ids stored, the LOINC codes
    they measure (sorted, once each) and their source; never the values."""
    return {"observations": observation_ids, "codes": sorted(set(codes)), "source": source}


class AlertPayload(TypedDict):
    alert: int
    name: str
    pathway: int
    priority: str
    fired: bool
    task: int | None
    kind: str
    score: int
    band: str


def alert_payload(
    *,
    alert_id: int,
    name: str,
    pathway_id: int,
    priority: str,
    fired: bool,
    task_id: int | None,
    kind: str,
    score: int = 0,
    band: str = "low",
) -> AlertPayload:
    """`kind` is "condition" (a measurement crossed a threshold or trend) or "missing" (a
    measurement did not arrive in time); `fired` whether the alert's pathway event moved the
    pathway (a guard may refuse it; the alert and its task still stand)."""
    return {
        "alert": alert_id,
        "name": name,
        "pathway": pathway_id,
        "priority": priority,
        "fired": fired,
        "task": task_id,
        "kind": kind,
        "score": score,
        "band": band,
    }


class RiskPayload(TypedDict):
    pathway: int


def risk_payload(*, pathway_id: int) -> RiskPayload:
    """The care pathway whose triage score or band changed; not the values (clinical
    content): a client reads them through the API."""
    return {"pathway": pathway_id}


class ParameterPayload(TypedDict):
    pathway: int
    name: str
    parameter: int


def parameter_payload(*, pathway_id: int, name: str, parameter_id: int) -> ParameterPayload:
    """A per-patient parameter of the pathway was set: its name and the id of the new
    history row; never the value."""
    return {"pathway": pathway_id, "name": name, "parameter": parameter_id}
