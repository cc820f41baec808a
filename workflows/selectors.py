"""Reads of definitions, instances and history. The engine knows no users: permission
filtering happens in coordination, whose selectors wrap these."""

from __future__ import annotations

import json
from typing import Any, cast

from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from core.sql import column, kept_cursor, statement, table
from workflows.actors import Actor
from workflows.definition.compiled import CompiledDefinition, TransitionSpec, compile_document
from workflows.definition.parsing import Format, parse_source
from workflows.diagrams import render_definition_svg
from workflows.errors import NotFound
from workflows.models import HistoryEntry, PathwayDefinition, PathwayInstance, Timer

# Immutable content, so caching by (id, checksum) is always correct; the checksum guards
# against ids reused after a rolled-back transaction (tests) or a restored database.
_compiled_cache: dict[tuple[int, str], CompiledDefinition] = {}


def definition_document(definition: PathwayDefinition) -> dict[str, Any]:
    """The document in its authored order.

    The `document` column is for queries only: PostgreSQL's jsonb does not keep key order,
    and the order of states and transitions is the author's (lists, diagrams, menus).
    """
    parsed = parse_source(definition.source, cast(Format, definition.source_format))
    assert isinstance(parsed.document, dict), "a stored definition always parses"
    return parsed.document


def compiled_definition(definition: PathwayDefinition) -> CompiledDefinition:
    key = (definition.pk, definition.checksum)
    compiled = _compiled_cache.get(key)
    if compiled is None:
        if len(_compiled_cache) > 1024:
            _compiled_cache.clear()
        compiled = _compiled_cache[key] = compile_document(definition_document(definition))
    return compiled


def compiled_definition_by_id(definition_id: int, checksum: str) -> CompiledDefinition:
    compiled = _compiled_cache.get((definition_id, checksum))
    if compiled is not None:
        return compiled
    return compiled_definition(definition_get_by_id(definition_id))


def definition_list(
    *, key: str | None = None, status: str | None = None
) -> QuerySet[PathwayDefinition]:
    qs = PathwayDefinition.objects.defer("source", "document")
    if key is not None:
        qs = qs.filter(key=key)
    if status is not None:
        qs = qs.filter(status=status)
    return qs.order_by("key", "-version")


def definition_get(*, key: str, version: int) -> PathwayDefinition:
    try:
        return PathwayDefinition.objects.get(key=key, version=version)
    except PathwayDefinition.DoesNotExist:
        raise NotFound(
            _("no pathway definition %(key)s@%(version)s") % {"key": key, "version": version}
        ) from None


def definition_get_by_id(definition_id: int) -> PathwayDefinition:
    try:
        return PathwayDefinition.objects.get(pk=definition_id)
    except PathwayDefinition.DoesNotExist:
        raise NotFound(_("no pathway definition with id %(id)s") % {"id": definition_id}) from None


def definition_latest_active(*, key: str) -> PathwayDefinition:
    definition = (
        PathwayDefinition.objects.filter(key=key, status=PathwayDefinition.Status.ACTIVE)
        .order_by("-version")
        .first()
    )
    if definition is None:
        raise NotFound(_("no active version of pathway %(key)s") % {"key": repr(key)})
    return definition


def instance_get(*, instance_id: int) -> PathwayInstance:
    try:
        return PathwayInstance.objects.select_related("definition").get(pk=instance_id)
    except PathwayInstance.DoesNotExist:
        raise NotFound(_("no pathway instance with id %(id)s") % {"id": instance_id}) from None


# The order of PathwayInstance's columns: `from_db` takes a full row as is.
_LOCK_FIELDS = [
    "id",
    "definition_id",
    "state",
    "status",
    "subject",
    "context",
    "revision",
    "started_at",
    "updated_at",
    "ended_at",
]


def lock_instance(*, instance_id: int) -> PathwayInstance:
    """The instance row, locked FOR UPDATE until the end of the caller's transaction.

    Only the columns the engine needs are read, plus the definition's checksum for the cache:
    fetching the definition's document on every transition would dominate its cost. On
    PostgreSQL the statement is written out, not compiled by the ORM each time: it is on the
    path of every transition, and compiling it cost more than running it.
    """
    if connection.vendor != "postgresql":
        try:
            return (
                PathwayInstance.objects.select_for_update()
                .select_related("definition")
                .only(*_LOCK_FIELDS[2:], "definition__id", "definition__checksum")
                .get(pk=instance_id)
            )
        except PathwayInstance.DoesNotExist:
            raise NotFound(_("no pathway instance with id %(id)s") % {"id": instance_id}) from None
    with kept_cursor(prepared=True) as cursor:
        cursor.execute(_lock_statement(), [instance_id], prepare=True)
        row = cursor.fetchone()
    if row is None:
        raise NotFound(_("no pathway instance with id %(id)s") % {"id": instance_id})
    values = list(row)
    checksum = values.pop()
    if isinstance(values[_CONTEXT], str):  # Django loads jsonb as text, then decodes it
        values[_CONTEXT] = json.loads(values[_CONTEXT])
    instance = PathwayInstance.from_db(DEFAULT_DB_ALIAS, _LOCK_FIELDS, values)
    definition = PathwayDefinition.from_db(DEFAULT_DB_ALIAS, _DEFINITION_FIELDS, [row[1], checksum])
    _instance_definition_field.set_cached_value(instance, definition)
    return instance


_CONTEXT = _LOCK_FIELDS.index("context")
_DEFINITION_FIELDS = ["id", "checksum"]
_instance_definition_field = PathwayInstance.definition.field


@statement
def _lock_statement() -> str:
    """Only quoted names from the models' metadata go into the text."""
    columns = ", ".join(f"i.{column(PathwayInstance, name)}" for name in _LOCK_FIELDS)
    definition, checksum = column(PathwayDefinition, "pk"), column(PathwayDefinition, "checksum")
    return (
        f"SELECT {columns}, d.{checksum} FROM {table(PathwayInstance)} i "
        f"JOIN {table(PathwayDefinition)} d "
        f"ON d.{definition} = i.{column(PathwayInstance, 'definition')} "
        f"WHERE i.{column(PathwayInstance, 'pk')} = %s FOR UPDATE OF i"
    )


def instance_definition(instance: PathwayInstance) -> CompiledDefinition:
    return compiled_definition_by_id(instance.definition_id, instance.definition.checksum)


def instance_history(*, instance_id: int) -> QuerySet[HistoryEntry]:
    return HistoryEntry.objects.filter(instance_id=instance_id).order_by("revision")


def instance_timers(*, instance_id: int, status: str | None = None) -> QuerySet[Timer]:
    qs = Timer.objects.filter(instance_id=instance_id)
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("due_at", "id")


def available_transitions(instance: PathwayInstance, actor: Actor) -> list[TransitionSpec]:
    """Events `actor` may fire now, by state and role. Guards depend on the payload and are
    checked when the event is fired."""
    if instance.status != PathwayInstance.Status.ACTIVE:
        return []
    state = instance_definition(instance).state(instance.state)
    return [
        t
        for t in state.transitions.values()
        if actor.is_system or (t.manual and t.roles & actor.roles)
    ]


def instance_diagram_svg(instance: PathwayInstance, *, language: str = "en") -> str:
    """The instance's definition with its current state highlighted and the states it went
    through shown as visited."""
    visited = set(
        HistoryEntry.objects.filter(instance_id=instance.pk).values_list("to_state", flat=True)
    )
    return render_definition_svg(
        definition_document(instance.definition),
        current_state=instance.state,
        visited_states=visited - {instance.state},
        language=language,
    )
