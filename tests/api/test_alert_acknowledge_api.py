"""POST /api/v1/alerts/{id}/acknowledge/ through real credentials: a nurse's personal token
made through the API after logging in with the login form, and a platform's OAuth2 token
from /o/token/."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from api.services.platforms import platform_client_create
from coordination.models import AlertEvent, AlertRecord
from directory.models import Organization
from directory.services import care_team_member_add, organization_create
from patients.models import AuditEvent
from tests.api.test_platform_oauth import obtain_token
from tests.coordination.acknowledgement_scene import AckScene, build_ack_scene

PASSWORD = "synthetic-pass-ack"


@pytest.fixture
def acked(db: None) -> AckScene:
    return build_ack_scene()


def personal_token(user: Any) -> APIClient:
    """Log in with the login form, make a personal API token through the API, and return a
    client that sends only that token."""
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    session = APIClient()
    login = session.post("/login/", {"username": user.get_username(), "password": PASSWORD})
    assert login.status_code == 302
    created = session.post("/api/v1/tokens/", {"name": "alerts"}, format="json")
    assert created.status_code == 201, created.content
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {created.json()['token']}")
    return client


def url(alert: AlertRecord | int) -> str:
    key = alert.pk if isinstance(alert, AlertRecord) else alert
    return f"/api/v1/alerts/{key}/acknowledge/"


def test_a_nurse_acknowledges_with_her_token_and_the_alert_leaves_the_inbox(acked: AckScene):
    api = personal_token(acked.nurse.user)
    assert [a["id"] for a in api.get("/api/v1/alerts/").json()["results"]] == [acked.alert.pk]

    response = api.post(url(acked.alert), {"note": "Called the patient"}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == acked.alert.pk
    assert body["acknowledged_by"] == acked.nurse.user.pk
    assert body["acknowledged_by_label"] == acked.nurse.user.get_full_name()
    assert body["acknowledged_at"] is not None
    assert body["patient_risk"] == {"band": "medium", "score": 3}
    assert api.get("/api/v1/alerts/").json()["results"] == []
    everything = api.get("/api/v1/alerts/?include_acknowledged=true").json()["results"]
    assert [a["id"] for a in everything] == [acked.alert.pk]
    [entry] = AlertEvent.objects.filter(alert_id=acked.alert.pk)
    assert entry.note == "Called the patient"
    audit = AuditEvent.objects.get(resource_type="AlertRecord", action="update")
    assert (audit.entry_point, audit.actor_id) == ("rest", acked.nurse.user.pk)


def test_the_second_acknowledgement_is_a_conflict_naming_who_and_when(acked: AckScene):
    first, second = personal_token(acked.nurse.user), personal_token(acked.other_nurse.user)
    assert first.post(url(acked.alert), {}, format="json").status_code == 200

    response = second.post(url(acked.alert), {}, format="json")

    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    assert acked.nurse.user.get_full_name() in response.json()["detail"]
    assert AlertEvent.objects.count() == 1


def test_a_retry_with_the_same_idempotency_key_gets_the_first_answer(acked: AckScene):
    api = personal_token(acked.nurse.user)
    first = api.post(url(acked.alert), {}, format="json", HTTP_IDEMPOTENCY_KEY="ack-1")
    again = api.post(url(acked.alert), {}, format="json", HTTP_IDEMPOTENCY_KEY="ack-1")

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert AlertEvent.objects.count() == 1


@pytest.mark.parametrize("alert", ["theirs", "missing"])
def test_an_outsider_gets_404_alike_for_an_alert_not_theirs_and_a_missing_one(
    acked: AckScene, alert: str
):
    api = personal_token(acked.outsider.user)

    response = api.post(url(acked.alert if alert == "theirs" else 10**9), {}, format="json")

    assert response.status_code == 404
    assert response.json()["detail"] == "no such resource"
    assert AlertRecord.objects.get(pk=acked.alert.pk).acknowledged_at is None


def test_unknown_fields_and_a_long_note_are_refused_naming_them(acked: AckScene):
    api = personal_token(acked.nurse.user)

    unknown = api.post(url(acked.alert), {"acknowledged_by": 1}, format="json")
    long = api.post(url(acked.alert), {"note": "x" * 501}, format="json")

    assert unknown.status_code == 400
    assert [e["field"] for e in unknown.json()["errors"]] == ["acknowledged_by"]
    assert long.status_code == 400
    assert [e["field"] for e in long.json()["errors"]] == ["note"]
    assert AlertEvent.objects.count() == 0


def test_include_acknowledged_takes_true_or_false(acked: AckScene):
    api = personal_token(acked.nurse.user)

    response = api.get("/api/v1/alerts/?include_acknowledged=yes")

    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["include_acknowledged"]


def _platform(acked: AckScene, scopes: list[str]) -> APIClient:
    organization = organization_create(
        name="Synthetic regional platform", kind=Organization.Kind.PLATFORM, actor=None
    )
    client = platform_client_create(
        slug="ack", name="Synthetic platform", organization=organization, scopes=scopes,
        actor=None,
    )  # fmt: skip
    care_team_member_add(
        patient=acked.patient, role="platform", practitioner=client.practitioner, actor=None
    )
    return obtain_token(client)


def test_a_platform_token_needs_tasks_write(acked: AckScene):
    api = _platform(acked, ["tasks:read"])

    response = api.post(url(acked.alert), {}, format="json")

    assert response.status_code == 403
    assert "tasks:write" in response.json()["detail"]


def test_a_platform_is_not_the_care_team_and_may_not_acknowledge(acked: AckScene):
    api = _platform(acked, ["tasks:read", "tasks:write"])

    response = api.post(url(acked.alert), {}, format="json")

    assert response.status_code == 403
    assert "care team" in response.json()["detail"]
    assert AlertRecord.objects.get(pk=acked.alert.pk).acknowledged_at is None
