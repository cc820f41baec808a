"""The care team's pages show the identity status wherever they show who the patient is, and
label an INS that is not qualified as not to be used for exchange (the national INS
referential: only a qualified identity's INS may reference shared health data)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from coordination.models import Task
from tests.api.test_ins_outlets import STATUSES, give_ins
from tests.coordination.conftest import Scene
from tests.coordination.triage_scene import TriageScene, build_triage_scene
from tests.web.test_triage_pages import form_login

WARNING_FR = "INS non qualifiée — ne pas utiliser pour l'échange"
WARNING_EN = "INS not qualified — do not use for exchange"


def logged_in(user, language: str = "fr") -> Client:
    client = Client()
    client.force_login(user)
    client.post("/i18n/setlang/", {"language": language, "next": "/worklist/"})
    return client


def ins_line(page: str) -> str:
    match = re.search(r'<dd id="patient-ins">(.*?)</dd>', page, re.S)
    assert match is not None, page[:2000]
    return match.group(1)


def statuses_shown(fragment: str) -> list[str]:
    return re.findall(r'data-identity-status="([a-z]+)"', fragment)


@pytest.mark.parametrize("status", STATUSES)
def test_the_patient_page_shows_the_ins_with_its_status_and_a_warning_unless_qualified(
    scene: Scene, status: str
):
    nir = give_ins(scene.patient, status)

    page = logged_in(scene.nurse.user).get(f"/patients/{scene.patient.pk}/").content.decode()

    line = ins_line(page)
    assert nir in line
    assert statuses_shown(line) == [status]
    assert (WARNING_FR in line) is (status != "qualified")


def test_the_status_is_named_in_words_in_french(scene: Scene):
    give_ins(scene.patient, "recovered")

    page = logged_in(scene.nurse.user).get(f"/patients/{scene.patient.pk}/").content.decode()

    assert "Identité : récupérée" in ins_line(page)


def test_the_warning_in_english(scene: Scene):
    give_ins(scene.patient, "validated")

    page = logged_in(scene.nurse.user, "en").get(f"/patients/{scene.patient.pk}/")

    line = ins_line(page.content.decode())
    assert "Identity: validated" in line
    assert WARNING_EN in line


def test_a_patient_without_ins_shows_its_status_and_no_warning(scene: Scene):
    page = logged_in(scene.nurse.user).get(f"/patients/{scene.patient.pk}/").content.decode()

    line = ins_line(page)
    assert line.startswith("—")
    assert statuses_shown(line) == ["provisional"]
    assert WARNING_FR not in line


@pytest.mark.parametrize("status", STATUSES)
def test_the_task_page_shows_the_patient_s_identity_status(scene: Scene, status: str):
    give_ins(scene.patient, status)
    task = Task.objects.get(care_pathway=scene.pathway, code="visit")

    page = logged_in(scene.nurse.user).get(f"/tasks/{task.pk}/").content.decode()

    patient_line = page[page.index(f"/patients/{scene.patient.pk}/") :].split("</dd>")[0]
    assert statuses_shown(patient_line) == [status]


def _rows(page: str, attribute: str) -> dict[int, str]:
    """Each table row's id (data-<attribute>) and its markup."""
    return {
        int(key): row
        for key, row in re.findall(rf'<tr[^>]*data-{attribute}="(\d+)"[^>]*>(.*?)</tr>', page, re.S)
    }


@pytest.fixture
def triage(care_test: None) -> TriageScene:
    scene = build_triage_scene()
    for n, (name, status) in enumerate(zip("ABCDE", [*STATUSES, "qualified"], strict=True), 1):
        give_ins(scene.patients[name], status, n=n)
    return scene


def test_the_worklist_and_alert_inbox_show_each_patient_s_identity_status(triage: TriageScene):
    client = form_login(triage)

    worklist = _rows(client.get("/worklist/").content.decode(), "task")
    inbox = _rows(client.get("/alerts/").content.decode(), "alert")

    for name in "ABCDE":
        triage.patients[name].refresh_from_db()
    status_of = {p.pk: p.identity_status for p in triage.patients.values()}
    tasks = {t.pk: t.patient_id for t in triage.tasks.values()}
    alerts = {a.pk: a.patient_id for a in triage.alerts.values()}
    assert set(worklist) >= set(tasks)
    assert set(inbox) == set(alerts)
    assert {pk: statuses_shown(worklist[pk]) for pk in tasks} == {
        pk: [status_of[patient]] for pk, patient in tasks.items()
    }
    assert {pk: statuses_shown(inbox[pk]) for pk in alerts} == {
        pk: [status_of[patient]] for pk, patient in alerts.items()
    }
    assert set(status_of.values()) == set(STATUSES)
