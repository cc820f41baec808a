"""`remote_monitoring` through the API, with a platform's real OAuth2 token: readings refused
with their own problem type while the consent is withdrawn, nothing stored; the pathway says
its monitoring is suspended and since when; given again, both come back."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from api.services.platforms import PlatformClient
from coordination.models import CarePathway
from coordination.services import care_pathway_start
from live.models import OutboxEvent
from patients.models import Consent, Observation
from tests.api.test_platform_oauth import obtain_token, organization, platform
from tests.coordination.conftest import Scene
from tests.coordination.test_remote_monitoring_consent import MONITORED
from workflows.actors import Actor
from workflows.services import definition_publish

__all__ = ["organization", "platform"]


@pytest.fixture
def monitored(scene: Scene) -> CarePathway:
    """A second pathway of the scene's patient, one that watches measurements."""
    definition_publish(source=MONITORED, actor=Actor(id="test"), fmt="yaml")
    return care_pathway_start(patient=scene.patient, key="monitored", user=scene.gp.user)


def gp_client(scene: Scene) -> APIClient:
    client = APIClient()
    client.force_authenticate(scene.gp.user)
    return client


def consent(scene: Scene, given: bool) -> dict[str, Any]:
    response = gp_client(scene).post(
        f"/api/v1/patients/{scene.patient.pk}/consents/",
        {"scope": "remote_monitoring", "given": given},
        format="json",
    )
    assert response.status_code in (200, 201), response.content
    return dict(response.json())


def readings() -> dict[str, Any]:
    at = (timezone.now() - dt.timedelta(hours=1)).isoformat()
    return {
        "items": [
            {"code": "29463-7", "value": 81.5, "unit": "kg", "effective_at": at},
            {"code": "59408-5", "value": 97, "unit": "%", "effective_at": at},
        ]
    }


def test_a_platform_reading_is_refused_while_remote_monitoring_is_withdrawn(
    scene: Scene, platform: PlatformClient, monitored: CarePathway
):
    api = obtain_token(platform)
    url = f"/api/v1/patients/{scene.patient.pk}/observations/"
    consent(scene, True)
    consent(scene, False)
    withdrawn_at = Consent.objects.get(patient=scene.patient, status="withdrawn").withdrawn_at
    assert withdrawn_at is not None
    events_before = OutboxEvent.objects.count()

    batch = api.post(url, readings(), format="json")
    single = api.post(url, readings()["items"][0], format="json")

    assert batch.status_code == 409, batch.content
    assert batch["Content-Type"] == "application/problem+json"
    body = batch.json()
    assert body["type"] == "https://parcours.invalid/problems/consent-withdrawn"
    assert body["title"] == "Consent withdrawn"
    assert body["scope"] == "remote_monitoring"
    assert "withdrew their remote_monitoring consent" in body["detail"]
    assert dt.datetime.fromisoformat(body["withdrawn_at"]) == withdrawn_at
    assert single.status_code == 409
    assert single.json()["type"].endswith("/consent-withdrawn")
    assert Observation.objects.filter(patient=scene.patient).count() == 0
    assert OutboxEvent.objects.count() == events_before


def test_the_pathway_shows_its_monitoring_suspended_then_active_again(
    scene: Scene, platform: PlatformClient, monitored: CarePathway
):
    api = obtain_token(platform)
    consent(scene, True)
    withdrawal = consent(scene, False)

    detail = api.get(f"/api/v1/pathways/{monitored.pk}/").json()
    listed = {p["id"]: p for p in api.get("/api/v1/pathways/").json()["results"]}

    assert detail["monitoring"] == {
        "status": "suspended",
        "reason": "consent_withdrawn",
        "since": withdrawal["withdrawn_at"],
    }
    assert listed[monitored.pk]["monitoring"] == detail["monitoring"]
    assert listed[scene.pathway.pk]["monitoring"] is None  # watches no measurement

    consent(scene, True)
    again = api.post(
        f"/api/v1/patients/{scene.patient.pk}/observations/", readings(), format="json"
    )

    assert again.status_code == 201, again.content
    assert api.get(f"/api/v1/pathways/{monitored.pk}/").json()["monitoring"] == {
        "status": "active",
        "reason": None,
        "since": None,
    }


def test_a_patient_never_asked_keeps_sending_readings(
    scene: Scene, platform: PlatformClient, monitored: CarePathway
):
    api = obtain_token(platform)

    response = api.post(
        f"/api/v1/patients/{scene.patient.pk}/observations/", readings(), format="json"
    )

    assert response.status_code == 201, response.content
    assert api.get(f"/api/v1/pathways/{monitored.pk}/").json()["monitoring"]["status"] == "active"


def test_a_reading_a_professional_posts_is_still_stored(scene: Scene, monitored: CarePathway):
    consent(scene, True)
    consent(scene, False)

    response = gp_client(scene).post(
        f"/api/v1/patients/{scene.patient.pk}/observations/", readings(), format="json"
    )

    assert response.status_code == 201, response.content
    assert {o.source for o in Observation.objects.filter(patient=scene.patient)} == {"professional"}
