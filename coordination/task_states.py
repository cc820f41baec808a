"""The FHIR Task state machine (http://hl7.org/fhir/task-status), as an explicit table, and
the actions of Parcours mapped onto it."""

from __future__ import annotations

from dataclasses import dataclass

DRAFT, REQUESTED, RECEIVED, ACCEPTED, REJECTED, READY = (
    "draft", "requested", "received", "accepted", "rejected", "ready",
)  # fmt: skip
CANCELLED, IN_PROGRESS, ON_HOLD, FAILED, COMPLETED, ENTERED_IN_ERROR = (
    "cancelled", "in-progress", "on-hold", "failed", "completed", "entered-in-error",
)  # fmt: skip

TERMINAL = frozenset({REJECTED, CANCELLED, FAILED, COMPLETED, ENTERED_IN_ERROR})
OPEN = frozenset({DRAFT, REQUESTED, RECEIVED, ACCEPTED, READY, IN_PROGRESS, ON_HOLD})
# Finished in the sense of `tasks_completed`: done, or no longer needed.
DONE = frozenset({COMPLETED, CANCELLED, ENTERED_IN_ERROR})

ALLOWED: dict[str, frozenset[str]] = {
    DRAFT: frozenset({REQUESTED, READY, CANCELLED, ENTERED_IN_ERROR}),
    REQUESTED: frozenset({RECEIVED, ACCEPTED, REJECTED, CANCELLED}),
    RECEIVED: frozenset({ACCEPTED, REJECTED, CANCELLED}),
    ACCEPTED: frozenset({IN_PROGRESS, CANCELLED}),
    READY: frozenset({IN_PROGRESS, ON_HOLD, CANCELLED}),
    IN_PROGRESS: frozenset({ON_HOLD, COMPLETED, FAILED, READY, CANCELLED}),
    ON_HOLD: frozenset({IN_PROGRESS, CANCELLED}),
    **{state: frozenset() for state in TERMINAL},
}

PRIORITY_RANK = {"stat": 0, "asap": 1, "urgent": 2, "routine": 3}


@dataclass(frozen=True)
class ActionRule:
    """An action moves the task along `path` (one or more steps of the table)."""

    name: str
    path: tuple[str, ...]  # target statuses, in order; empty: status unchanged
    sources: frozenset[str] | None = None  # statuses it applies to; None: any the table allows


ACTIONS: dict[str, ActionRule] = {
    "claim": ActionRule("claim", ()),
    "release": ActionRule("release", ()),
    "start": ActionRule("start", (IN_PROGRESS,)),
    "hold": ActionRule("hold", (ON_HOLD,)),
    "resume": ActionRule("resume", (IN_PROGRESS,), sources=frozenset({ON_HOLD})),
    "complete": ActionRule("complete", (COMPLETED,)),
    "fail": ActionRule("fail", (FAILED,)),
    "cancel": ActionRule("cancel", (CANCELLED,)),
    "reassign": ActionRule("reassign", ()),
}


def path_to(current: str, target: str) -> list[str]:
    """The statuses to go through from `current` to `target`: [target] when allowed directly,
    [in-progress, completed] for completing a ready task (it was started and finished at once),
    [] when the table allows no way."""
    if target in ALLOWED.get(current, frozenset()):
        return [target]
    if current in (READY, ACCEPTED) and target in (COMPLETED, FAILED):
        return [IN_PROGRESS, target]
    return []
