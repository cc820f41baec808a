from __future__ import annotations

import textwrap

from django.contrib.auth.models import Permission
from django.test import Client

from coordination.models import CarePathway
from coordination.services import care_pathway_cancel
from tests.coordination.conftest import Scene, make_patient, make_practitioner
from workflows.models import PathwayDefinition

BROKEN = textwrap.dedent(
    """\
    key: broken-test
    version: 1
    title: Broken
    roles: [gp]
    initial: start
    states:
      start:
        on:
          go: nowhere
      done: {final: true}
    """
)


def manager_client(db: None) -> Client:
    practitioner = make_practitioner("coordinator")
    practitioner.user.user_permissions.add(Permission.objects.get(codename="add_pathwaydefinition"))
    client = Client()
    client.force_login(practitioner.user)
    return client


def test_uploading_a_broken_pathway_shows_the_problem_next_to_its_line(db):
    client = manager_client(db)

    response = client.post("/pathways/upload/", {"source": BROKEN})

    body = response.content.decode()
    assert response.status_code == 400
    assert 'class="problem error" data-line="9"' in body
    assert "nowhere" in body
    assert not PathwayDefinition.objects.filter(key="broken-test").exists()


def test_uploading_a_valid_pathway_stores_a_draft(db):
    client = manager_client(db)
    source = BROKEN.replace("go: nowhere", "go: done")

    response = client.post("/pathways/upload/", {"source": source})

    definition = PathwayDefinition.objects.get(key="broken-test")
    assert response.status_code == 302
    assert response["Location"] == "/pathways/broken-test/1/"
    assert definition.status == "draft"


def test_uploading_without_the_permission_is_refused_and_stores_nothing(db):
    client = Client()
    client.force_login(make_practitioner("nurse").user)

    response = client.post("/pathways/upload/", {"source": BROKEN.replace("nowhere", "done")})

    assert response.status_code == 403
    assert not PathwayDefinition.objects.filter(key="broken-test").exists()


def test_care_team_member_starts_a_pathway_from_the_patient_page(scene: Scene):
    client = Client()
    client.force_login(scene.gp.user)
    care_pathway_cancel(pathway=scene.pathway, user=None)  # one care-test at a time

    response = client.post(f"/patients/{scene.patient.pk}/start/", {"key": "care-test"})

    assert response.status_code == 302
    assert CarePathway.objects.filter(patient=scene.patient).count() == 2


def test_starting_a_pathway_the_patient_already_follows_shows_why_and_starts_nothing(
    scene: Scene,
):
    client = Client()
    client.force_login(scene.gp.user)

    response = client.post(f"/patients/{scene.patient.pk}/start/", {"key": "care-test"})

    assert response.status_code == 409
    assert (
        "« Care test » n’est pas démarré : le patient le suit déjà."
    ) in response.content.decode()
    assert f'data-pathway="{scene.pathway.pk}"' in response.content.decode()
    assert CarePathway.objects.filter(patient=scene.patient).count() == 1


def test_starting_a_pathway_for_an_unrelated_patient_is_not_found(scene: Scene):
    other = make_patient()
    client = Client()
    client.force_login(scene.gp.user)

    response = client.post(f"/patients/{other.pk}/start/", {"key": "care-test"})

    assert response.status_code == 404
    assert not CarePathway.objects.filter(patient=other).exists()
