"""The e-mail backend of a production without EMAIL_URL: nothing can be sent, and every
attempt says so (an invitation answers 503 naming it; a password reset is logged as failed,
the page answering as for any address). Nothing is dropped silently."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.mail.backends.base import BaseEmailBackend
from django.utils.module_loading import import_string


class EmailNotConfiguredError(OSError):
    """EMAIL_URL is not set: this deployment sends no e-mail."""


class UnconfiguredEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Sequence[Any]) -> int:
        if not email_messages:
            return 0
        raise EmailNotConfiguredError(
            "no e-mail server is configured (set EMAIL_URL): nothing was sent"
        )


def email_configured_check(app_configs: Any, **kwargs: Any) -> list[Any]:
    """`check --deploy`: a deployment without EMAIL_URL sends no invitation or reset."""
    if import_string(settings.EMAIL_BACKEND) is not UnconfiguredEmailBackend:
        return []
    return [
        checks.Warning(
            "EMAIL_URL is not set: invitations and password resets cannot be sent",
            hint="Set EMAIL_URL (smtp:// or smtps://) and DEFAULT_FROM_EMAIL (README).",
            id="parcours.W001",
        )
    ]
