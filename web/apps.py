from __future__ import annotations

from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "web"

    def ready(self) -> None:
        # Connects the login receivers: a session's clocks (web.sessions), the audit trail
        # (web.login_audit).
        from web import login_audit, sessions  # noqa: F401
