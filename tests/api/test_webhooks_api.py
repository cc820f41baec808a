from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from directory.models import Organization
from directory.services import care_team_member_add, organization_create
from live.models import WebhookDelivery, WebhookSubscription
from live.services.webhooks import webhook_deliveries_queue, webhook_subscription_create
from tests.api.test_platform_oauth import make_platform, obtain_token
from tests.coordination.conftest import Scene
from tests.coordination.test_webhooks import FakeEvent

URL = "/api/v1/webhooks/"


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def platform(scene: Scene) -> Any:
    """The GP's account holding the permission to subscribe (as a platform account would)."""
    user = scene.gp.user
    user.user_permissions.add(Permission.objects.get(codename="add_webhooksubscription"))
    return get_user_model().objects.get(pk=user.pk)  # fresh permission cache


def _create(platform: Any, **extra: Any) -> Any:
    body = {"url": "https://platform.example.org/hooks", "event_types": ["*"], **extra}
    return client_for(platform).post(URL, body, format="json")


def test_creating_a_subscription_shows_its_secret_once(platform: Any) -> None:
    created = _create(platform, description="Synthetic platform")

    listed = client_for(platform).get(URL)

    assert created.status_code == 201
    subscription = WebhookSubscription.objects.get()
    assert created.json() == {
        "id": subscription.pk,
        "url": "https://platform.example.org/hooks",
        "event_types": ["*"],
        "patient": None,
        "active": True,
        "description": "Synthetic platform",
        "created_at": created.json()["created_at"],
        "version": 1,
        "secret": subscription.secret,
    }
    assert listed.status_code == 200
    assert [s["id"] for s in listed.json()["results"]] == [subscription.pk]
    assert "secret" not in listed.json()["results"][0]


def test_subscribing_needs_the_permission(scene: Scene) -> None:
    response = client_for(scene.nurse.user).post(
        URL, {"url": "https://platform.example.org/", "event_types": ["*"]}, format="json"
    )

    assert response.status_code == 403
    assert WebhookSubscription.objects.count() == 0


def test_an_unknown_event_type_is_a_400_naming_the_field(platform: Any) -> None:
    response = _create(platform, event_types=["task.changed", "task.exploded"])

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert error["field"] == "event_types"
    assert error["message"].startswith("unknown: task.exploded")
    assert WebhookSubscription.objects.count() == 0


def test_another_users_subscription_answers_404(platform: Any, scene: Scene) -> None:
    subscription_id = _create(platform).json()["id"]
    nurse = client_for(scene.nurse.user)

    read = nurse.get(f"{URL}{subscription_id}/")
    deleted = nurse.delete(f"{URL}{subscription_id}/")
    deliveries = nurse.get(f"{URL}{subscription_id}/deliveries/")

    assert (read.status_code, deleted.status_code, deliveries.status_code) == (404, 404, 404)
    assert WebhookSubscription.objects.get().active is True


def test_deleting_deactivates_and_keeps_the_delivery_log(platform: Any, scene: Scene) -> None:
    subscription_id = _create(platform).json()["id"]
    webhook_deliveries_queue(
        events=[FakeEvent(id=3, type="task.created", patient_id=scene.patient.pk)]
    )

    deleted = client_for(platform).delete(f"{URL}{subscription_id}/")
    log = client_for(platform).get(f"{URL}{subscription_id}/deliveries/", {"status": "dropped"})

    assert deleted.status_code == 204
    assert WebhookSubscription.objects.get().active is False
    [entry] = log.json()["results"]
    delivery = WebhookDelivery.objects.get()
    assert (entry["id"], entry["event_id"], entry["status"], entry["last_error"]) == (
        delivery.pk,
        3,
        "dropped",
        "the subscription was deactivated",
    )


def test_a_bad_status_filter_is_a_400(platform: Any) -> None:
    subscription_id = _create(platform).json()["id"]

    response = client_for(platform).get(f"{URL}{subscription_id}/deliveries/", {"status": "x"})

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "status"


# Replaying failed deliveries.


def _failed(scene: Scene, owner: Any) -> WebhookDelivery:
    """A delivery of `owner`'s subscription that failed on every attempt."""
    subscription, _ = webhook_subscription_create(
        owner=owner, url="https://platform.example.org/hooks", event_types=["*"]
    )
    webhook_deliveries_queue(
        events=[FakeEvent(id=3, type="task.created", patient_id=scene.patient.pk, position=2)]
    )
    WebhookDelivery.objects.filter(subscription=subscription).update(
        status="failed", attempts=7, next_attempt_at=None, last_error="answered HTTP 503"
    )
    return WebhookDelivery.objects.get(subscription=subscription)


def test_a_platform_replays_its_failed_delivery_with_its_oauth_token(scene: Scene) -> None:
    organization = organization_create(
        name="Synthetic regional platform", kind=Organization.Kind.PLATFORM, actor=None
    )
    platform = make_platform(organization, ["webhooks:read", "webhooks:write"])
    care_team_member_add(
        patient=scene.patient, role="platform", practitioner=platform.practitioner, actor=None
    )
    failed = _failed(scene, platform.account.user)
    api = obtain_token(platform)
    url = f"{URL}{failed.subscription_id}/deliveries/{failed.pk}/replay/"

    replayed = api.post(url)
    again = api.post(url)

    assert replayed.status_code == 200, replayed.content
    body = replayed.json()
    assert (body["id"], body["event_id"], body["status"], body["attempts"]) == (
        failed.pk,
        2,
        "pending",
        0,
    )
    assert (body["replays"], body["last_error"]) == (1, "answered HTTP 503")
    assert again.status_code == 409
    assert again["Content-Type"] == "application/problem+json"
    assert "only a failed delivery can be replayed" in again.json()["detail"]


def test_replaying_someone_else_s_delivery_answers_404_and_changes_nothing(
    platform: Any, scene: Scene
) -> None:
    failed = _failed(scene, platform)
    nurse = client_for(scene.nurse.user)

    one = nurse.post(f"{URL}{failed.subscription_id}/deliveries/{failed.pk}/replay/")
    every = nurse.post(f"{URL}{failed.subscription_id}/deliveries/replay/")
    anonymous = APIClient().post(f"{URL}{failed.subscription_id}/deliveries/replay/")

    assert (one.status_code, every.status_code) == (404, 404)
    assert anonymous.status_code in (401, 403)
    assert WebhookDelivery.objects.get().status == "failed"


def test_a_delivery_of_another_subscription_answers_404(platform: Any, scene: Scene) -> None:
    failed = _failed(scene, platform)
    other_id = _create(platform).json()["id"]

    response = client_for(platform).post(f"{URL}{other_id}/deliveries/{failed.pk}/replay/")

    assert response.status_code == 404
    assert WebhookDelivery.objects.get(pk=failed.pk).status == "failed"


def test_the_owner_replays_every_failed_delivery_of_a_subscription(
    platform: Any, scene: Scene
) -> None:
    failed = _failed(scene, platform)

    response = client_for(platform).post(f"{URL}{failed.subscription_id}/deliveries/replay/")
    log = client_for(platform).get(f"{URL}{failed.subscription_id}/deliveries/")

    assert response.status_code == 200
    assert response.json() == {"replayed": 1}
    assert [(e["id"], e["status"], e["replays"]) for e in log.json()["results"]] == [
        (failed.pk, "pending", 1)
    ]
