"""Reads of what only the API has: platform accounts and personal API tokens."""

from __future__ import annotations

from typing import cast

from django.db.models import Q, QuerySet
from django.utils import timezone

from api.models import ApiToken, PlatformAccount
from core.users import User


def platform_account_for_user(*, user_id: int | None) -> PlatformAccount | None:
    """The platform account whose service user is `user_id`, if any (OAuth client
    credentials act as that user)."""
    if user_id is None:
        return None
    return PlatformAccount.objects.filter(user_id=user_id).first()


def api_token_list(*, user: User) -> QuerySet[ApiToken]:
    """The user's own personal API tokens that have not expired, newest first (never anyone
    else's)."""
    if not user.is_authenticated:
        return cast("QuerySet[ApiToken]", ApiToken.objects.none())
    unexpired = Q(expiry__isnull=True) | Q(expiry__gt=timezone.now())
    rows = ApiToken.objects.filter(unexpired, user_id=user.pk).order_by("-created", "-digest")
    return cast("QuerySet[ApiToken]", rows)  # knox's manager is untyped
