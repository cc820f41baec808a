"""`python manage.py seed_demo`: synthetic demo data. Idempotent: running it twice changes
nothing the second time.

Today it publishes the shipped pathway library; demo practitioners, patients and running
pathways arrive with the care-coordination models.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from workflows.actors import Actor
from workflows.services import definition_publish
from workflows.shipped import library_files


class Command(BaseCommand):
    help = "Load synthetic demo data (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor(id="cli:seed_demo")
        with transaction.atomic():
            for path in library_files():
                result = definition_publish(
                    source=path.read_text(encoding="utf-8"), actor=actor, filename=path.name
                )
                state = "published" if result.created else "already published"
                self.stdout.write(f"pathway {result.definition}: {state}")
