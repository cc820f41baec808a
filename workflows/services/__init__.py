"""Every write of the engine. See each module for the contracts (locks, idempotency)."""

from workflows.services.definitions import (
    definition_activate,
    definition_publish,
    definition_retire,
    definition_upload,
)
from workflows.services.instances import (
    FireResult,
    instance_cancel,
    instance_fire,
    instance_resume,
    instance_start,
    instance_suspend,
)
from workflows.services.migrations import MigrationPlan, instances_migrate
from workflows.services.timers import TimerSweep, fire_due_timers

__all__ = [
    "FireResult",
    "MigrationPlan",
    "TimerSweep",
    "definition_activate",
    "definition_publish",
    "definition_retire",
    "definition_upload",
    "fire_due_timers",
    "instance_cancel",
    "instance_fire",
    "instance_resume",
    "instance_start",
    "instance_suspend",
    "instances_migrate",
]
