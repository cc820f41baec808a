from __future__ import annotations

from unittest import mock

import pytest
from django.urls import reverse

from coordination.models import DeadLetter
from coordination.services.jobs import dead_letter_record

pytestmark = pytest.mark.django_db


def letter(task_id: str = "abc") -> DeadLetter:
    return dead_letter_record(
        task_name="coordination.overdue_escalate",
        task_id=task_id,
        args=[],
        kwargs={},
        exception="OperationalError: the database went away",
        traceback="Traceback ...",
        attempts=6,
    )


def test_dead_letters_are_listed_read_only(admin_client):
    parked = letter()

    listing = admin_client.get(reverse("admin:coordination_deadletter_changelist"))
    opened = admin_client.get(reverse("admin:coordination_deadletter_change", args=[parked.pk]))

    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list) == [parked]
    assert opened.status_code == 200
    assert opened.context["has_change_permission"] is False


def test_the_requeue_action_sends_the_job_again_and_resolves_the_letter(
    admin_client, django_capture_on_commit_callbacks
):
    parked = letter()

    with (
        mock.patch("config.celery.app.send_task") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = admin_client.post(
            reverse("admin:coordination_deadletter_changelist"),
            {"action": "requeue", "_selected_action": [parked.pk]},
        )

    assert response.status_code == 302
    send.assert_called_once_with("coordination.overdue_escalate", args=[], kwargs={})
    parked.refresh_from_db()
    assert (parked.resolved, parked.resolution) == (True, "re-queued by admin")
