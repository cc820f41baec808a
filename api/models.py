"""What only the API needs: idempotency records, platform accounts, personal API tokens.

The tables keep the names they had when these models were coordination's (db_table)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from knox.models import AbstractAuthToken

from directory.models import Organization


class IdempotencyRecord(models.Model):
    """The first response to a POST sent with an `Idempotency-Key`, replayed to retries.

    `owner` is who sent it (a user or an OAuth client); `fingerprint` is a hash of the method,
    path and body, so reusing a key for another request is refused rather than replayed.
    """

    owner = models.CharField(max_length=150)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    body = models.JSONField(null=True, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "coordination_idempotencyrecord"
        constraints = [
            models.UniqueConstraint(fields=["owner", "key"], name="idempotency_owner_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.owner}:{self.key}"


class PlatformAccount(models.Model):
    """The service account of a regional health platform calling the API with OAuth2 client
    credentials. Its `user` is the OAuth application's user and the actor of everything the
    platform does; it also has a practitioner profile (profession "other") so that it can be
    a member of a care team, in the role `platform`: that membership, and nothing else, is
    what lets the platform see a patient. `scopes` are the most its tokens may carry."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="platform_account"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="platform_accounts"
    )
    scopes = models.JSONField(_("OAuth scopes"), default=list)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "coordination_platformaccount"

    def __str__(self) -> str:
        return f"platform account {self.user_id} of organisation {self.organization_id}"


class ApiToken(AbstractAuthToken):
    """A personal API token (django-rest-knox), for a user's scripts: stored as a digest, the
    token itself is shown once when it is created. A user may hold several, each named;
    revoking deletes the row (knox's model of revocation)."""

    # Annotated: the untyped knox base hides the fields from django-stubs' plugin.
    name: models.CharField[str, str] = models.CharField(_("name"), max_length=100)
    last_used_at: models.DateTimeField[dt.datetime | None, dt.datetime | None] = (
        models.DateTimeField(null=True, blank=True)
    )
    # Chosen at creation: whether requests made with this token may create other tokens
    # (none outliving it). Off unless asked for.
    can_create_tokens: models.BooleanField[bool, bool] = models.BooleanField(
        _("may create tokens"), default=False
    )

    class Meta:
        db_table = "coordination_apitoken"
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="api_token_user_name_unique")
        ]

    def __str__(self) -> str:
        return f"API token {self.name!r} of user {self.user_id}"
