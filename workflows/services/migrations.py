"""Moving running instances from one version of a pathway to another.

A migration is explicit and previewable: `dry_run=True` returns the plan (each instance's old
and new state, and every instance that cannot be mapped) and writes nothing. Applying it is
all or nothing: if any instance cannot be mapped, nothing moves.

An instance mapped to a state of the same name stays in it: its `on_enter` actions do not run
again (the patient did not go anywhere); its scheduled timers are kept when the new version
still handles their event automatically, and cancelled otherwise. An instance mapped to a
state of another name leaves its old state (exit hooks run: coordination cancels its open
tasks; its timers are cancelled) and enters the new one (timers scheduled, tasks opened),
as a transition would.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from workflows import actions
from workflows.actors import Actor
from workflows.errors import MigrationRefused
from workflows.models import HistoryEntry, PathwayInstance, Timer
from workflows.selectors import compiled_definition, definition_get, lock_instance
from workflows.services.instances import instance_enter

Status = PathwayInstance.Status


@dataclass(frozen=True)
class PlannedMove:
    instance_id: int
    old_state: str
    new_state: str | None  # None: cannot be mapped

    @property
    def mapped(self) -> bool:
        return self.new_state is not None


@dataclass
class MigrationPlan:
    key: str
    from_version: int
    to_version: int
    moves: list[PlannedMove] = field(default_factory=list)
    applied: bool = False

    @property
    def unmapped(self) -> list[PlannedMove]:
        return [m for m in self.moves if not m.mapped]


def instances_migrate(
    *,
    key: str,
    from_version: int,
    to_version: int,
    state_map: Mapping[str, str],
    actor: Actor,
    dry_run: bool = True,
    now: dt.datetime | None = None,
) -> MigrationPlan:
    """Plan, and unless `dry_run`, apply the migration of every active or suspended instance
    of `key@from_version` to `key@to_version`.

    A state absent from `state_map` keeps its name if the new version has a state of that
    name. Raises MigrationRefused for a bad map or, when applying, for unmappable instances.
    """
    if from_version == to_version:
        raise MigrationRefused(
            _("nothing to migrate"),
            [_("both versions are %(version)s") % {"version": from_version}],
        )
    old_def = definition_get(key=key, version=from_version)
    new_def = definition_get(key=key, version=to_version)
    if new_def.status != new_def.Status.ACTIVE:
        raise MigrationRefused(
            _("cannot migrate"),
            [
                _("%(definition)s is %(status)s; migrate only to an active version")
                % {"definition": new_def, "status": new_def.status}
            ],
        )
    old, new = compiled_definition(old_def), compiled_definition(new_def)
    map_problems = [
        _("state_map: %(source)s is not a state of version %(version)s")
        % {"source": repr(source), "version": from_version}
        for source in state_map
        if source not in old.states
    ] + [
        _("state_map: %(source)s -> %(target)s: %(target)s is not a state of version %(version)s")
        % {"source": repr(source), "target": repr(target), "version": to_version}
        for source, target in state_map.items()
        if target not in new.states
    ]
    if map_problems:
        raise MigrationRefused(_("invalid state map"), map_problems)

    plan = MigrationPlan(key, from_version, to_version)
    running = (
        PathwayInstance.objects.filter(
            definition=old_def, status__in=[Status.ACTIVE, Status.SUSPENDED]
        )
        .order_by("id")
        .values_list("id", "state")
    )
    for instance_id, state in running:
        mapped = state_map.get(state, state if state in new.states else None)
        plan.moves.append(PlannedMove(instance_id, state, mapped))
    if dry_run:
        return plan
    if plan.unmapped:
        raise MigrationRefused(
            _("some instances cannot be mapped; nothing was migrated"),
            [
                _("instance %(id)s in state %(state)s")
                % {"id": m.instance_id, "state": repr(m.old_state)}
                for m in plan.unmapped
            ],
        )

    now = now or timezone.now()
    with transaction.atomic():
        for move in plan.moves:
            instance = lock_instance(instance_id=move.instance_id)
            if (
                instance.definition_id != old_def.pk
                or instance.state != move.old_state
                or instance.status not in (Status.ACTIVE, Status.SUSPENDED)
            ):
                raise MigrationRefused(
                    _("an instance changed while migrating; nothing was migrated, retry"),
                    [
                        _("instance %(id)s is now %(status)s in %(state)s")
                        % {
                            "id": instance.pk,
                            "status": instance.status,
                            "state": repr(instance.state),
                        }
                    ],
                )
            assert move.new_state is not None
            source, target = old.state(move.old_state), new.state(move.new_state)
            renamed = source.name != target.name
            scheduled = Timer.objects.filter(instance=instance, status=Timer.Status.SCHEDULED)
            if renamed:
                scheduled.update(
                    status=Timer.Status.CANCELLED, resolved_at=now, note="version migration"
                )
                if actions.has_exit_hooks():
                    change = actions.StateChange(instance, old, source, None, actor, now)
                    actions.run_exit_hooks(change, source)
            else:
                automatic = {e for e, t in target.transitions.items() if not t.manual}
                scheduled.exclude(event__in=automatic).update(
                    status=Timer.Status.CANCELLED, resolved_at=now, note="version migration"
                )
            instance.definition = new_def
            instance.state = target.name
            instance.revision += 1
            instance.updated_at = now
            fields = ["definition", "state", "revision", "updated_at"]
            if target.final:
                instance.status, instance.ended_at = Status.COMPLETED, now
                fields += ["status", "ended_at"]
            instance.save(update_fields=fields)
            entry = HistoryEntry.objects.create(
                instance=instance,
                revision=instance.revision,
                kind=HistoryEntry.Kind.MIGRATION,
                event="migrate",
                from_state=move.old_state,
                to_state=target.name,
                actor=actor.id,
                actor_roles=sorted(actor.roles),
                payload={"from": f"{key}@{from_version}", "to": f"{key}@{to_version}"},
                occurred_at=now,
            )
            actions.run_move_hooks(actions.StateChange(instance, new, target, entry, actor, now))
            if renamed:
                instance_enter(instance, new, target, entry, actor, now)
    plan.applied = True
    return plan
