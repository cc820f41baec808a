"""Test settings: the local defaults plus a fast password hasher.

DATABASE_URL and REDIS_URL still come from the environment, so the same suite runs on the
embedded SQLite default and on PostgreSQL/Redis in CI.
"""

from __future__ import annotations

from .local import *  # noqa: F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
