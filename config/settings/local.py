"""The embedded default for a laptop: `make run` and `make test` with nothing else installed.

SECRET_KEY and AUDIT_CHAIN_KEY may still come from the environment; otherwise a random key is
generated once and kept in var/, so sessions and the audit chain survive a restart without
any secret living in the repository. Audit checkpoints go to var/audit-checkpoints/.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from .base import *  # noqa: F403
from .base import VAR_DIR, env_bool

DEBUG = env_bool("DEBUG", True)
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env_bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", True)


def _local_secret(name: str) -> str:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = os.environ.get("SECRET_KEY") or _local_secret("secret_key")
# Whoever can read var/ can recompute the chain here: the embedded default is for a laptop.
AUDIT_CHAIN_KEY = os.environ.get("AUDIT_CHAIN_KEY") or _local_secret("audit_chain_key")
AUDIT_CHECKPOINT_DIR = Path(os.environ.get("AUDIT_CHECKPOINT_DIR") or VAR_DIR / "audit-checkpoints")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Static files: served from the apps' folders as they are; collectstatic (make run) fills
# var/static for whitenoise.
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
