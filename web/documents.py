"""Pathway documents and diagrams as the pages show them, kept in memory.

A stored definition never changes under its (id, checksum), but reading its document means
parsing its YAML source and drawing a diagram means laying the states out: both far slower
than the rest of a page. Pages read them through here, once per process and definition (and
per current state, visited states and language for a diagram). The documents are shared:
callers must not modify them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from workflows.diagrams import render_definition_svg
from workflows.selectors import definition_document, definition_get_by_id

if TYPE_CHECKING:
    from workflows.models import PathwayDefinition

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
