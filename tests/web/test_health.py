from __future__ import annotations

import time

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
def test_health_answers_503_naming_the_component_that_fails(client, monkeypatch, caplog):
    def broken() -> str:
        raise ConnectionError("broker unreachable at 10.0.0.7:6379")

    monkeypatch.setitem(health.CHECKS, "broker", broken)

    response = client.get("/health/")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    # The probe is public: the kind of failure only; where and why go to the log.
    assert body["checks"]["broker"] == {
        "ok": False,
        "detail": "ConnectionError",
        "ms": body["checks"]["broker"]["ms"],
    }
    assert "10.0.0.7" not in response.content.decode()
    assert "broker unreachable at 10.0.0.7:6379" in caplog.text
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.django_db
def test_health_answers_within_its_deadline_when_a_check_hangs(client, monkeypatch):
    def hanging() -> str:
        time.sleep(5)
        return "never"

    monkeypatch.setitem(health.CHECKS, "channel_layer", hanging)

    started = time.monotonic()
    response = client.get("/health/")
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response.json()["checks"]["channel_layer"]["detail"] == "no answer in time"
    assert elapsed < 2.0
