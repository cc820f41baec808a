"""Personal API tokens for scripts, on django-rest-knox.

A user holds several named tokens. The token is returned once by `api_token_create` and
stored only as its SHA-512 digest (knox); it expires (REST_KNOX["TOKEN_TTL"] unless another
lifetime is given) and is revoked by deleting it. A token acts as its user, with exactly
that user's access: no scopes of its own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from coordination.errors import Conflict, InvalidInput, NotFound, Problem
from coordination.models import ApiToken

MAX_NAME = 100
MAX_TOKENS_PER_USER = 20
MAX_LIFETIME = dt.timedelta(days=366)


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    secret: str  # the full token, "pct_..."; never readable again


def api_token_create(
    *, user: AbstractBaseUser, name: str, actor: AbstractBaseUser, lifetime: dt.timedelta | None
) -> CreatedToken:
    """A new token for `user` (who must be `actor`: nobody mints tokens for someone else).
    `lifetime` None means the default (REST_KNOX["TOKEN_TTL"]); at most a year. Raises
    InvalidInput (name, lifetime), Conflict (name already used by one of the user's tokens,
    or too many tokens)."""
    name = " ".join(name.split())
    problems = []
    if not name:
        problems.append(Problem("name", "required"))
    elif len(name) > MAX_NAME:
        problems.append(Problem("name", f"longer than {MAX_NAME} characters"))
    if lifetime is not None and not dt.timedelta(0) < lifetime <= MAX_LIFETIME:
        problems.append(Problem("lifetime", f"between one second and {MAX_LIFETIME.days} days"))
    if problems:
        raise InvalidInput(problems)
    if actor.pk != user.pk:
        raise InvalidInput([Problem("user", "a token is created by its own user")])
    with transaction.atomic():
        # Serialises a user's token creations: the count and the name check hold.
        type(user)._default_manager.select_for_update().filter(pk=user.pk).first()
        mine = ApiToken.objects.filter(user_id=user.pk)
        if mine.filter(name=name).exists():
            raise Conflict(f"you already have a token named {name!r}")
        if mine.count() >= MAX_TOKENS_PER_USER:
            raise Conflict(f"at most {MAX_TOKENS_PER_USER} tokens per user: revoke one first")
        kwargs = {} if lifetime is None else {"expiry": lifetime}
        token, secret = ApiToken.objects.create(user=user, name=name, **kwargs)
    return CreatedToken(token, secret)


def api_token_revoke(*, user: AbstractBaseUser, token_id: str, actor: AbstractBaseUser) -> None:
    """Revoke one of `user`'s tokens (by its public id, the first characters of the token);
    effective at once. NotFound for a token that is not the user's, as for a missing one."""
    if actor.pk != user.pk:
        raise NotFound("API token", token_id)
    with transaction.atomic():
        deleted, _ = ApiToken.objects.filter(user_id=user.pk, token_key=token_id).delete()
    if not deleted:
        raise NotFound("API token", token_id)


def api_token_touch(*, token: ApiToken, now: dt.datetime | None = None) -> None:
    """Record that the token was just used."""
    token.last_used_at = now or timezone.now()
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=token.last_used_at)
