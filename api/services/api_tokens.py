"""Personal API tokens for scripts, on django-rest-knox.

A user holds several named tokens. The token is returned once by `api_token_create` and
stored only as its SHA-512 digest (knox); it expires (REST_KNOX["TOKEN_TTL"] unless another
lifetime is given) and is revoked by deleting it. A token acts as its user, with exactly
that user's access: no scopes of its own.

A token creates other tokens only if it was created for that purpose (`can_create_tokens`,
off by default), and never one that outlives it: a leaked token cannot perpetuate itself.
All of a user's tokens are revoked when the account is deactivated or its password changes
(directory.services.accounts).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext
from knox.settings import knox_settings

from api.models import ApiToken
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound, Problem

MAX_NAME = 100
MAX_TOKENS_PER_USER = 20
MAX_LIFETIME = dt.timedelta(days=366)


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    secret: str  # the full token, "pct_..."; never readable again


def api_token_create(
    *,
    user: AbstractBaseUser,
    name: str,
    actor: AbstractBaseUser,
    lifetime: dt.timedelta | None,
    can_create_tokens: bool = False,
    creator_token: ApiToken | None = None,
) -> CreatedToken:
    """A new token for `user` (who must be `actor`: nobody mints tokens for someone else).
    `lifetime` None means the default (REST_KNOX["TOKEN_TTL"]); at most a year.
    `can_create_tokens`: whether requests made with the new token may create tokens.

    `creator_token` is the personal token the request creating this one was made with (None
    for a web session): it must have been created with `can_create_tokens` (else
    NotAllowed), and the new token expires no later than it does: the default lifetime is
    shortened to end with it, an explicit lifetime beyond it is InvalidInput.

    Raises InvalidInput (name, lifetime), Conflict (name already used by one of the user's
    tokens, or too many tokens)."""
    name = " ".join(name.split())
    problems = []
    if not name:
        problems.append(Problem("name", gettext("required")))
    elif len(name) > MAX_NAME:
        problems.append(Problem("name", gettext("longer than %(n)d characters") % {"n": MAX_NAME}))
    if lifetime is not None and not dt.timedelta(0) < lifetime <= MAX_LIFETIME:
        problems.append(
            Problem(
                "lifetime",
                gettext("between one second and %(days)d days") % {"days": MAX_LIFETIME.days},
            )
        )
    if actor.pk != user.pk:
        raise InvalidInput([Problem("user", gettext("a token is created by its own user"))])
    now = timezone.now()
    if creator_token is not None:
        if creator_token.user_id != user.pk or not creator_token.can_create_tokens:
            raise NotAllowed(
                gettext(
                    "this token may not create tokens: create one with can_create_tokens from "
                    "a web session"
                )
            )
        bound = creator_token.expiry
        default_ttl: dt.timedelta | None = knox_settings.TOKEN_TTL
        if bound is not None and lifetime is not None and now + lifetime > bound:
            problems.append(
                Problem(
                    "lifetime",
                    gettext(
                        "the token making this request expires at %(expiry)s: a token it "
                        "creates cannot outlive it"
                    )
                    % {"expiry": bound.isoformat()},
                )
            )
        elif bound is not None and lifetime is None:
            lifetime = bound - now if default_ttl is None else min(default_ttl, bound - now)
    if problems:
        raise InvalidInput(problems)
    with transaction.atomic():
        # Serialises a user's token creations: the count and the name check hold.
        get_user_model()._default_manager.select_for_update().filter(pk=user.pk).first()
        mine = ApiToken.objects.filter(user_id=user.pk)
        if mine.filter(name=name).exists():
            raise Conflict(
                gettext("you already have a token named %(name)s") % {"name": repr(name)}
            )
        if mine.count() >= MAX_TOKENS_PER_USER:
            raise Conflict(
                gettext("at most %(n)d tokens per user: revoke one first")
                % {"n": MAX_TOKENS_PER_USER}
            )
        kwargs = {} if lifetime is None else {"expiry": lifetime}
        token, secret = ApiToken.objects.create(
            user=user, name=name, can_create_tokens=can_create_tokens, **kwargs
        )
        bound = creator_token.expiry if creator_token is not None else None
        if bound is not None and (token.expiry is None or token.expiry > bound):
            # knox counts the lifetime from its own clock reading, a moment after ours.
            token.expiry = bound
            ApiToken.objects.filter(pk=token.pk).update(expiry=bound)
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
