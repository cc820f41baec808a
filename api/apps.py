from __future__ import annotations

from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"

    def ready(self) -> None:
        # Registers the OpenAPI descriptions of the authentication classes.
        from api import auth_schema  # noqa: F401
