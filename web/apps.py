from __future__ import annotations

from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "web"

    def ready(self) -> None:
        # Connects the login receiver that starts a session's clocks (web.sessions).
        from web import sessions  # noqa: F401
