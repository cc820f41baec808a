"""Platform service accounts: a regional health platform calling the API with OAuth2 client
credentials.

A platform is a user with an unusable password (it cannot sign in to the web), a practitioner
profile of profession "other" in its organisation, a PlatformAccount recording the most its
tokens may carry (scopes), and one confidential OAuth application with the client-credentials
grant whose user it is. Tokens issued to that application act as that user
(api.authentication.PlatformOAuth2Authentication).

What a platform sees is least-privilege and explicit: nothing until someone adds its
practitioner profile to a patient's care team (conventionally in the role `platform`); then
exactly what any care-team member sees of that patient, within its scopes. Pathway roles
never include `platform` unless a definition says so, so a platform fires no human
transition by default.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import get_application_model

from api.models import PlatformAccount
from core.errors import Conflict, InvalidInput, Problem
from directory.models import Organization, Practitioner
from directory.services.accounts import account_deactivate
from directory.services.organisations import User, practitioner_create
from patients.models import AuditEvent
from patients.services import audit_record

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


@dataclass(frozen=True)
class PlatformClient:
    """The credentials of a new platform. `client_secret` is stored hashed: this is the only
    place it is ever readable."""

    account: PlatformAccount
    practitioner: Practitioner
    client_id: str
    client_secret: str


def known_scopes() -> frozenset[str]:
    scopes = cast(dict[str, str], settings.OAUTH2_PROVIDER["SCOPES"])
    return frozenset(scopes)


def platform_client_create(
    *,
    slug: str,
    name: str,
    organization: Organization,
    scopes: Iterable[str],
    actor: AbstractBaseUser | None,
) -> PlatformClient:
    """Create the service account and its OAuth application; returns the client id and the
    secret, once. `slug` names the account (`platform-<slug>`); refused with Conflict when
    taken. Raises InvalidInput (bad slug, empty name, unknown or no scope) before writing."""
    wanted = sorted(set(scopes))
    problems = []
    if not _SLUG.match(slug):
        problems.append(Problem("slug", "lower-case letters, digits and '-', 2 to 63 characters"))
    if not name.strip():
        problems.append(Problem("name", "required"))
    unknown = [s for s in wanted if s not in known_scopes()]
    if unknown:
        problems.append(Problem("scopes", f"unknown: {', '.join(unknown)}"))
    if not wanted:
        problems.append(Problem("scopes", "give at least one scope"))
    if problems:
        raise InvalidInput(problems)
    username = f"platform-{slug}"
    secret = generate_client_secret()
    with transaction.atomic():
        if User.objects.filter(username=username).exists():
            raise Conflict(f"a platform account {username!r} already exists")
        # No password: a platform authenticates with its client credentials only.
        practitioner = practitioner_create(
            username=username,
            given_name="",
            family_name=name.strip(),
            profession=Practitioner.Profession.OTHER,
            organization=organization,
            actor=actor,
        )
        account = PlatformAccount.objects.create(
            user=practitioner.user,
            organization=organization,
            scopes=wanted,
            created_at=timezone.now(),
        )
        application_model = get_application_model()
        application = application_model.objects.create(
            name=name.strip()[:255],
            user=practitioner.user,
            client_type=application_model.CLIENT_CONFIDENTIAL,
            authorization_grant_type=application_model.GRANT_CLIENT_CREDENTIALS,
            client_secret=secret,
            hash_client_secret=True,
            redirect_uris="",
        )
    return PlatformClient(account, practitioner, application.client_id, secret)


def platform_client_disable(*, account: PlatformAccount, actor: AbstractBaseUser | None) -> None:
    """Stop a platform at once: its service account is deactivated and its tokens revoked
    (directory.services.accounts.account_deactivate)."""
    account_deactivate(user_id=account.user_id, actor=actor)


def token_issued_record(*, client_id: str, client_address: str | None) -> None:
    """The audit record of an access token issued to a platform's client (a platform's
    login): its service account as the actor, the client id in the detail."""
    application = (
        get_application_model().objects.select_related("user").filter(client_id=client_id).first()
    )
    owner = application.user if application is not None else None
    audit_record(
        actor=owner,
        action=AuditEvent.Action.LOGIN,
        resource_type="OAuthClient",
        resource_id=client_id,
        purpose=AuditEvent.Purpose.ADMINISTRATION,
        entry_point=AuditEvent.EntryPoint.REST,
        client_address=client_address,
        detail={"client_id": client_id, "grant_type": "client_credentials"},
    )
