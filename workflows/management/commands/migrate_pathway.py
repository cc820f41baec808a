"""`python manage.py migrate_pathway KEY FROM TO [--map OLD=NEW ...] [--apply]`

Moves the running instances of KEY@FROM to KEY@TO. Without --apply it is a dry run: it prints
each instance's old and new state and every instance that cannot be mapped, and writes nothing.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, no_translations

from workflows.actors import Actor
from workflows.errors import MigrationRefused, NotFound
from workflows.services import instances_migrate


def parse_map(pairs: list[str]) -> dict[str, str]:
    state_map: dict[str, str] = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep or not old or not new:
            raise CommandError(f"--map expects OLD=NEW, got {pair!r}")
        state_map[old.strip()] = new.strip()
    return state_map


class Command(BaseCommand):
    help = "Migrate running pathway instances to another version (dry run unless --apply)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key")
        parser.add_argument("from_version", type=int)
        parser.add_argument("to_version", type=int)
        parser.add_argument(
            "--map", action="append", default=[], metavar="OLD=NEW", help="state map entry"
        )
        parser.add_argument("--apply", action="store_true", help="migrate (default: dry run)")

    @no_translations  # output in English, like the rest of the command's lines
    def handle(self, *args: Any, **options: Any) -> None:
        try:
            plan = instances_migrate(
                key=options["key"],
                from_version=options["from_version"],
                to_version=options["to_version"],
                state_map=parse_map(options["map"]),
                actor=Actor(id="cli:migrate_pathway"),
                dry_run=not options["apply"],
            )
        except (MigrationRefused, NotFound) as exc:
            problems = getattr(exc, "problems", [])
            self.stdout.write(f"refused: {exc}" if not problems else "refused:")
            for problem in problems:
                self.stdout.write(f"  {problem}")
            sys.exit(1)
        for move in plan.moves:
            target = move.new_state or "(cannot be mapped)"
            self.stdout.write(f"instance {move.instance_id}: {move.old_state} -> {target}")
        summary = f"{len(plan.moves)} instance(s), {len(plan.unmapped)} cannot be mapped"
        self.stdout.write(("migrated: " if plan.applied else "dry run: ") + summary)
        if plan.unmapped:
            sys.exit(1)
