from __future__ import annotations

import pytest

from web import health


@pytest.mark.django_db
def test_health_reports_each_component_ready(client):
    response = client.get("/health/")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "channel_layer"}
    assert all(check["ok"] for check in body["checks"].values())


@pytest.mark.django_db
def test_health_answers_503_naming_the_component_that_fails(client, monkeypatch):
    def broken() -> str:
        raise ConnectionError("broker unreachable")

    monkeypatch.setitem(health.CHECKS, "broker", broken)

    response = client.get("/health/")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"] == {
        "ok": False,
        "detail": "ConnectionError: broker unreachable",
        "ms": body["checks"]["broker"]["ms"],
    }
    assert body["checks"]["database"]["ok"] is True
