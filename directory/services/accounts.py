"""User accounts: deactivating and reactivating them, and changing their password. Every way
an account is deactivated (the admin's action, disabling a platform) and every way its
password is changed (the web page, the admin's form) goes through these services, so that
the account's credentials are revoked with it, at once.

The credentials of an account: its personal API tokens (knox), the OAuth2 tokens bound to
it (access and refresh tokens, authorisation codes and ID tokens: none can be obtained any
more, but rows made before may exist) and the tokens of the OAuth2 applications it owns (a
platform's). Its web sessions need no deleting:

- an inactive user's session authenticates nobody at the next request (Django's
  ModelBackend), and live WebSocket connections close at their next session check
  (live.consumers);
- a session carries a hash of the password it was opened with (Django's session
  verification): a new password ends every other session at its next request, and live
  connections at their next session check. The web page keeps the session that changed the
  password (django.contrib.auth.update_session_auth_hash).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from knox.models import get_token_model
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)

from core.errors import InvalidInput, NotFound, Problem
from directory.models import Invitation, Practitioner


def _lock_user(user_id: int) -> Any:  # the user model (django.contrib.auth's, or a swapped one)
    user = get_user_model()._default_manager.select_for_update().filter(pk=user_id).first()
    if user is None:
        raise NotFound("user", user_id)
    return user


def account_credentials_revoke(*, user_id: int) -> int:
    """Delete every token of the account (see the module's docstring); returns how many.
    Runs in the caller's transaction when there is one."""
    with transaction.atomic():
        # Personal tokens through knox's own accessor: their model is the API's (api.ApiToken).
        revoked, _ = get_token_model().objects.filter(user_id=user_id).delete()
        mine = Q(user_id=user_id)
        # Refresh tokens first: deleting an access token leaves its refresh token behind.
        deleted, _ = (
            get_refresh_token_model()
            .objects.filter(mine | Q(application__user_id=user_id))
            .delete()
        )
        revoked += deleted
        for model in (get_access_token_model(), get_grant_model(), get_id_token_model()):
            deleted, _ = model.objects.filter(mine | Q(application__user_id=user_id)).delete()
            revoked += deleted
    return int(revoked)


def account_deactivate(*, user_id: int, actor: AbstractBaseUser | None) -> bool:
    """Deactivate the account and revoke its credentials, in one transaction (the user row
    locked). Its practitioner profile, if any, becomes inactive too (no task is offered to
    it, it joins no care team). Returns False if it already was inactive (its credentials
    are revoked again all the same: idempotent). NotFound for an unknown user."""
    with transaction.atomic():
        user = _lock_user(user_id)
        changed = bool(user.is_active)
        if changed:
            user.is_active = False
            user.save(update_fields=["is_active"])
        Practitioner.objects.filter(user_id=user_id, active=True).update(active=False)
        account_credentials_revoke(user_id=user_id)
        # Its pending invitation links die with it (directory.services.invitations).
        Invitation.objects.filter(
            user_id=user_id, used_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=timezone.now())
    return changed


def account_reactivate(*, user_id: int, actor: AbstractBaseUser | None) -> bool:
    """Let a deactivated account sign in again (with its practitioner profile). Nothing
    that was revoked comes back: its tokens are gone for good. Returns False if it already
    was active."""
    with transaction.atomic():
        user = _lock_user(user_id)
        if user.is_active:
            return False
        user.is_active = True
        user.save(update_fields=["is_active"])
        Practitioner.objects.filter(user_id=user_id, active=False).update(active=True)
    return True


def account_password_set(
    *, user_id: int, password: str | None, actor: AbstractBaseUser | None
) -> AbstractBaseUser:
    """Give the account a new password (None: no usable password, as for a platform's
    service account) and revoke every token it holds. The user's other sessions end at
    their next request (see the module's docstring). Raises InvalidInput, naming what the
    password validators refuse, before writing anything."""
    with transaction.atomic():
        user = _lock_user(user_id)
        if password is None:
            user.set_unusable_password()
        else:
            try:
                validate_password(password, user)
            except ValidationError as error:
                raise InvalidInput([Problem("password", m) for m in error.messages]) from None
            user.set_password(password)
        user.save(update_fields=["password"])
        account_credentials_revoke(user_id=user_id)
    changed: AbstractBaseUser = user
    return changed
