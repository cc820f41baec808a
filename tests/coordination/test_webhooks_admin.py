"""Operations staff replay failed webhook deliveries from the admin, through the service."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from live.models import WebhookDelivery
from live.services.webhooks import webhook_deliveries_queue, webhook_subscription_create
from patients.services import patient_access_grant
from tests.coordination.conftest import Scene
from tests.coordination.test_webhooks import FakeEvent

CHANGELIST = "admin:live_webhookdelivery_changelist"


def failed(scene: Scene) -> WebhookDelivery:
    # The admin lists a delivery about a patient only to those who may see the patient:
    # every staff member of these tests may (coordination.admin.WebhookDeliveryAdmin).
    for user in get_user_model().objects.filter(is_staff=True):
        patient_access_grant(patient=scene.patient, perms=["view_patient"], user=user, actor=None)
    webhook_subscription_create(
        owner=scene.gp.user, url="https://platform.example.org/hooks", event_types=["*"]
    )
    webhook_deliveries_queue(
        events=[FakeEvent(id=3, type="task.created", patient_id=scene.patient.pk, position=2)]
    )
    WebhookDelivery.objects.update(status="failed", attempts=7, next_attempt_at=None)
    return WebhookDelivery.objects.get()


def staff(scene: Scene, *codenames: str) -> Any:
    """A staff member holding `codenames`, who may see the scene's patient."""
    user = get_user_model().objects.create_user(
        username="synthetic-ops", password="synthetic-pass-9f2", is_staff=True
    )
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    patient_access_grant(patient=scene.patient, perms=["view_patient"], user=user, actor=None)
    return user


def logged_in(user: Any) -> Client:
    """Through the admin's real login form."""
    client = Client()
    response = client.post(
        reverse("admin:login"),
        {"username": user.username, "password": "synthetic-pass-9f2", "next": "/admin/"},
    )
    assert response.status_code == 302, response.content
    return client


def test_deliveries_are_listed_read_only_without_their_body(scene: Scene, admin_client) -> None:
    delivery = failed(scene)

    listing = admin_client.get(reverse(CHANGELIST))
    opened = admin_client.get(reverse("admin:live_webhookdelivery_change", args=[delivery.pk]))

    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list) == [delivery]
    assert opened.status_code == 200
    assert opened.context["has_change_permission"] is False
    assert delivery.body.encode() not in opened.content


def test_operations_staff_replay_a_failed_delivery(scene: Scene) -> None:
    delivery = failed(scene)
    client = logged_in(staff(scene, "view_webhookdelivery", "change_webhookdelivery"))

    response = client.post(
        reverse(CHANGELIST), {"action": "replay", "_selected_action": [delivery.pk]}
    )

    assert response.status_code == 302
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.replays, delivery.replayed_by) == (
        "pending",
        0,
        1,
        "synthetic-ops",
    )


def test_staff_without_the_permission_cannot_replay(scene: Scene) -> None:
    delivery = failed(scene)
    client = logged_in(staff(scene, "view_webhookdelivery"))

    listing = client.get(reverse(CHANGELIST))
    response = client.post(
        reverse(CHANGELIST), {"action": "replay", "_selected_action": [delivery.pk]}
    )

    form = listing.context["action_form"]  # None when no action is offered
    assert listing.status_code == 200
    assert "replay" not in (dict(form.fields["action"].choices) if form else {})
    assert response.status_code in (200, 302)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.replays) == ("failed", 0)


@pytest.mark.parametrize("status", ["succeeded", "pending"])
def test_a_delivery_that_did_not_fail_is_left_alone_with_a_warning(
    scene: Scene, admin_client, status: str
) -> None:
    delivery = failed(scene)
    WebhookDelivery.objects.update(status=status)

    response = admin_client.post(
        reverse(CHANGELIST), {"action": "replay", "_selected_action": [delivery.pk]}, follow=True
    )

    messages = [str(m) for m in response.context["messages"]]
    # The admin is a page: in French unless the user chose English.
    assert f"seule une livraison en échec peut être rejouée ; celle-ci est à l'état {status}" in (
        messages
    )
    delivery.refresh_from_db()
    assert (delivery.status, delivery.replays) == (status, 0)


def test_a_delivery_about_a_patient_the_staff_member_may_not_see_is_not_listed(
    scene: Scene,
) -> None:
    webhook_subscription_create(
        owner=scene.gp.user, url="https://platform.example.org/hooks", event_types=["*"]
    )
    webhook_deliveries_queue(
        events=[FakeEvent(id=3, type="task.created", patient_id=scene.patient.pk, position=2)]
    )
    stranger = get_user_model().objects.create_user(
        username="synthetic-ops-2", password="synthetic-pass-9f2", is_staff=True
    )
    stranger.user_permissions.add(*Permission.objects.filter(codename="view_webhookdelivery"))

    listing = logged_in(stranger).get(reverse(CHANGELIST))

    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list) == []
