"""Pathway documents and diagrams as the pages show them, kept in memory.

A stored definition never changes under its (id, checksum), but reading its document means
parsing its YAML source and drawing a diagram means laying the states out: both far slower
than the rest of a page. Pages read them through here, once per process and definition (and
per current state, visited states and language for a diagram). The documents are shared:
callers must not modify them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from workflows.definition.titles import role_title
from workflows.diagrams import NextStep, render_definition_svg, where_next
from workflows.models import Timer
from workflows.selectors import (
    definition_document,
    definition_get_by_id,
    instance_definition,
    instance_timers,
)

if TYPE_CHECKING:
    from workflows.models import PathwayDefinition, PathwayInstance

MAX_DOCUMENTS = 256
_documents: dict[tuple[int, str], dict[str, Any]] = {}


def pathway_document(definition: PathwayDefinition) -> dict[str, Any]:
    key = (definition.pk, definition.checksum)
    document = _documents.get(key)
    if document is None:
        if len(_documents) >= MAX_DOCUMENTS:
            _documents.clear()
        document = _documents[key] = definition_document(definition)
    return document


def pathway_diagram(
    definition: PathwayDefinition, *, state: str, visited: frozenset[str], language: str
) -> str:
    """The definition's diagram with `state` highlighted and `visited` shown as visited."""
    return _diagram(definition.pk, definition.checksum, state, visited - {state}, language)


@lru_cache(maxsize=512)
def _diagram(
    definition_id: int, checksum: str, state: str, visited: frozenset[str], language: str
) -> str:
    document = _documents.get((definition_id, checksum))
    if document is None:
        document = pathway_document(definition_get_by_id(definition_id))
    return render_definition_svg(
        document, current_state=state, visited_states=set(visited), language=language
    )


@dataclass(frozen=True)
class NextStepRow:
    step: NextStep
    roles: list[str]  # role labels in the page's language
    due_at: datetime | None  # a pending timer's due time


@dataclass(frozen=True)
class WhereNextView:
    """The "where am I / what next" summary above a pathway's diagram."""

    title: str
    final: bool
    steps: list[NextStepRow]


def pathway_where_next(instance: PathwayInstance, language: str) -> WhereNextView:
    """The current step and the ways out of it, with the pending timers' due times (the
    scheduled timers of the instance, read here: one query)."""
    summary = where_next(pathway_document(instance.definition), instance.state, language=language)
    due = {
        timer.event: timer.due_at
        for timer in instance_timers(instance_id=instance.pk, status=Timer.Status.SCHEDULED)
    }
    definition = instance_definition(instance)
    rows = [
        NextStepRow(
            step,
            [role_title(role, language, definition) for role in step.roles],
            due.get(step.event),
        )
        for step in summary.steps
    ]
    return WhereNextView(summary.title, summary.final, rows)
