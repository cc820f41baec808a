"""An operator's first day without a Python shell: `manage.py onboard` makes an organisation,
its first care coordinator with a coordinator's rights, and a platform; the coordinator then
logs in through the real login form and works."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from api.models import PlatformAccount
from directory.models import Organization
from directory.services.roles import COORDINATOR_PERMISSIONS
from patients.models import Patient
from tests.api.test_security_accounts import csrf, web_login

pytestmark = pytest.mark.django_db

ARGS = [
    "--organization", "Synthetic health centre", "--kind", "health_centre",
    "--coordinator", "coord.synthetic", "--email", "coord@synthetic.invalid",
    "--given-name", "Synthetic", "--family-name", "Coordinator",
]  # fmt: skip


def onboard(*extra: str) -> str:
    out = io.StringIO()
    call_command("onboard", *ARGS, *extra, stdout=out)
    return out.getvalue()


def printed(output: str, label: str) -> str:
    found = re.search(rf"^{re.escape(label)}: (\S+)$", output, re.M)
    assert found is not None, output
    return found[1]


def test_the_coordinator_logs_in_with_the_printed_password_and_has_a_coordinator_s_rights():
    output = onboard()
    user = get_user_model().objects.get(username="coord.synthetic")

    assert Organization.objects.get(pk=printed(output, "organisation id")).kind == "health_centre"
    assert user.practitioner.profession == "coordinator"
    assert all(user.has_perm(perm) for perm in COORDINATOR_PERMISSIONS)
    assert not user.has_perm("patients.break_glass_patient")

    client = web_login(user, printed(output, "coordinator's password"))
    library = client.get("/pathways/upload/")  # the upload form: managers only
    assert library.status_code == 200
    created = client.post(
        "/api/v1/patients/",
        {"family_name": "Synthetique", "given_names": "Onboarded", "birth_date": "1970-02-03",
         "sex": "male"},
        content_type="application/json", headers={"X-CSRFToken": csrf(client)["HTTP_X_CSRFTOKEN"]},
    )  # fmt: skip
    assert created.status_code == 201, created.content
    # Registered by a coordinator: in its care team, so it reads the patient back.
    assert client.get(f"/api/v1/patients/{created.json()['id']}/").status_code == 200


def test_a_platform_is_made_with_its_credentials_shown_once():
    output = onboard("--platform", "synthetic-region", "--scope", "patients:write")

    account = PlatformAccount.objects.get()
    assert account.scopes == ["patients:write"]
    assert account.organization.name == "Synthetic health centre"
    assert printed(output, "client_id")
    assert printed(output, "client_secret")


def test_a_refused_part_creates_nothing():
    get_user_model().objects.create_user(username="coord.synthetic")
    before = (Organization.objects.count(), Patient.objects.count())

    with pytest.raises(CommandError, match="username: already used"):
        onboard()

    assert (Organization.objects.count(), Patient.objects.count()) == before


def test_a_platform_without_a_scope_is_refused_before_anything_is_made():
    with pytest.raises(CommandError, match="--scope"):
        onboard("--platform", "nothing")

    assert not Organization.objects.exists()
