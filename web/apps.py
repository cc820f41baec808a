from __future__ import annotations

from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "web"

    def ready(self) -> None:
        # Connects the login receivers: a session's clocks (web.sessions), the audit trail
        # (web.login_audit); `check --deploy` warns when no e-mail server is configured.
        from django.core import checks

        from config.email import email_configured_check
        from web import login_audit, sessions  # noqa: F401

        checks.register(email_configured_check, checks.Tags.compatibility, deploy=True)
