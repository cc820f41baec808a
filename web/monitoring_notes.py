"""What the pages say about a pathway's monitoring: the guidance it cites, the validation
warnings about states left unwatched, and the pathway alerts a state suspends, with the reason
the pathway gives. Read from the compiled definition; nothing here writes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workflows.definition.compiled import CompiledDefinition, localized
from workflows.definition.validation import monitoring_warnings

_SAFE_SCHEMES = ("https://", "http://")


@dataclass(frozen=True)
class ReferenceRow:
    title: str
    publisher: str
    year: int | None
    url: str  # empty unless http(s): a definition is uploaded text, not a trusted link
    used_for: str


@dataclass(frozen=True)
class Suspension:
    state: str  # the state's name
    state_title: str
    name: str  # the pathway alert or expectation
    title: str
    reason: str


def references(definition: CompiledDefinition, language: str) -> list[ReferenceRow]:
    return [
        ReferenceRow(
            title=localized(r.title, language),
            publisher=r.publisher,
            year=r.year,
            url=r.url if r.url.lower().startswith(_SAFE_SCHEMES) else "",
            used_for=localized(r.used_for, language),
        )
        for r in definition.references
    ]


def warnings(document: Mapping[str, Any]) -> list[str]:
    """The validation warnings of a stored (hence valid) document, one line each."""
    return [f"{w.location}: {w.message}" for w in monitoring_warnings(document)]


def suspensions(
    definition: CompiledDefinition, language: str, state: str | None = None
) -> list[Suspension]:
    """The pathway alerts and expectations suspended in `state` (every state if None), in the
    order the pathway declares them, each with its localized title and reason."""
    titles: dict[str, str] = {}
    for alert in definition.monitoring.alerts:
        titles[alert.name] = localized(alert.title, language) or alert.name
    for expectation in definition.monitoring.expects:
        titles[expectation.key] = localized(expectation.title, language) or expectation.key
    found = []
    for name, spec in definition.states.items():
        if state is not None and name != state:
            continue
        for suspended, reason in spec.suspends.items():
            found.append(
                Suspension(
                    state=name,
                    state_title=localized(spec.title, language) or name,
                    name=suspended,
                    title=titles.get(suspended, suspended),
                    reason=localized(reason, language),
                )
            )
    return found
