"""`python manage.py load_pathway FILE...`: validate and publish (activate) pathway files.

All files are validated first; if any has a problem, nothing is loaded and the problems are
printed like validate_pathway does (exit 1). Publishing identical content again is a no-op.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser, no_translations
from django.db import transaction

from workflows.actors import Actor
from workflows.errors import DefinitionConflict
from workflows.management.commands.validate_pathway import read_and_validate
from workflows.services import definition_publish, definition_upload


class Command(BaseCommand):
    help = "Validate and publish pathway definition files."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", metavar="FILE")
        parser.add_argument(
            "--draft", action="store_true", help="store as drafts without activating them"
        )

    @no_translations  # output in English, like the rest of the command's lines
    def handle(self, *args: Any, **options: Any) -> None:
        files: list[str] = options["files"]
        problems = {name: read_and_validate(name) for name in files}
        if any(problems.values()):
            for name, found in problems.items():
                for problem in found:
                    self.stdout.write(problem.format(name))
            self.stderr.write("nothing loaded")
            sys.exit(1)
        actor = Actor(id="cli:load_pathway")
        report: list[str] = []  # printed once the transaction has committed
        name = ""
        try:
            with transaction.atomic():
                for name in files:
                    source = Path(name).read_text(encoding="utf-8")
                    if options["draft"]:
                        upload = definition_upload(source=source, actor=actor, filename=name)
                        verb = "stored as draft" if upload.changed else "unchanged"
                        report.append(f"{name}: {upload.definition} {verb}")
                        continue
                    result = definition_publish(source=source, actor=actor, filename=name)
                    verb = (
                        "published"
                        if result.created
                        else ("activated" if result.activated else "already published")
                    )
                    report.append(f"{name}: {result.definition} {verb}")
        except DefinitionConflict as exc:
            self.stdout.write(f"{name}: (document): {exc}")
            self.stderr.write("nothing loaded")
            sys.exit(1)
        for line in report:
            self.stdout.write(line)
