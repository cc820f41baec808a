from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection
from django.utils import translation


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


@pytest.fixture(autouse=True)
def audit_checkpoint_dir(settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint directory of the test's own (not created until a checkpoint is written):
    checkpoints of another test's chain would not match this one's."""
    path = tmp_path_factory.getbasetemp() / "audit-checkpoints" / uuid.uuid4().hex
    settings.AUDIT_CHECKPOINT_DIR = path
    return path


@pytest.fixture(autouse=True)
def english_outside_requests() -> Iterator[None]:
    """Services called directly by a test answer in English, as they do to an API client
    that asks for no language; the site's default (French) is the web UI's. A request made
    through the test client still gets its language from the middleware
    (api.middleware.ApiLocaleMiddleware activates one on every request), so pages keep
    answering in French and the API in what Accept-Language asks."""
    with translation.override("en"):
        yield
