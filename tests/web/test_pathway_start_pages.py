"""Starting a pathway from the patient page while the patient already follows it: refused,
naming the running one with a link to it; a definition that allows several asks first and
starts only once confirmed. Logged in through the login form; the service decides
(coordination.services.care_pathway_start), as for the API."""

from __future__ import annotations

import time_machine
from django.test import Client
from django.utils import timezone

from coordination.models import CarePathway, Task
from coordination.services import care_pathway_cancel, care_pathway_start
from directory.models import Practitioner
from patients.models import AuditEvent
from tests.coordination.conftest import CARE_TEST, Scene, make_patient
from workflows.actors import Actor
from workflows.services import definition_publish

PASSWORD = "synthetic-pass-start"
CONCURRENT = CARE_TEST.replace("version: 1\n", "version: 2\nallow_concurrent: true\n")


def login(practitioner: Practitioner) -> Client:
    practitioner.user.set_password(PASSWORD)
    practitioner.user.save(update_fields=["password"])
    client = Client()
    response = client.post(
        "/login/", {"username": practitioner.user.username, "password": PASSWORD}
    )
    assert response.status_code == 302
    return client


def counts(scene: Scene) -> tuple[int, int]:
    return (
        CarePathway.objects.filter(patient=scene.patient).count(),
        Task.objects.filter(care_pathway__patient=scene.patient).count(),
    )


def test_starting_a_pathway_the_patient_follows_is_refused_naming_the_running_one(scene: Scene):
    client = login(scene.gp)
    before = counts(scene)

    response = client.post(f"/patients/{scene.patient.pk}/start/", {"key": "care-test"})

    body = response.content.decode()
    assert response.status_code == 409
    assert "Parcours non démarré" in body
    assert "« Care test » n’est pas démarré : le patient le suit déjà." in body
    assert scene.pathway.instance is not None
    started = timezone.localtime(scene.pathway.instance.started_at).strftime("%d/%m/%Y")
    assert f"version 1, actif, démarré le {started} ; étape en cours : assessment depuis" in body
    link = f'href="/patients/{scene.patient.pk}/#pathway-{scene.pathway.pk}"'
    assert link in body
    assert 'name="confirm"' not in body
    assert counts(scene) == before


def test_a_running_pathway_is_named_by_its_step_title_and_since_when(scene: Scene):
    titled = CARE_TEST.replace("version: 1\n", "version: 2\n").replace(
        "  assessment:\n", "  assessment:\n    title: {fr: Évaluation initiale, en: Assessment}\n"
    )
    definition_publish(source=titled, actor=Actor(id="test"), fmt="yaml")
    care_pathway_cancel(pathway=scene.pathway, user=None)
    with time_machine.travel("2026-03-02 09:30:00+01:00", tick=False):
        running = care_pathway_start(patient=scene.patient, key="care-test", user=scene.gp.user)
    client = login(scene.nurse)

    response = client.post(f"/patients/{scene.patient.pk}/start/", {"key": "care-test"})

    body = response.content.decode()
    assert response.status_code == 409
    assert (
        "version 2, actif, démarré le 02/03/2026 ; "
        "étape en cours : Évaluation initiale depuis le 02/03/2026 09:30"
    ) in body
    assert f'data-pathway="{running.pk}"' in body
    assert f'data-pathway="{scene.pathway.pk}"' not in body  # cancelled: not running


def test_the_refusal_page_is_audited_as_a_read_of_the_running_pathway(scene: Scene):
    client = login(scene.gp)

    client.post(f"/patients/{scene.patient.pk}/start/", {"key": "care-test"})

    read = AuditEvent.objects.filter(action="read", resource_type="CarePathway").latest("pk")
    assert (read.patient_id, read.resource_id) == (scene.patient.pk, str(scene.pathway.pk))
    assert read.detail == {"pathway": "care-test", "start": "refused"}


def test_a_pathway_that_allows_several_asks_first_and_starts_nothing(scene: Scene):
    definition_publish(source=CONCURRENT, actor=Actor(id="test"), fmt="yaml")
    client = login(scene.gp)
    before = counts(scene)

    response = client.post(f"/patients/{scene.patient.pk}/start/", {"key": "care-test"})

    body = response.content.decode()
    assert response.status_code == 200
    assert "Démarrer un autre parcours ?" in body
    assert "Le patient suit déjà « Care test » :" in body
    assert f'data-pathway="{scene.pathway.pk}"' in body
    assert '<input type="hidden" name="confirm" value="care-test">' in body
    assert counts(scene) == before


def test_a_pathway_that_allows_several_starts_once_confirmed(scene: Scene):
    definition_publish(source=CONCURRENT, actor=Actor(id="test"), fmt="yaml")
    client = login(scene.gp)

    response = client.post(
        f"/patients/{scene.patient.pk}/start/",
        {"key": "care-test", "confirm": "care-test"},
        follow=True,
    )

    assert response.status_code == 200
    assert "Le parcours est démarré." in response.content.decode()
    assert CarePathway.objects.filter(patient=scene.patient).count() == 2


def test_a_confirmation_for_another_key_does_not_count(scene: Scene):
    definition_publish(source=CONCURRENT, actor=Actor(id="test"), fmt="yaml")
    client = login(scene.gp)

    response = client.post(
        f"/patients/{scene.patient.pk}/start/", {"key": "care-test", "confirm": "other"}
    )

    assert response.status_code == 200
    assert CarePathway.objects.filter(patient=scene.patient).count() == 1


def test_a_confirmed_start_of_a_pathway_that_allows_one_is_still_refused(scene: Scene):
    client = login(scene.gp)
    before = counts(scene)

    response = client.post(
        f"/patients/{scene.patient.pk}/start/", {"key": "care-test", "confirm": "care-test"}
    )

    assert response.status_code == 409
    assert counts(scene) == before


def test_a_pathway_nobody_follows_starts_at_once(scene: Scene):
    care_pathway_cancel(pathway=scene.pathway, user=None)
    client = login(scene.gp)

    response = client.post(f"/patients/{scene.patient.pk}/start/", {"key": "care-test"})

    assert response.status_code == 302
    assert response["Location"] == f"/patients/{scene.patient.pk}/"
    assert CarePathway.objects.filter(patient=scene.patient).count() == 2


def test_the_refusal_names_no_pathway_of_another_patient(scene: Scene):
    other = make_patient()
    client = login(scene.gp)

    response = client.post(f"/patients/{other.pk}/start/", {"key": "care-test"})

    assert response.status_code == 404
    assert not CarePathway.objects.filter(patient=other).exists()
