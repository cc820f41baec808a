from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client

from tests.coordination.conftest import make_practitioner
from workflows.shipped import library_files


@pytest.fixture
def client(db: None) -> Client:
    """A practitioner's: the library is for the care team (anonymous visitors are sent to
    log in, unless PARCOURS_PUBLIC_LIBRARY opens it)."""
    logged_in = Client()
    logged_in.force_login(make_practitioner("gp").user)
    return logged_in


@pytest.mark.django_db
def test_library_page_lists_published_pathways(client):
    call_command("load_pathway", *[str(p) for p in library_files()], stdout=None)

    response = client.get("/pathways/")

    assert response.status_code == 200
    assert b"/pathways/hf-telemonitoring/2/" in response.content


@pytest.mark.django_db
def test_pathway_page_shows_its_diagram(client):
    call_command("load_pathway", *[str(p) for p in library_files()], stdout=None)

    response = client.get("/pathways/return-home/2/")
    diagram = client.get("/pathways/return-home/2/diagram.svg")

    assert response.status_code == 200
    assert b"<svg" in response.content
    assert diagram["Content-Type"] == "image/svg+xml"
    assert diagram.content.startswith(b"<svg")


@pytest.mark.django_db
def test_unknown_pathway_version_is_not_found(client):
    assert client.get("/pathways/return-home/99/").status_code == 404
