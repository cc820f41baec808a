"""`python manage.py onboard --organization NAME --coordinator USERNAME --email E ...`

An operator's first day, in one command and without a Python shell: an organisation, its
first care coordinator (with the rights a coordinator needs, through the `coordinators`
group) and, with `--platform SLUG --scope ...`, a platform's service account with OAuth2
client credentials. Everything goes through the services (their validation and audit), in
one transaction: nothing is created when any part is refused. The coordinator's password and
the platform's secret are printed once.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from api.services.platforms import known_scopes, platform_client_create
from core.errors import DomainError
from directory.models import Organization, Practitioner
from directory.services import organization_create, practitioner_create
from directory.services.roles import coordinator_role_grant


class Command(BaseCommand):
    help = "Create an organisation, its first care coordinator and, optionally, a platform."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--organization", required=True, help="the organisation's name")
        parser.add_argument(
            "--kind",
            default=Organization.Kind.values[0],
            choices=Organization.Kind.values,
            help="the organisation's kind",
        )
        parser.add_argument("--finess", default="", help="its FINESS number (9 characters)")
        parser.add_argument("--coordinator", required=True, help="the coordinator's username")
        parser.add_argument("--email", required=True, help="the coordinator's e-mail address")
        parser.add_argument("--given-name", default="", help="the coordinator's given name")
        parser.add_argument("--family-name", default="", help="the coordinator's family name")
        parser.add_argument("--platform", help="also create a platform: its short name (slug)")
        parser.add_argument("--platform-name", help="the platform's display name")
        parser.add_argument(
            "--scope",
            action="append",
            default=[],
            dest="scopes",
            help=f"the platform's scopes, repeated; one of: {', '.join(sorted(known_scopes()))}",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["platform"] and not options["scopes"]:
            raise CommandError("--platform needs at least one --scope")
        password = secrets.token_urlsafe(12)
        try:
            with transaction.atomic():
                organization = organization_create(
                    name=options["organization"],
                    kind=options["kind"],
                    finess=options["finess"],
                    actor=None,
                )
                coordinator = practitioner_create(
                    username=options["coordinator"],
                    given_name=options["given_name"],
                    family_name=options["family_name"],
                    profession=Practitioner.Profession.COORDINATOR,
                    email=options["email"],
                    organization=organization,
                    password=password,
                    actor=None,
                )
                coordinator_role_grant(user=coordinator.user)
                client = None
                if options["platform"]:
                    client = platform_client_create(
                        slug=options["platform"],
                        name=options["platform_name"] or options["platform"],
                        organization=organization,
                        scopes=options["scopes"],
                        actor=None,
                    )
        except DomainError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"organisation id: {organization.pk}")
        self.stdout.write(f"coordinator: {coordinator.user.get_username()}")
        self.stdout.write(f"coordinator's password: {password}")
        self.stdout.write(
            "  (shown once: the coordinator changes it at /password/ after logging in)"
        )
        if client is not None:
            self.stdout.write(f"platform account: {client.account.user.get_username()}")
            self.stdout.write(f"platform practitioner id: {client.practitioner.pk}")
            self.stdout.write(f"client_id: {client.client_id}")
            self.stdout.write(f"client_secret: {client.client_secret}")
            self.stdout.write("  (the secret is stored hashed: keep it now, it is not shown again)")
