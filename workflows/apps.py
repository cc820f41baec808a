from __future__ import annotations

from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"

    def ready(self) -> None:
        from django.utils.translation import gettext

        from workflows.definition import translation

        # The pathway language's problems (a broken upload) in the reader's language.
        translation.install(gettext)
