"""`python manage.py platform_client_create SLUG --name NAME --organization ID --scope S...`

Creates a platform's service account and its OAuth2 client-credentials application, and
prints the client id and secret: the secret is stored hashed and is never shown again.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from api.services.platforms import known_scopes, platform_client_create
from core.errors import Conflict, InvalidInput, NotFound
from directory.selectors import organization_get


class Command(BaseCommand):
    help = "Create a platform service account with OAuth2 client credentials (shown once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="short name: the account is platform-<slug>")
        parser.add_argument("--name", required=True, help="the platform's display name")
        parser.add_argument("--organization", type=int, required=True, help="organisation id")
        parser.add_argument(
            "--scope",
            action="append",
            required=True,
            dest="scopes",
            help=f"repeat for each scope; one of: {', '.join(sorted(known_scopes()))}",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            organization = organization_get(organization_id=options["organization"])
            client = platform_client_create(
                slug=options["slug"],
                name=options["name"],
                organization=organization,
                scopes=options["scopes"],
                actor=None,
            )
        except (InvalidInput, Conflict, NotFound) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"account: {client.account.user.get_username()}")
        self.stdout.write(f"practitioner id (add it to care teams): {client.practitioner.pk}")
        self.stdout.write(f"scopes: {' '.join(client.account.scopes)}")
        self.stdout.write(f"client_id: {client.client_id}")
        self.stdout.write(f"client_secret: {client.client_secret}")
        self.stdout.write("The secret is stored hashed: keep it now, it is not shown again.")
