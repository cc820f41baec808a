"""Tasks the system opens outside a state's `on_enter`: an alert's task, a missing measurement,
an escalation. They go through the engine's task handler (`open_task_for_state`), so owner,
offer and permissions follow the same rules as every other task.

They belong to the pathway's current step (cancelled with its other tasks when the pathway
leaves it) but carry no entry revision, so they never hold the step back: `tasks_completed`
counts only the tasks its `on_enter` opened.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from coordination.models import Task
from coordination.selectors.pathways import pathway_id_from_subject
from coordination.services.tasks import open_task_for_state
from workflows.actions import StateChange
from workflows.actors import SYSTEM
from workflows.definition.compiled import CompiledDefinition, StateSpec, TaskAction, Text
from workflows.models import PathwayInstance


def open_system_task(
    *,
    instance: PathwayInstance,
    definition: CompiledDefinition,
    state: StateSpec,
    code: str,
    title: Text,
    role: str,
    priority: str,
    due: str | None,
    now: dt.datetime,
    description: Text | None = None,
) -> Task:
    """Open a task in the instance's current state. The caller holds the instance lock."""
    change = StateChange(
        instance=instance, definition=definition, state=state, entry=None, actor=SYSTEM, at=now
    )
    action = TaskAction(
        code=code, title=title, role=role, due=due, priority=priority, description=description
    )
    open_task_for_state(change, action)
    # The handler returns nothing (the engine ignores results); the newest row is this one
    # since the caller holds the instance lock that every task opening of the pathway takes.
    return Task.objects.filter(
        care_pathway_id=pathway_id_from_subject(instance.subject),
        pathway_state=state.name,
        code=code,
    ).latest("id")


def text_with_prefix(title: object, prefixes: Mapping[str, str]) -> dict[str, str]:
    """`{"en": "Overdue: Call", "fr": "En retard : Appeler"}` from a task title."""
    if isinstance(title, Mapping):
        return {lang: f"{prefixes.get(lang, prefixes['en'])}{text}" for lang, text in title.items()}
    return {lang: f"{prefix}{title}" for lang, prefix in prefixes.items()}
