"""Who fires an event: a person with roles, or the system (timers, alerts, task completion)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Actor:
    """`id` is an opaque label recorded in history (the engine knows no user model)."""

    id: str
    roles: frozenset[str] = field(default_factory=frozenset)
    is_system: bool = False

    @classmethod
    def person(
        cls, id: str, roles: set[str] | frozenset[str] | list[str] | tuple[str, ...]
    ) -> Actor:
        return cls(id=id, roles=frozenset(roles))


SYSTEM = Actor(id="system", is_system=True)
