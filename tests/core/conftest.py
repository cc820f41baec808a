"""The care-test pathway and its scene, for the SQL helpers tests."""

from __future__ import annotations

from tests.coordination.conftest import care_test, scene

__all__ = ["care_test", "scene"]
