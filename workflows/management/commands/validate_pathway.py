"""`python manage.py validate_pathway FILE...`: exit 0 if every file is valid; otherwise exit 1
and print one line per problem, `FILE: location: message`. Warnings (a state that leaves a
monitored measurement unwatched) are printed as `FILE: warning: location: message` and do not
change the exit status."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser, no_translations

from workflows.definition import Problem, validate_source


def read_and_validate(filename: str) -> list[Problem]:
    return read_and_check(filename)[0]


def read_and_check(filename: str) -> tuple[list[Problem], list[Problem]]:
    """The file's problems and its warnings (warnings only for a valid document)."""
    path = Path(filename)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [Problem("(file)", "no such file")], []
    except IsADirectoryError:
        return [Problem("(file)", "is a directory, not a pathway file")], []
    except UnicodeDecodeError as exc:
        return [Problem("(file)", f"not UTF-8 text: {exc.reason} at byte {exc.start}")], []
    except OSError as exc:
        return [Problem("(file)", f"cannot be read: {exc.strerror}")], []
    result = validate_source(text, filename=filename)
    return result.problems, result.warnings


class Command(BaseCommand):
    help = "Validate pathway definition files (YAML or JSON) and report every problem."
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", metavar="FILE")

    @no_translations  # output in English, like the rest of the command's lines
    def handle(self, *args: Any, **options: Any) -> None:
        failed = False
        for filename in options["files"]:
            problems, warnings = read_and_check(filename)
            failed = failed or bool(problems)
            for problem in problems:
                self.stdout.write(problem.format(filename))
            for warning in warnings:
                self.stdout.write(warning.format(f"{filename}: warning"))
        if failed:
            sys.exit(1)
