"""Personal API tokens for scripts: several per user, shown once, stored as digests, expiring,
revocable, acting with exactly their user's access."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from api.models import ApiToken
from patients.models import AuditEvent
from tests.coordination.conftest import Scene, make_patient


def session(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def with_token(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def create(user, name: str = "nightly export", **extra) -> dict[str, Any]:
    response = session(user).post("/api/v1/tokens/", {"name": name, **extra}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_a_created_token_is_shown_once_and_stored_as_a_digest(scene: Scene):
    user = scene.nurse.user

    created = create(user, lifetime_days=7)
    listed = session(user).get("/api/v1/tokens/")

    secret = created["token"]
    stored = ApiToken.objects.get()
    assert secret.startswith("pct_")
    assert created["id"] == secret[:15] == stored.token_key
    assert stored.digest != secret
    assert secret not in stored.digest
    assert (stored.name, stored.user_id, stored.last_used_at) == ("nightly export", user.pk, None)
    assert dt.timedelta(days=6, hours=23) < stored.expiry - timezone.now() <= dt.timedelta(days=7)
    assert listed.json()["results"] == [
        {k: v for k, v in created.items() if k != "token"},
    ]
    assert "token" not in listed.json()["results"][0]


def test_a_token_sees_exactly_what_its_user_sees(scene: Scene):
    make_patient()  # nobody's
    secret = create(scene.nurse.user)["token"]

    by_token = with_token(secret).get("/api/v1/patients/")
    by_session = session(scene.nurse.user).get("/api/v1/patients/")
    tasks_by_token = with_token(secret).get("/api/v1/tasks/")
    tasks_by_session = session(scene.nurse.user).get("/api/v1/tasks/")

    assert by_token.status_code == 200
    assert by_token.json() == by_session.json()
    assert [p["id"] for p in by_token.json()["results"]] == [scene.patient.pk]
    assert tasks_by_token.json() == tasks_by_session.json()


def test_a_token_of_an_outsider_sees_nothing_of_the_patient(scene: Scene):
    secret = create(scene.outsider.user)["token"]

    response = with_token(secret).get(f"/api/v1/patients/{scene.patient.pk}/")

    assert response.status_code == 404


def test_reads_with_a_token_are_audited_as_its_user(scene: Scene):
    secret = create(scene.nurse.user)["token"]

    with_token(secret).get(f"/api/v1/patients/{scene.patient.pk}/")

    event = AuditEvent.objects.filter(action="read", resource_type="Patient").latest("id")
    assert (event.actor_id, event.entry_point) == (scene.nurse.user.pk, "rest")


def test_using_a_token_records_its_last_use(scene: Scene):
    created = create(scene.nurse.user)
    moment = timezone.now() + dt.timedelta(minutes=5)

    with time_machine.travel(moment, tick=False):
        with_token(created["token"]).get("/api/v1/patients/")

    assert ApiToken.objects.get().last_used_at == moment


def test_a_revoked_token_is_401(scene: Scene):
    created = create(scene.nurse.user)
    client = with_token(created["token"])
    assert client.get("/api/v1/patients/").status_code == 200

    revoked = session(scene.nurse.user).delete(f"/api/v1/tokens/{created['id']}/")
    response = client.get("/api/v1/patients/")

    assert revoked.status_code == 204
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert ApiToken.objects.count() == 0


def test_an_expired_token_is_401_and_no_longer_listed(scene: Scene):
    created = create(scene.nurse.user, lifetime_days=1)

    with time_machine.travel(timezone.now() + dt.timedelta(days=1, minutes=1), tick=False):
        listed = session(scene.nurse.user).get("/api/v1/tokens/")
        response = with_token(created["token"]).get("/api/v1/patients/")

    assert listed.json()["results"] == []
    assert response.status_code == 401


def test_a_user_cannot_revoke_or_list_anothers_token(scene: Scene):
    created = create(scene.nurse.user)

    revoked = session(scene.gp.user).delete(f"/api/v1/tokens/{created['id']}/")
    listed = session(scene.gp.user).get("/api/v1/tokens/")

    assert revoked.status_code == 404
    assert listed.json()["results"] == []
    assert with_token(created["token"]).get("/api/v1/patients/").status_code == 200


def test_a_user_holds_several_named_tokens_but_not_two_with_one_name(scene: Scene):
    user = scene.nurse.user
    create(user, "export")
    create(user, "sync")

    again = session(user).post("/api/v1/tokens/", {"name": "export"}, format="json")

    assert again.status_code == 409
    assert sorted(ApiToken.objects.values_list("name", flat=True)) == ["export", "sync"]


def test_a_token_for_an_inactive_user_is_401(scene: Scene):
    created = create(scene.nurse.user)
    scene.nurse.user.is_active = False
    scene.nurse.user.save(update_fields=["is_active"])

    response = with_token(created["token"]).get("/api/v1/patients/")

    assert response.status_code == 401


@pytest.mark.parametrize("body", [{"name": " "}, {"name": "x", "lifetime_days": 0}])
def test_a_token_needs_a_name_and_a_sane_lifetime(scene: Scene, body: dict[str, object]):
    response = session(scene.nurse.user).post("/api/v1/tokens/", body, format="json")

    assert response.status_code == 400
    assert ApiToken.objects.count() == 0


def test_tokens_cannot_be_managed_anonymously(db):
    response = APIClient().post("/api/v1/tokens/", {"name": "x"}, format="json")

    assert response.status_code == 401
    assert ApiToken.objects.count() == 0
