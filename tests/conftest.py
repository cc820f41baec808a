from __future__ import annotations

import pytest
from django.db import connection


@pytest.fixture
def postgres_only(db: None) -> None:
    """Skip, with the reason, a test that needs PostgreSQL when running on SQLite."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://... (CI does)")


@pytest.fixture
def postgres_transactional(transactional_db: None) -> None:
    """As postgres_only, with committed transactions (tests of concurrent sessions)."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://... (CI does)")
