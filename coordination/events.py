"""Event types of coordination (the outbox)."""

from __future__ import annotations

EVENT_TYPES: frozenset[str] = frozenset(
    {
        "task.created",
        "task.changed",
        "pathway.moved",
        "alert.raised",
        "consent.changed",
        "observation.received",
    }
)
