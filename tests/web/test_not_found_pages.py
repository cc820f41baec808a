"""A page not found (or not the visitor's to see) is the site's own page, in the visitor's
language, with a way back; for a practitioner who may break the glass on a patient's page,
the way to do it. DEBUG on or off for the web UI's pages."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client, override_settings

from directory.models import Practitioner
from patients.services import patient_portal_account_create
from tests.coordination.conftest import Scene

PASSWORD = "synthetic-pass-404"


def login(username: str) -> Client:
    client = Client()
    response = client.post("/login/", {"username": username, "password": PASSWORD})
    assert response.status_code == 302
    return client


def practitioner_login(practitioner: Practitioner, *, break_glass: bool = False) -> Client:
    user = practitioner.user
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    if break_glass:
        user.user_permissions.add(Permission.objects.get(codename="break_glass_patient"))
    return login(user.username)


def without_tokens(response: Any, patient_id: int) -> str:
    page = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", response.content.decode())
    return page.replace(f"/patients/{patient_id}/", "/patients/ID/")


def test_a_patient_outside_my_care_team_is_a_french_page_in_the_site_layout(scene: Scene):
    client = practitioner_login(scene.outsider)

    response = client.get(f"/patients/{scene.patient.pk}/")

    page = response.content.decode()
    assert response.status_code == 404
    assert '<html lang="fr">' in page
    assert "Page introuvable" in page
    assert 'href="/worklist/">Retour à la liste de travail</a>' in page
    assert '<a class="brand" href="/">Parcours</a>' in page  # the site's header
    assert '<a href="/alerts/">Alertes</a>' in page
    assert scene.outsider.user.get_full_name() in page  # still signed in
    assert "break-glass" not in page  # not allowed to break the glass: not offered


def test_a_practitioner_who_may_break_the_glass_is_offered_to_on_existing_and_missing_patients(
    scene: Scene,
):
    client = practitioner_login(scene.outsider, break_glass=True)
    missing = scene.patient.pk + 1000

    existing = client.get(f"/patients/{scene.patient.pk}/")
    absent = client.get(f"/patients/{missing}/")

    assert existing.status_code == absent.status_code == 404
    assert f'href="/patients/{scene.patient.pk}/break-glass/"' in existing.content.decode()
    assert f'href="/patients/{missing}/break-glass/"' in absent.content.decode()
    # Nothing but the address (and the forms' CSRF tokens) tells the two apart.
    assert without_tokens(existing, scene.patient.pk) == without_tokens(absent, missing)


def test_the_break_the_glass_entry_is_only_on_patient_pages(scene: Scene):
    client = practitioner_login(scene.outsider, break_glass=True)

    page = client.get("/tasks/999999/").content.decode()

    assert "break-glass" not in page


def test_the_page_is_english_for_an_english_user(scene: Scene):
    client = practitioner_login(scene.outsider)
    client.post("/i18n/setlang/", {"language": "en", "next": "/worklist/"})

    page = client.get(f"/patients/{scene.patient.pk}/").content.decode()

    assert '<html lang="en">' in page
    assert "Page not found" in page
    assert "Back to the worklist" in page


def test_a_patient_account_is_sent_back_to_its_portal(scene: Scene):
    patient_portal_account_create(
        patient=scene.patient,
        email="portal-404@example.invalid",
        username="portal-404",
        password=PASSWORD,
        actor=None,
    )
    client = login("portal-404")

    page = client.get("/worklist/").content.decode()

    assert 'href="/portal/">Retour à mon parcours de soins</a>' in page
    assert "/worklist/" not in page.replace('value="/worklist/"', "")


def test_an_unknown_address_is_the_site_page_for_a_signed_in_practitioner(scene: Scene):
    client = practitioner_login(scene.nurse)

    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert 'href="/worklist/">Retour à la liste de travail</a>' in response.content.decode()


@pytest.mark.parametrize("url", ["/patients/{id}/", "/tasks/999999/", "/pathways/nope/1/"])
def test_with_debug_on_the_web_pages_still_answer_the_site_page(scene: Scene, url: str):
    client = practitioner_login(scene.outsider, break_glass=True)

    with override_settings(DEBUG=True):
        response = client.get(url.format(id=scene.patient.pk))

    page = response.content.decode()
    assert response.status_code == 404
    assert "Page introuvable" in page
    assert "Raised by:" not in page  # Django's technical 404
    assert "Django tried these URL patterns" not in page


def test_with_debug_on_an_address_matching_no_page_keeps_the_developer_page(scene: Scene):
    client = practitioner_login(scene.nurse)

    with override_settings(DEBUG=True):
        response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert "Django tried these URL patterns" in response.content.decode()
