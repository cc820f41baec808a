"""The Celery application. Broker from settings (Redis, or kombu's filesystem transport)."""

from __future__ import annotations

import os

from celery import Celery
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("parcours")
app.config_from_object("django.conf:settings", namespace="CELERY")


def _transport_options() -> dict[str, object]:
    options: dict[str, object] = dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    if not str(settings.CELERY_BROKER_URL).startswith("filesystem://"):
        return options
    base = settings.CELERY_BROKER_DIR
    for sub in ("out", "processed", "control"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    return options | {
        # Exchange tables too: kombu's default is a `control` folder in the working directory.
        "control_folder": str(base / "control"),
        "data_folder_in": str(base / "out"),
        "data_folder_out": str(base / "out"),
        "data_folder_processed": str(base / "processed"),
        "store_processed": False,
    }


app.conf.broker_transport_options = _transport_options()
app.autodiscover_tasks()
