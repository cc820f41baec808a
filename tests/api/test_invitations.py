"""Invitations: a platform creates a practitioner, or registers a patient, through the API
with its real OAuth2 token, asks for an invitation; the e-mail carries a link; the person
opens it, chooses a password once, is signed in, and later logs in through the login form.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client, override_settings
from django.utils import timezone

from api.services.platforms import PlatformClient
from directory.models import Invitation, Organization, Practitioner
from directory.services import organization_create
from directory.services.accounts import account_deactivate
from directory.services.invitations import token_digest
from patients.models import AuditEvent, Patient
from tests.api.test_platform_oauth import make_platform, obtain_token
from tests.api.test_security_accounts import web_login

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "synthetic-Invited-pass-1"
PRACTITIONER = {
    "username": "nurse.invited", "given_name": "Synthetic", "family_name": "Invited",
    "profession": "nurse", "email": "nurse.invited@synthetic.invalid",
}  # fmt: skip
PATIENT = {
    "family_name": "Synthetique", "given_names": "Portal", "birth_date": "1961-04-05",
    "sex": "female", "email": "portal.patient@synthetic.invalid",
}  # fmt: skip
LINK = re.compile(r"(https?://\S+/invitation/([A-Za-z0-9_-]+)/)")


@pytest.fixture
def organization(db: None) -> Organization:
    return organization_create(name="Synthetic region", kind="platform", actor=None)


@pytest.fixture
def registrar(organization: Organization) -> PlatformClient:
    return make_platform(
        organization,
        ["directory:read", "directory:write", "patients:read", "patients:write"],
        slug="registrar",
    )


def link_in(message: mail.EmailMessage) -> tuple[str, str]:
    found = LINK.search(str(message.body))
    assert found is not None, message.body
    return found[1], found[2]


def invite(api: Any, url: str, body: dict[str, Any] | None = None, **extra: Any) -> Any:
    return api.post(url, body or {}, format="json", **extra)


def accept(link: str, password: str = NEW_PASSWORD) -> tuple[Client, Any]:
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(link)
    assert page.status_code == 200, page.content
    answer = browser.post(
        link,
        {"new_password1": password, "new_password2": password,
         "csrfmiddlewaretoken": browser.cookies["csrftoken"].value},
    )  # fmt: skip
    return browser, answer


def test_a_practitioner_created_by_a_platform_sets_a_password_from_the_invitation_and_logs_in(
    registrar: PlatformClient, django_capture_on_commit_callbacks
):
    api = obtain_token(registrar)
    created = api.post("/api/v1/practitioners/", PRACTITIONER, format="json")
    assert created.status_code == 201, created.content
    practitioner_id = created.json()["id"]

    with django_capture_on_commit_callbacks(execute=True):
        answer = invite(api, f"/api/v1/practitioners/{practitioner_id}/invitation/")

    assert answer.status_code == 202, answer.content
    body = answer.json()
    invitation = Invitation.objects.get()
    assert body == {
        "id": invitation.pk,
        "kind": "practitioner",
        "expires_at": body["expires_at"],
    }
    assert dt.datetime.fromisoformat(body["expires_at"]) == invitation.expires_at
    assert invitation.expires_at - invitation.created_at == settings.INVITATION_LIFETIME
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["nurse.invited@synthetic.invalid"]
    assert message.subject == "Votre compte Parcours : choisissez votre mot de passe"
    link, token = link_in(message)
    assert token not in answer.content.decode()  # the caller never sees the token
    assert invitation.token_hash == token_digest(token)  # only its digest is stored
    assert token not in str(Invitation.objects.values_list().get())

    browser, done = accept(link)

    assert done.status_code == 302
    assert done["Location"] == "/"
    assert browser.get("/").headers["Location"] == "/worklist/"  # signed in, a practitioner
    assert browser.get("/worklist/").status_code == 200
    invitation.refresh_from_db()
    assert invitation.used_at is not None
    user = get_user_model().objects.get(username="nurse.invited")
    web_login(user, NEW_PASSWORD)  # the real login form, with the new password


def test_an_invitation_link_works_once(
    registrar: PlatformClient, django_capture_on_commit_callbacks
):
    practitioner = _practitioner_by(registrar)
    with django_capture_on_commit_callbacks(execute=True):
        invite(obtain_token(registrar), f"/api/v1/practitioners/{practitioner}/invitation/")
    link, _ = link_in(mail.outbox[0])
    accept(link)
    password = get_user_model().objects.get(username="nurse.invited").password

    again = Client().get(link)
    posted = Client().post(
        link, {"new_password1": "another-Pass-99", "new_password2": "another-Pass-99"}
    )

    assert again.status_code == 410
    assert posted.status_code == 410
    assert get_user_model().objects.get(username="nurse.invited").password == password


def test_an_expired_invitation_is_refused_and_changes_nothing(
    registrar: PlatformClient, django_capture_on_commit_callbacks
):
    practitioner = _practitioner_by(registrar)
    with django_capture_on_commit_callbacks(execute=True):
        invite(obtain_token(registrar), f"/api/v1/practitioners/{practitioner}/invitation/")
    link, _ = link_in(mail.outbox[0])
    later = timezone.now() + settings.INVITATION_LIFETIME + dt.timedelta(minutes=1)

    with time_machine.travel(later, tick=False):
        page = Client().get(link)
        posted = Client().post(link, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    assert page.status_code == 410
    assert posted.status_code == 410
    assert "Invitation" in page.content.decode() or "invitation" in page.content.decode()
    assert not get_user_model().objects.get(username="nurse.invited").has_usable_password()
    assert Invitation.objects.get().used_at is None


def test_an_unknown_token_is_404():
    page = Client().get("/invitation/not-a-token-anyone-was-given/")

    assert page.status_code == 404
    assert "invitation" in page.content.decode().lower()


def test_a_new_invitation_revokes_the_earlier_one(
    registrar: PlatformClient, django_capture_on_commit_callbacks
):
    practitioner = _practitioner_by(registrar)
    api = obtain_token(registrar)
    with django_capture_on_commit_callbacks(execute=True):
        invite(api, f"/api/v1/practitioners/{practitioner}/invitation/")
        invite(api, f"/api/v1/practitioners/{practitioner}/invitation/", {"language": "en"})
    first, _ = link_in(mail.outbox[0])
    second, _ = link_in(mail.outbox[1])

    assert Client().get(first).status_code == 410
    assert mail.outbox[1].subject == "Your Parcours account: set your password"
    _, done = accept(second)
    assert done.status_code == 302


def test_a_password_the_validators_refuse_leaves_the_invitation_pending(
    registrar: PlatformClient, django_capture_on_commit_callbacks
):
    practitioner = _practitioner_by(registrar)
    with django_capture_on_commit_callbacks(execute=True):
        invite(obtain_token(registrar), f"/api/v1/practitioners/{practitioner}/invitation/")
    link, _ = link_in(mail.outbox[0])

    _, refused = accept(link, password="12345678")

    assert refused.status_code == 200
    assert refused.context["form"].errors["new_password2"]
    assert Invitation.objects.get().used_at is None
    _, done = accept(link)
    assert done.status_code == 302


def test_an_account_in_use_is_not_invited_and_gets_no_e_mail(
    registrar: PlatformClient, django_capture_on_commit_callbacks
):
    practitioner = _practitioner_by(registrar)
    user = Practitioner.objects.get(pk=practitioner).user
    user.set_password("synthetic-Existing-1")
    user.save(update_fields=["password"])

    with django_capture_on_commit_callbacks(execute=True):
        answer = invite(
            obtain_token(registrar), f"/api/v1/practitioners/{practitioner}/invitation/"
        )

    assert answer.status_code == 409
    assert "password reset" in answer.json()["detail"] or "resets" in answer.json()["detail"]
    assert mail.outbox == []
    assert not Invitation.objects.exists()


def test_a_platform_s_service_account_is_not_invited(
    registrar: PlatformClient, organization: Organization
):
    other = make_platform(organization, ["directory:read"], slug="other")

    answer = invite(
        obtain_token(registrar), f"/api/v1/practitioners/{other.practitioner.pk}/invitation/"
    )

    assert answer.status_code == 409
    assert not Invitation.objects.exists()


def test_inviting_a_practitioner_needs_directory_write(
    organization: Organization, registrar: PlatformClient
):
    practitioner = _practitioner_by(registrar)
    reader = make_platform(organization, ["directory:read"], slug="reader")

    answer = invite(obtain_token(reader), f"/api/v1/practitioners/{practitioner}/invitation/")

    assert answer.status_code == 403
    assert answer.json()["required_scopes"] == ["directory:write"]
    assert not Invitation.objects.exists()


def test_deactivating_the_account_kills_its_pending_invitation(
    registrar: PlatformClient, django_capture_on_commit_callbacks
):
    practitioner = _practitioner_by(registrar)
    with django_capture_on_commit_callbacks(execute=True):
        invite(obtain_token(registrar), f"/api/v1/practitioners/{practitioner}/invitation/")
    link, _ = link_in(mail.outbox[0])

    account_deactivate(user_id=Practitioner.objects.get(pk=practitioner).user_id, actor=None)

    assert Client().get(link).status_code == 410


def test_an_idempotency_key_replays_the_answer_without_a_second_invitation(
    registrar: PlatformClient, django_capture_on_commit_callbacks
):
    practitioner = _practitioner_by(registrar)
    api = obtain_token(registrar)
    url = f"/api/v1/practitioners/{practitioner}/invitation/"

    with django_capture_on_commit_callbacks(execute=True):
        first = invite(api, url, headers={"Idempotency-Key": "invite-1"})
        second = invite(api, url, headers={"Idempotency-Key": "invite-1"})

    assert first.status_code == second.status_code == 202
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Invitation.objects.count() == 1
    assert len(mail.outbox) == 1


def test_unknown_body_fields_are_refused(registrar: PlatformClient):
    practitioner = _practitioner_by(registrar)

    answer = invite(
        obtain_token(registrar),
        f"/api/v1/practitioners/{practitioner}/invitation/",
        {"email": "elsewhere@synthetic.invalid"},
    )

    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "email"
    assert not Invitation.objects.exists()


def _practitioner_by(registrar: PlatformClient) -> int:
    created = obtain_token(registrar).post("/api/v1/practitioners/", PRACTITIONER, format="json")
    assert created.status_code == 201, created.content
    return int(created.json()["id"])


# --- patients -------------------------------------------------------------------------------


def _patient_by(registrar: PlatformClient, **changes: Any) -> int:
    created = obtain_token(registrar).post(
        "/api/v1/patients/", {**PATIENT, **changes}, format="json"
    )
    assert created.status_code == 201, created.content
    return int(created.json()["id"])


def test_a_patient_registered_by_a_platform_gets_a_portal_account_from_the_invitation(
    registrar: PlatformClient, django_capture_on_commit_callbacks
):
    patient_id = _patient_by(registrar)

    with django_capture_on_commit_callbacks(execute=True):
        answer = invite(
            obtain_token(registrar), f"/api/v1/patients/{patient_id}/portal-invitation/"
        )

    assert answer.status_code == 202, answer.content
    assert answer.json()["kind"] == "patient_portal"
    patient = Patient.objects.get(pk=patient_id)
    assert patient.user is not None
    assert patient.user.username == "portal.patient@synthetic.invalid"
    assert not patient.user.has_usable_password()
    assert mail.outbox[0].to == ["portal.patient@synthetic.invalid"]
    assert (
        mail.outbox[0].subject == "Votre portail patient Parcours : choisissez votre mot de passe"
    )
    audited = AuditEvent.objects.filter(patient_id=patient_id, resource_type="PortalInvitation")
    assert [(e.action, e.entry_point, e.actor_id) for e in audited] == [
        ("update", "rest", registrar.practitioner.user_id)
    ]
    link, _ = link_in(mail.outbox[0])

    browser, done = accept(link)

    assert done.status_code == 302
    assert browser.get("/").headers["Location"] == "/portal/"
    assert browser.get("/portal/").status_code == 200
    assert AuditEvent.objects.filter(
        patient_id=patient_id, resource_type="PortalInvitation", actor_id=patient.user_id
    ).exists()
    web_login(patient.user, NEW_PASSWORD)
    assert Client().get(link).status_code == 410


def test_the_e_mail_given_in_the_body_is_used_when_the_patient_has_none(
    registrar: PlatformClient, django_capture_on_commit_callbacks
):
    patient_id = _patient_by(registrar, email="")

    with django_capture_on_commit_callbacks(execute=True):
        answer = invite(
            obtain_token(registrar),
            f"/api/v1/patients/{patient_id}/portal-invitation/",
            {"email": "given@synthetic.invalid", "language": "en"},
        )

    assert answer.status_code == 202, answer.content
    assert mail.outbox[0].to == ["given@synthetic.invalid"]
    assert mail.outbox[0].subject == "Your Parcours patient portal: set your password"
    assert (
        get_user_model().objects.get(patient_record__pk=patient_id).email
        == "given@synthetic.invalid"
    )


def test_a_patient_without_an_e_mail_is_a_409_and_nothing_is_created(registrar: PlatformClient):
    patient_id = _patient_by(registrar, email="")

    answer = invite(obtain_token(registrar), f"/api/v1/patients/{patient_id}/portal-invitation/")

    assert answer.status_code == 409
    assert "email" in answer.json()["detail"]
    assert Patient.objects.get(pk=patient_id).user_id is None
    assert not Invitation.objects.exists()


def test_a_portal_account_in_use_is_a_409(
    registrar: PlatformClient, django_capture_on_commit_callbacks
):
    patient_id = _patient_by(registrar)
    api = obtain_token(registrar)
    with django_capture_on_commit_callbacks(execute=True):
        invite(api, f"/api/v1/patients/{patient_id}/portal-invitation/")
    accept(link_in(mail.outbox[0])[0])

    answer = invite(api, f"/api/v1/patients/{patient_id}/portal-invitation/")

    assert answer.status_code == 409
    assert Invitation.objects.count() == 1


def test_another_platform_s_patient_is_404_and_nothing_changes(
    registrar: PlatformClient, organization: Organization
):
    patient_id = _patient_by(registrar)
    other = make_platform(organization, ["patients:read", "patients:write"], slug="other")

    answer = invite(obtain_token(other), f"/api/v1/patients/{patient_id}/portal-invitation/")

    assert answer.status_code == 404
    assert Patient.objects.get(pk=patient_id).user_id is None
    assert not Invitation.objects.exists()
    assert mail.outbox == []
    refused = AuditEvent.objects.filter(patient_id=patient_id, outcome="denied")
    assert refused.count() == 1


def test_a_portal_invitation_needs_patients_write(
    registrar: PlatformClient, organization: Organization
):
    patient_id = _patient_by(registrar)
    api = obtain_token(registrar, "patients:read")

    answer = invite(api, f"/api/v1/patients/{patient_id}/portal-invitation/")

    assert answer.status_code == 403
    assert answer.json()["required_scopes"] == ["patients:write"]


def test_a_bad_e_mail_is_a_400_naming_it(registrar: PlatformClient):
    patient_id = _patient_by(registrar)

    answer = invite(
        obtain_token(registrar),
        f"/api/v1/patients/{patient_id}/portal-invitation/",
        {"email": "not an address"},
    )

    assert answer.status_code == 400
    assert [e["field"] for e in answer.json()["errors"]] == ["email"]
    assert Patient.objects.get(pk=patient_id).user_id is None


class UnreachableServer:
    """An e-mail backend whose server cannot be reached."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def send_messages(self, messages: Any) -> int:
        raise ConnectionRefusedError("synthetic: the e-mail server refused the connection")


def test_an_e_mail_server_that_cannot_be_reached_is_a_503_naming_it(
    transactional_db: None, settings: Any
):
    organization = organization_create(name="Synthetic region", kind="platform", actor=None)
    registrar = make_platform(organization, ["directory:read", "directory:write"], slug="mail")
    practitioner = _practitioner_by(registrar)
    settings.EMAIL_BACKEND = f"{__name__}.UnreachableServer"

    answer = invite(obtain_token(registrar), f"/api/v1/practitioners/{practitioner}/invitation/")

    assert answer.status_code == 503
    assert answer.json()["type"].endswith("/email-not-sent")
    assert "ConnectionRefusedError" in answer.json()["detail"]


@pytest.mark.parametrize("keyed", [False, True], ids=["plain", "idempotency-key"])
def test_an_invitation_whose_e_mail_fails_leaves_nothing_behind_and_can_be_asked_again(
    transactional_db: None, settings: Any, keyed: bool
):
    """With or without an Idempotency-Key: a 503, no invitation, no portal account created,
    no audit record; once the mail server is back the same request (same key) succeeds."""
    organization = organization_create(name="Synthetic region", kind="platform", actor=None)
    registrar = make_platform(organization, ["patients:read", "patients:write"], slug="mail-retry")
    api = obtain_token(registrar)
    patient = api.post("/api/v1/patients/", PATIENT, format="json").json()
    url = f"/api/v1/patients/{patient['id']}/portal-invitation/"
    headers = {"HTTP_IDEMPOTENCY_KEY": "synthetic-retry-1"} if keyed else {}
    audited = AuditEvent.objects.filter(resource_type="PortalInvitation").count()
    settings.EMAIL_BACKEND = f"{__name__}.UnreachableServer"

    failed = invite(api, url, {"email": "synthetic.retry@example.org"}, **headers)

    assert failed.status_code == 503, failed.content
    assert failed.json()["type"].endswith("/email-not-sent")
    assert Invitation.objects.count() == 0
    assert Patient.objects.get(pk=patient["id"]).user_id is None
    assert AuditEvent.objects.filter(resource_type="PortalInvitation").count() == audited

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    retried = invite(api, url, {"email": "synthetic.retry@example.org"}, **headers)

    assert retried.status_code == 202, retried.content
    assert "Idempotent-Replayed" not in retried
    assert Invitation.objects.count() == 1
    assert [m.to for m in mail.outbox] == [["synthetic.retry@example.org"]]


@pytest.mark.parametrize("psc_enabled", [True, False])
def test_a_practitioner_s_invitation_offers_pro_sante_connect_when_it_is_enabled(
    registrar: PlatformClient, django_capture_on_commit_callbacks, psc_enabled: bool
):
    api = obtain_token(registrar)
    practitioner = api.post("/api/v1/practitioners/", PRACTITIONER, format="json").json()
    patient = api.post("/api/v1/patients/", PATIENT, format="json").json()
    with django_capture_on_commit_callbacks(execute=True):
        invite(api, f"/api/v1/practitioners/{practitioner['id']}/invitation/")
        invite(api, f"/api/v1/patients/{patient['id']}/portal-invitation/")
    practitioner_link, patient_link = (link_in(message)[0] for message in mail.outbox)

    with override_settings(PSC_ENABLED=psc_enabled):
        practitioner_page = Client().get(practitioner_link).content.decode()
        patient_page = Client().get(patient_link).content.decode()

    assert ('href="/psc/login/"' in practitioner_page) is psc_enabled
    assert 'href="/psc/login/"' not in patient_page  # patients have no CPS card


def test_without_an_e_mail_server_an_invitation_is_a_503_saying_so(
    transactional_db: None, settings: Any
):
    """Production without EMAIL_URL: the invitation is not silently lost."""
    organization = organization_create(name="Synthetic region", kind="platform", actor=None)
    registrar = make_platform(organization, ["directory:read", "directory:write"], slug="mail")
    practitioner = _practitioner_by(registrar)
    settings.EMAIL_BACKEND = "config.email.UnconfiguredEmailBackend"

    answer = invite(obtain_token(registrar), f"/api/v1/practitioners/{practitioner}/invitation/")

    assert answer.status_code == 503, answer.content
    assert answer.json()["type"].endswith("/email-not-sent")
    assert "EmailNotConfiguredError" in answer.json()["detail"]
