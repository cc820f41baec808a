"""Keyset cursors reach every row of a long list whose first ordering field has few
values (tasks by priority), in both directions, NULLs included, with no offset cap."""

from __future__ import annotations

import base64
import datetime as dt
from base64 import b64encode

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from coordination.models import Task
from tests.coordination.conftest import Scene

# More than DRF's offset_cutoff (1000) rows sharing one priority.
ROWS = 1_150


def _bulk_tasks(scene: Scene) -> None:
    now = timezone.now()
    Task.objects.bulk_create(
        Task(
            patient=scene.patient,
            code=f"bulk-{i}",
            title={"en": "Bulk"},
            status="ready",
            priority="routine",
            priority_rank=3,
            # A third without a due time; the others with ties on the due time.
            due_at=None if i % 3 == 0 else now + dt.timedelta(hours=i % 7),
            offered_role="nurse",
            created_at=now,
            updated_at=now,
        )
        for i in range(ROWS)
    )


def _expected_order() -> list[int]:
    far = timezone.now() + dt.timedelta(days=36500)
    rows = Task.objects.values_list("id", "priority_rank", "due_at")
    return [i for i, *_ in sorted(rows, key=lambda r: (r[1], r[2] is None, r[2] or far, r[0]))]


def _walk(client: APIClient, url: str, link: str) -> list[int]:
    ids: list[int] = []
    pages = 0
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content[:300]
        body = response.json()
        ids.extend(t["id"] for t in body["results"])
        url = body[link]
        pages += 1
        assert pages < 100, "the cursor does not advance"
    return ids


@pytest.fixture
def nurse(scene: Scene) -> APIClient:
    _bulk_tasks(scene)
    client = APIClient()
    client.force_authenticate(scene.nurse.user)
    return client


def test_forward_pages_reach_every_task_once_in_worklist_order(nurse: APIClient):
    expected = _expected_order()
    assert len(expected) > ROWS

    ids = _walk(nurse, "/api/v1/tasks/?page_size=200", "next")

    assert ids == expected


def test_previous_links_walk_back_over_the_same_rows(nurse: APIClient):
    expected = _expected_order()
    last = "/api/v1/tasks/?page_size=200"
    while (following := nurse.get(last).json()["next"]) is not None:
        last = following
    last_page = [t["id"] for t in nurse.get(last).json()["results"]]
    previous = nurse.get(last).json()["previous"]

    pages: list[list[int]] = [last_page]
    while previous:
        body = nurse.get(previous).json()
        pages.insert(0, [t["id"] for t in body["results"]])
        previous = body["previous"]

    assert [i for page in pages for i in page] == expected


def test_a_row_of_an_earlier_page_moving_does_not_shift_the_next_page(nurse: APIClient):
    first = nurse.get("/api/v1/tasks/?page_size=100").json()
    second_before = [t["id"] for t in nurse.get(first["next"]).json()["results"]]
    # A task of the first page becomes the most pressing: an offset would now skip a row.
    moved = first["results"][5]["id"]
    Task.objects.filter(pk=moved).update(priority="stat", priority_rank=0)

    second_after = [t["id"] for t in nurse.get(first["next"]).json()["results"]]

    assert second_after == second_before


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64!",
        b64encode(b"k=not-json").decode(),
        b64encode(b"k=%5B1%2C2%5D").decode(),  # two values for three fields
        b64encode(b"k=%5B%22x%22%2Cnull%2C1%5D").decode(),  # a rank that is not a number
        b64encode(b"r=1").decode(),  # no key
    ],
)
def test_a_malformed_cursor_is_answered_not_found(nurse: APIClient, cursor: str):
    response = nurse.get("/api/v1/tasks/", {"cursor": cursor})

    assert response.status_code == 404
    assert response.json()["detail"]


def test_a_cursor_is_encrypted_and_a_tampered_one_is_refused(nurse: APIClient, scene: Scene):
    from urllib.parse import parse_qs, urlsplit

    from cryptography.fernet import Fernet

    from patients.services import patient_access_grant
    from tests.coordination.conftest import make_patient

    patient_access_grant(patient=make_patient(), perms=["view_patient"],
                         user=scene.nurse.user, actor=scene.coordinator.user)  # fmt: skip
    page = nurse.get("/api/v1/patients/?page_size=1")
    assert page.status_code == 200
    first = page.json()["results"][0]
    link = page.json()["next"]
    assert link is not None
    cursor = parse_qs(urlsplit(link).query)["cursor"][0]
    # A forged one (same shape, another key) and a tampered one.
    forged = Fernet(Fernet.generate_key()).encrypt(b'{"k":["A","B",1],"r":0}').decode()
    tampered = cursor[:-8] + ("A" if cursor[-8] != "A" else "B") + cursor[-7:]

    assert first["family_name"]
    # Not readable by decoding the base64 (as DRF's cursors were).
    readable = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    assert first["family_name"].encode() not in readable
    assert nurse.get("/api/v1/patients/", {"cursor": cursor}).status_code == 200
    assert nurse.get("/api/v1/patients/", {"cursor": forged}).status_code == 404
    assert nurse.get("/api/v1/patients/", {"cursor": tampered}).status_code == 404
