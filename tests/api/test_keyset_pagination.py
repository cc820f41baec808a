"""Keyset cursors reach every row of a long list whose first ordering fields have few
values (tasks by risk rank and priority; alerts by the patient's risk, priority and their
task's due time), in both directions, NULLs included, with no offset cap."""

from __future__ import annotations

import base64
import datetime as dt
from base64 import b64encode
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.fernet import Fernet
from django.utils import timezone
from rest_framework.test import APIClient

from coordination import task_states
from coordination.models import RISK_RANK_NONE, AlertRecord, Task, risk_rank
from coordination.services import care_pathway_start
from coordination.services.triage import pathway_risk_apply
from directory.services import care_team_member_add
from patients.services import patient_access_grant
from tests.coordination.conftest import Scene, make_patient

# Few triage ranks, so that every rank holds long runs of ties.
RANKS = (risk_rank("high", 5), risk_rank("medium", 3), RISK_RANK_NONE)

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
            risk_rank=RANKS[i % 5 % 3],
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
    rows = Task.objects.values_list("id", "risk_rank", "priority_rank", "due_at")
    return [
        i for i, *_ in sorted(rows, key=lambda r: (r[1], r[2], r[3] is None, r[3] or far, r[0]))
    ]


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


# --- the alert inbox ----------------------------------------------------------------------

ALERTS = 90


@pytest.fixture
def inbox(scene: Scene) -> APIClient:
    """Three patients of the nurse at three risks, each with alerts of every priority, a
    third without a task, the others on tasks with ties on the due time."""
    now = timezone.now()
    patients = [(scene.patient, scene.pathway)]
    for _ in range(2):
        patient = make_patient()
        care_team_member_add(patient=patient, role="nurse", practitioner=scene.nurse, actor=None)
        pathway = care_pathway_start(patient=patient, key="care-test", user=None)
        patients.append((patient, pathway))
    for (_, pathway), (band, score) in zip(patients, [("medium", 4), ("high", 6), ("low", 0)],
                                           strict=True):  # fmt: skip
        pathway_risk_apply(pathway.pk, score, band, now)
    tasks = list(Task.objects.filter(patient__in=[p for p, _ in patients]).order_by("pk"))
    first_task = {p.pk: next(t for t in tasks if t.patient_id == p.pk) for p, _ in patients}
    AlertRecord.objects.bulk_create(
        AlertRecord(
            care_pathway=patients[i % 3][1],
            patient=patients[i % 3][0],
            name=f"alert-{i}",
            kind="condition",
            state="assessment",
            priority=list(task_states.PRIORITY_RANK)[i % 4],
            task=None if i % 3 == 1 else first_task[patients[i % 3][0].pk],
            raised_at=now,
            last_seen_at=now,
        )
        for i in range(ALERTS)
    )
    Task.objects.filter(pk__in=[t.pk for t in tasks[::2]]).update(due_at=None)
    client = APIClient()
    client.force_authenticate(scene.nurse.user)
    return client


def _expected_inbox() -> list[int]:
    far = timezone.now() + dt.timedelta(days=36500)
    ranks = {
        pathway_id: risk_rank(band, score)
        for pathway_id, band, score in AlertRecord.objects.values_list(
            "care_pathway_id", "care_pathway__risk_band", "care_pathway__risk_score"
        )
    }
    rows = [
        (ranks[a.care_pathway_id], task_states.PRIORITY_RANK[a.priority],
         a.task.due_at if a.task else None, a.pk)
        for a in AlertRecord.objects.select_related("task")
    ]  # fmt: skip
    return [r[3] for r in sorted(rows, key=lambda r: (r[0], r[1], r[2] is None, r[2] or far, r[3]))]


def test_alert_pages_reach_every_alert_once_in_triage_order_both_ways(inbox: APIClient):
    expected = _expected_inbox()
    assert len(expected) == ALERTS

    forward = _walk(inbox, "/api/v1/alerts/?page_size=7", "next")
    last = "/api/v1/alerts/?page_size=7"
    while (following := inbox.get(last).json()["next"]) is not None:
        last = following
    body = inbox.get(last).json()
    backward = [a["id"] for a in body["results"]]
    while body["previous"]:
        body = inbox.get(body["previous"]).json()
        backward = [a["id"] for a in body["results"]] + backward

    assert forward == expected
    assert backward == expected


def test_a_risk_change_between_pages_neither_repeats_nor_skips_the_other_rows(
    inbox: APIClient,
):
    before = _expected_inbox()
    first = inbox.get("/api/v1/alerts/?page_size=10").json()
    shown = [a["id"] for a in first["results"]]
    # The first page's patient drops to low: its alerts move behind the cursor's key.
    moved = AlertRecord.objects.get(pk=shown[0]).care_pathway_id
    pathway_risk_apply(moved, 0, "low", timezone.now())
    unmoved = set(
        AlertRecord.objects.exclude(care_pathway_id=moved).values_list("pk", flat=True)
    ) - set(shown)

    rest = _walk(inbox, first["next"], "next")

    assert shown == before[:10]
    assert len(rest) == len(set(rest))
    assert unmoved <= set(rest)
