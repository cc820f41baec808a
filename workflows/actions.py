"""The registry of `on_enter` action handlers and state-exit hooks.

The engine schedules `timer` actions itself. Other action kinds are handled by the app that
owns them: coordination registers the `task` handler from its AppConfig.ready(). Handlers run
inside the engine's transaction, after the instance row has been updated and the history
entry written, so whatever they write commits or rolls back with the transition.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workflows.actors import Actor
from workflows.definition.compiled import CompiledDefinition, StateSpec, TaskAction
from workflows.errors import ActionNotRegistered

if TYPE_CHECKING:
    from workflows.models import HistoryEntry, PathwayInstance


@dataclass(frozen=True)
class StateChange:
    """What handlers and hooks are told about the change being recorded."""

    instance: PathwayInstance
    definition: CompiledDefinition
    state: StateSpec
    entry: HistoryEntry | None  # the entry recording the change; None for exit hooks
    actor: Actor
    at: dt.datetime


TaskHandler = Callable[[StateChange, TaskAction], None]
ExitHook = Callable[[StateChange, StateSpec], None]
MoveHook = Callable[[StateChange], None]

_task_handlers: dict[str, TaskHandler] = {}
_exit_hooks: dict[str, ExitHook] = {}
_move_hooks: dict[str, MoveHook] = {}


def register_task_handler(name: str, handler: TaskHandler) -> None:
    """Install the handler of `task` actions. One per process; `name` identifies its owner."""
    _task_handlers.clear()
    _task_handlers[name] = handler


def register_exit_hook(name: str, hook: ExitHook) -> None:
    """Run `hook(change, left_state)` whenever an instance leaves a state (or is cancelled)."""
    _exit_hooks[name] = hook


def register_move_hook(name: str, hook: MoveHook) -> None:
    """Run `hook(change)` whenever an instance moves to another state (a person's event, a
    timer, `tasks_completed`), after the history entry is written and before the new state's
    tasks open; `change.state` is the state entered and `change.entry` the entry recording
    the move. Coordination records its outbox event here."""
    _move_hooks[name] = hook


def run_move_hooks(change: StateChange) -> None:
    for hook in list(_move_hooks.values()):
        hook(change)


def snapshot() -> tuple[dict[str, TaskHandler], dict[str, ExitHook]]:
    """The current registrations, to restore later (tests swap handlers in and out)."""
    return dict(_task_handlers), dict(_exit_hooks)


def restore(saved: tuple[dict[str, TaskHandler], dict[str, ExitHook]]) -> None:
    _task_handlers.clear()
    _task_handlers.update(saved[0])
    _exit_hooks.clear()
    _exit_hooks.update(saved[1])


def unregister(name: str) -> None:
    _task_handlers.pop(name, None)
    _exit_hooks.pop(name, None)
    _move_hooks.pop(name, None)


def run_task_action(change: StateChange, action: TaskAction) -> None:
    if not _task_handlers:
        raise ActionNotRegistered(
            f"state {change.state.name!r} opens task {action.code!r} but no app handles "
            "'task' actions (is coordination installed?)"
        )
    next(iter(_task_handlers.values()))(change, action)


def has_exit_hooks() -> bool:
    return bool(_exit_hooks)


def run_exit_hooks(change: StateChange, left: StateSpec) -> None:
    for hook in list(_exit_hooks.values()):
        hook(change, left)
