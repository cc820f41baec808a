"""Production: every secret from the environment, HTTPS only. Passes `check --deploy`."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import AUDIT_CHAIN_KEY_FALLBACKS, REST_FRAMEWORK, env_bool

DEBUG = env_bool("DEBUG", False)

try:
    SECRET_KEY = os.environ["SECRET_KEY"]
except KeyError as exc:
    raise ImproperlyConfigured("SECRET_KEY must be set in the environment in production") from exc

# The audit chain's key (docs/audit.md): kept out of the database, so that whoever can write
# the database cannot recompute the chain. Older keys are in AUDIT_CHAIN_KEY_FALLBACKS.
AUDIT_CHAIN_KEY = os.environ.get("AUDIT_CHAIN_KEY", "")
if not AUDIT_CHAIN_KEY:
    raise ImproperlyConfigured(
        "AUDIT_CHAIN_KEY must be set in the environment in production (docs/audit.md)"
    )
for _name, _key in [("AUDIT_CHAIN_KEY", AUDIT_CHAIN_KEY)] + [
    ("AUDIT_CHAIN_KEY_FALLBACKS", key) for key in AUDIT_CHAIN_KEY_FALLBACKS
]:
    if len(_key) < 32:
        raise ImproperlyConfigured(
            f"{_name}: a key must be at least 32 characters long (docs/audit.md)"
        )
# Where the backstop job and verify_audit append the signed checkpoints of the chain head, to
# be shipped to write-once storage (docs/audit.md). No default: a checkpoint must not land in
# a throwaway directory of the container.
_checkpoint_dir = os.environ.get("AUDIT_CHECKPOINT_DIR", "")
if not os.path.isabs(_checkpoint_dir):
    raise ImproperlyConfigured(
        "AUDIT_CHECKPOINT_DIR must be set in the environment in production, to an absolute "
        f"path (docs/audit.md), not {_checkpoint_dir!r}"
    )
AUDIT_CHECKPOINT_DIR = Path(_checkpoint_dir)

# Invitations and password resets are sent by e-mail. Without EMAIL_URL nothing can be sent:
# every attempt fails loudly (an invitation answers 503 naming it) and `check --deploy` warns.
# A backend that only prints or drops mail is refused: a link would be lost without a trace.
_email_scheme = urlsplit(os.environ.get("EMAIL_URL", "")).scheme
if not _email_scheme:
    EMAIL_BACKEND = "config.email.UnconfiguredEmailBackend"
elif _email_scheme not in {"smtp", "smtps"}:
    raise ImproperlyConfigured(
        "EMAIL_URL must be an smtp:// or smtps:// URL in production, not "
        f"{_email_scheme}:// (README, Configuration)"
    )
elif not os.environ.get("DEFAULT_FROM_EMAIL"):
    raise ImproperlyConfigured(
        "DEFAULT_FROM_EMAIL must be set in the environment in production with EMAIL_URL "
        "(README, Configuration)"
    )

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^health/$"]
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"

# No browsable API: JSON (and problem+json) only; the HTML renderer is a development aid.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
