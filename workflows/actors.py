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


@dataclass(frozen=True)
class ActorLabel:
    """What an actor label recorded in history names: a user of the host (`user:<id>`), an
    API platform (`client:<client id>`), a command (`cli:<name>`) or the system itself."""

    kind: str  # "user", "platform", "command", "system" or "other"
    ref: str = ""


def parse_actor_label(label: str) -> ActorLabel:
    prefix, _, ref = label.partition(":")
    if prefix == "user" and ref.isdigit():
        return ActorLabel("user", ref)
    if prefix == "client":
        return ActorLabel("platform", ref)
    if prefix == "cli":
        return ActorLabel("command", ref)
    if prefix == "system":
        return ActorLabel("system", ref)
    return ActorLabel("other", label)
