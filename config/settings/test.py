"""Test settings: the local defaults plus a fast password hasher.

DATABASE_URL and REDIS_URL still come from the environment, so the same suite runs on the
embedded SQLite default and on PostgreSQL/Redis in CI.
"""

from __future__ import annotations

from .base import env_bool
from .local import *  # noqa: F403

# Off unless asked for: a server a test starts may run with DEBUG on, as `make run` does
# (pytest-django turns it off for the tests themselves).
DEBUG = env_bool("DEBUG", False)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Tests share Redis across parallel workers (and user ids across their databases): no test is
# throttled unless it sets its own rates (tests/api/test_security_throttling.py).
API_THROTTLE_RATES = {"platform": "1000000/minute", "user": "1000000/minute",
                      "anonymous": "1000000/minute"}  # fmt: skip

# A fixed audit chain key, whatever the environment says, so that every process a test starts
# chains and verifies alike (tests point AUDIT_CHECKPOINT_DIR at a directory of their own).
AUDIT_CHAIN_KEY = "parcours-tests-audit-chain-key-not-a-secret"
AUDIT_CHAIN_KEY_FALLBACKS = []
