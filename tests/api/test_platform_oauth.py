"""Platforms: OAuth2 client credentials acting as a service account, seeing exactly the
patients whose care team includes it, within the scopes of its token."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import inspect
import io
from pathlib import Path
from typing import Any

import oauth2_provider
import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.db.models import Model
from django.test.utils import CaptureQueriesContext
from django.urls import get_resolver
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings
from rest_framework.test import APIClient

from api.models import ApiToken, PlatformAccount
from api.oauth2 import ParcoursOAuth2Validator, access_token_load, oauthlib_core
from api.scopes import scope_family
from api.services.platforms import PlatformClient, platform_client_create, platform_client_disable
from directory.models import Organization
from directory.services import care_team_member_add, consent_set, organization_create
from patients.models import AuditEvent, Observation, Patient
from tests.api.test_bola import _walk
from tests.coordination.conftest import Scene, make_patient

ALL_READ = ["patients:read", "pathways:read", "tasks:read", "observations:read", "audit:read"]


@pytest.fixture
def organization(db: None) -> Organization:
    return organization_create(
        name="Synthetic regional platform", kind=Organization.Kind.PLATFORM, actor=None
    )


def make_platform(
    organization: Organization, scopes: list[str], slug: str = "synth"
) -> PlatformClient:
    return platform_client_create(
        slug=slug, name=f"Synthetic platform {slug}", organization=organization, scopes=scopes,
        actor=None,
    )  # fmt: skip


@pytest.fixture
def platform(scene: Scene, organization: Organization) -> PlatformClient:
    """A platform with read scopes and observations:write, in the scene patient's care team."""
    client = make_platform(organization, [*ALL_READ, "observations:write"])
    care_team_member_add(
        patient=scene.patient, role="platform", practitioner=client.practitioner, actor=None
    )
    return client


def obtain_token(client: PlatformClient, scope: str | None = None) -> APIClient:
    return authorized(token_for(client, scope))


def token_for(client: PlatformClient, scope: str | None = None) -> str:
    basic = base64.b64encode(f"{client.client_id}:{client.client_secret}".encode()).decode()
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    response = APIClient().post("/o/token/", data, HTTP_AUTHORIZATION=f"Basic {basic}")
    assert response.status_code == 200, response.content
    return str(response.json()["access_token"])


def authorized(bearer: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {bearer}")
    return api


def test_a_client_credentials_token_sees_the_patients_whose_care_team_includes_the_platform(
    scene: Scene, platform: PlatformClient
):
    elsewhere = make_patient()
    api = obtain_token(platform)

    listed = api.get("/api/v1/patients/")
    other = api.get(f"/api/v1/patients/{elsewhere.pk}/")

    assert listed.status_code == 200
    assert [p["id"] for p in listed.json()["results"]] == [scene.patient.pk]
    assert other.status_code == 404
    assert other["Content-Type"] == "application/problem+json"


def test_a_platform_read_is_audited_with_the_platform_as_actor(
    scene: Scene, platform: PlatformClient
):
    api = obtain_token(platform)

    response = api.get(f"/api/v1/patients/{scene.patient.pk}/")

    assert response.status_code == 200
    event = AuditEvent.objects.filter(action="read", resource_type="Patient").latest("id")
    assert (event.actor_id, event.actor_label, event.entry_point, event.patient_id) == (
        platform.account.user_id,
        "platform-synth",
        "rest",
        scene.patient.pk,
    )


def test_a_platform_records_an_observation_with_its_write_scope(
    scene: Scene, platform: PlatformClient
):
    api = obtain_token(platform)
    body = {
        "code": "29463-7", "value": "81.5", "unit": "kg",
        "effective_at": (timezone.now() - dt.timedelta(hours=1)).isoformat(),
    }  # fmt: skip

    response = api.post(f"/api/v1/patients/{scene.patient.pk}/observations/", body, format="json")

    assert response.status_code == 201, response.content
    stored = Observation.objects.get(pk=response.json()["id"])
    assert (stored.source, stored.recorded_by_id) == ("platform", platform.account.user_id)


def test_a_token_without_the_scope_is_refused_with_403_naming_it(
    scene: Scene, platform: PlatformClient
):
    api = obtain_token(platform, scope="patients:read")
    body = {"code": "29463-7", "value": "81.5", "unit": "kg", "effective_at": "2026-01-01T10:00Z"}

    read = api.get(f"/api/v1/patients/{scene.patient.pk}/")
    refused = api.post(f"/api/v1/patients/{scene.patient.pk}/observations/", body, format="json")
    tasks = api.get("/api/v1/tasks/")

    assert read.status_code == 200
    assert refused.status_code == 403
    assert refused["Content-Type"] == "application/problem+json"
    assert refused.json()["required_scopes"] == ["observations:write"]
    assert refused.json()["type"].endswith("/insufficient-scope")
    assert 'scope="observations:write"' in refused["WWW-Authenticate"]
    assert tasks.status_code == 403
    assert tasks.json()["required_scopes"] == ["tasks:read"]
    assert Observation.objects.filter(patient=scene.patient).count() == 0


def test_a_platform_cannot_obtain_a_scope_beyond_its_account(platform: PlatformClient):
    basic = base64.b64encode(f"{platform.client_id}:{platform.client_secret}".encode()).decode()

    response = APIClient().post(
        "/o/token/",
        {"grant_type": "client_credentials", "scope": "patients:write"},
        HTTP_AUTHORIZATION=f"Basic {basic}",
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    assert AccessToken.objects.count() == 0


def test_an_expired_token_is_401(scene: Scene, platform: PlatformClient):
    api = obtain_token(platform)

    with time_machine.travel(timezone.now() + dt.timedelta(hours=2), tick=False):
        response = api.get("/api/v1/patients/")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


def test_a_revoked_token_is_401(scene: Scene, platform: PlatformClient):
    bearer = token_for(platform)
    api = authorized(bearer)
    token = AccessToken.objects.get()
    basic = base64.b64encode(f"{platform.client_id}:{platform.client_secret}".encode()).decode()

    revoked = APIClient().post(
        "/o/revoke_token/", {"token": bearer}, HTTP_AUTHORIZATION=f"Basic {basic}"
    )
    response = api.get("/api/v1/patients/")

    assert revoked.status_code == 200
    assert not AccessToken.objects.filter(pk=token.pk).exists()
    assert response.status_code == 401


def test_a_disabled_platform_is_401(scene: Scene, platform: PlatformClient):
    api = obtain_token(platform)

    platform_client_disable(account=platform.account, actor=None)
    response = api.get("/api/v1/patients/")

    assert response.status_code == 401
    assert AccessToken.objects.count() == 0


def test_client_credentials_of_an_application_that_is_no_platform_are_401(scene: Scene):
    application = Application.objects.create(
        name="not a platform",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret="synthetic-secret-0123456789",
    )
    basic = base64.b64encode(f"{application.client_id}:synthetic-secret-0123456789".encode())
    issued = APIClient().post(
        "/o/token/",
        {"grant_type": "client_credentials", "scope": "patients:read"},
        HTTP_AUTHORIZATION=f"Basic {basic.decode()}",
    )
    # A token of such an application made some other way is refused all the same.
    AccessToken.objects.create(
        application=application, token="synthetic-not-a-platform-token",
        expires=timezone.now() + dt.timedelta(hours=1), scope="patients:read",
    )  # fmt: skip
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Bearer synthetic-not-a-platform-token")

    response = api.get("/api/v1/patients/")

    assert (issued.status_code, issued.json()["error"]) == (401, "invalid_client")
    assert response.status_code == 401
    assert AuditEvent.objects.filter(action="search").count() == 0


def test_the_platform_secret_is_stored_hashed(platform: PlatformClient):
    application = Application.objects.get(client_id=platform.client_id)

    assert application.client_secret != platform.client_secret
    assert application.user_id == platform.account.user_id
    assert not platform.account.user.has_usable_password()


def test_the_command_prints_the_credentials_once(organization: Organization):
    out = io.StringIO()

    call_command(
        "platform_client_create", "cmd", "--name", "Synthetic platform",
        "--organization", str(organization.pk), "--scope", "tasks:read", "--scope",
        "patients:read", stdout=out,
    )  # fmt: skip

    lines = dict(line.split(": ", 1) for line in out.getvalue().splitlines() if ": " in line)
    account = PlatformAccount.objects.get(user__username="platform-cmd")
    assert account.scopes == ["patients:read", "tasks:read"]
    assert lines["client_id"] == Application.objects.get(user=account.user).client_id
    assert len(lines["client_secret"]) >= 32


def test_a_platform_with_no_care_team_sees_nothing(scene: Scene, organization: Organization):
    lonely = make_platform(organization, ALL_READ, slug="lonely")
    api = obtain_token(lonely)

    listed = api.get("/api/v1/patients/")
    detail = api.get(f"/api/v1/patients/{scene.patient.pk}/")
    pathways = api.get("/api/v1/pathways/")

    assert (listed.status_code, listed.json()["results"]) == (200, [])
    assert detail.status_code == 404
    assert (pathways.status_code, pathways.json()["results"]) == (200, [])


def test_every_api_route_has_a_scope_family_or_refuses_oauth_clients():
    routes = [p for p, _, _ in _walk(get_resolver().url_patterns, "", ()) if "api/v1/" in p]
    families = {p.removeprefix("api/v1/"): scope_family(p) for p in routes}

    assert {p for p, f in families.items() if f is None} <= {
        p for p in families if p.startswith("tokens/")
    }
    assert len(families) > 30
    assert families["patients/"] == "patients"
    assert families["patients/<int:pk>/observations/"] == "observations"
    assert families["patients/<int:pk>/audit-events/"] == "audit"
    assert families["pathway-definitions/<slug:key>/<int:version>/"] == "pathways"


def test_an_oauth_token_cannot_manage_personal_tokens(platform: PlatformClient):
    api = obtain_token(platform)

    listed = api.get("/api/v1/tokens/")
    created = api.post("/api/v1/tokens/", {"name": "sneaky"}, format="json")

    assert (listed.status_code, created.status_code) == (403, 403)
    assert created.json()["required_scopes"] == []
    assert ApiToken.objects.count() == 0


# The bearer token read in one written statement (api.oauth2) is the token, application and
# user the toolkit's own query reads; the toolkit still decides everything about it.


def checksum(bearer: str) -> str:
    return hashlib.sha256(bearer.encode()).hexdigest()


def values(instance: Model) -> list[object]:
    return [getattr(instance, f.attname) for f in instance._meta.concrete_fields]


def test_the_toolkit_uses_the_parcours_validator():
    assert oauth2_settings.OAUTH2_VALIDATOR_CLASS is ParcoursOAuth2Validator


# ParcoursOAuth2Validator overrides OAuth2Validator._load_access_token, a private method of
# django-oauth-toolkit with no public equivalent (api/oauth2.py says why). The toolkit is
# pinned to the version these tests ran against; on an upgrade they fail loudly if the
# method is gone, takes other parameters or is no longer what checks a bearer token.


def test_the_toolkit_is_the_pinned_version_the_override_was_checked_against():
    requirements = (Path(__file__).resolve().parents[2] / "requirements.txt").read_text()

    assert f"django-oauth-toolkit=={oauth2_provider.__version__}\n" in requirements


def test_the_toolkit_s_private_token_loader_takes_the_parameters_the_override_takes():
    toolkit = inspect.signature(OAuth2Validator._load_access_token).parameters
    ours = inspect.signature(ParcoursOAuth2Validator._load_access_token).parameters

    assert [(p.name, p.kind) for p in toolkit.values()] == [
        ("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        ("token", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    ]
    assert [(p.name, p.kind) for p in ours.values()] == [(p.name, p.kind) for p in toolkit.values()]


def test_a_token_from_the_token_endpoint_is_checked_through_the_override_in_one_statement(
    scene: Scene, platform: PlatformClient, monkeypatch: pytest.MonkeyPatch
):
    bearer = token_for(platform)  # POST /o/token/, the client-credentials grant
    loaded: list[str] = []
    override = ParcoursOAuth2Validator._load_access_token

    def recording(self: ParcoursOAuth2Validator, token: str) -> Any:
        loaded.append(token)
        return override(self, token)

    monkeypatch.setattr(ParcoursOAuth2Validator, "_load_access_token", recording)

    with CaptureQueriesContext(connection) as queries:
        response = authorized(bearer).get("/api/v1/patients/")

    assert response.status_code == 200
    assert [p["id"] for p in response.json()["results"]] == [scene.patient.pk]
    assert loaded == [bearer]  # the toolkit's validate_bearer_token called the override
    # The token, its application and user, the application's owner and platform account:
    # one statement (the toolkit's select_related would leave the platform account to a
    # query of its own).
    token_reads = [q["sql"] for q in queries if "oauth2_provider_accesstoken" in q["sql"]]
    assert len(token_reads) == 1
    assert "coordination_platformaccount" in token_reads[0]
    assert not [
        q["sql"]
        for q in queries
        if "oauth2_provider_application" in q["sql"] and q["sql"] != token_reads[0]
    ]


def test_the_token_is_the_one_the_toolkit_reads_with_application_and_user(
    scene: Scene, platform: PlatformClient
):
    bearer = token_for(platform)
    # A client-credentials token has no user; one of an authorization-code grant has.
    AccessToken.objects.filter(token_checksum=checksum(bearer)).update(user=scene.gp.user)
    expected = OAuth2Validator()._load_access_token(bearer)  # the toolkit's select_related

    loaded = access_token_load(bearer)

    assert loaded is not None
    assert expected is not None
    assert values(loaded) == values(expected)
    with CaptureQueriesContext(connection) as queries:
        assert values(loaded.application) == values(expected.application)
        assert loaded.user is not None
        assert values(loaded.user) == values(expected.user)
        assert loaded.is_valid(["patients:read"])
    assert len(queries) == 0


def test_a_token_with_no_user_has_none_cached(scene: Scene, platform: PlatformClient):
    bearer = token_for(platform)
    loaded = access_token_load(bearer)
    assert loaded is not None
    with CaptureQueriesContext(connection) as queries:
        assert loaded.user is None
    assert len(queries) == 0


def test_an_unknown_or_revoked_token_is_none(scene: Scene, platform: PlatformClient):
    assert access_token_load("no-such-token") is None
    bearer = token_for(platform)
    AccessToken.objects.all().delete()
    assert access_token_load(bearer) is None


def test_the_oauthlib_server_is_built_once_and_again_when_its_settings_change(settings):
    first = oauthlib_core()
    assert oauthlib_core() is first

    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "ACCESS_TOKEN_EXPIRE_SECONDS": 60}

    rebuilt = oauthlib_core()
    assert rebuilt is not first
    assert rebuilt.server.default_token_type.expires_in == 60


def test_an_unknown_bearer_token_is_401_with_the_bearer_challenge(scene: Scene):
    response = authorized("not-a-token").get("/api/v1/patients/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith('Bearer realm="api"')
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


# --- the rights a platform's scopes carry (api.backends.PlatformScopeBackend) -------------

NEW_PATIENT = {
    "family_name": "Synthetique",
    "given_names": "Patient",
    "birth_date": "1980-01-15",
    "sex": "female",
}


def test_patients_write_lets_a_platform_register_a_patient_through_its_token(
    organization: Organization,
):
    client = make_platform(organization, ["patients:read", "patients:write"], slug="registrar")
    before = Patient.objects.count()

    created = obtain_token(client, "patients:write").post(
        "/api/v1/patients/", NEW_PATIENT, format="json"
    )

    assert created.status_code == 201, created.content
    assert Patient.objects.count() == before + 1
    assert Patient.objects.get(pk=created.json()["id"]).family_name == "Synthetique"


def test_without_patients_write_on_its_account_a_platform_registers_nobody(
    organization: Organization,
):
    client = make_platform(organization, ["patients:read"], slug="reader")
    before = Patient.objects.count()

    refused = obtain_token(client).post("/api/v1/patients/", NEW_PATIENT, format="json")

    assert refused.status_code == 403
    assert refused.json()["required_scopes"] == ["patients:write"]
    assert Patient.objects.count() == before


def test_each_write_scope_carries_its_rights_and_no_other(organization: Organization):
    client = make_platform(organization, ["webhooks:write", "directory:write"], slug="scoped")
    user = client.practitioner.user

    assert user.has_perm("live.add_webhooksubscription")
    assert user.has_perm("directory.add_practitioner")
    assert not user.has_perm("patients.add_patient")
    assert not user.has_perm("workflows.add_pathwaydefinition")
    assert not user.has_perm("live.change_webhookdelivery")  # replaying is operations staff's


def test_taking_a_scope_off_the_account_takes_the_right_away(organization: Organization):
    client = make_platform(organization, ["patients:write"], slug="revoked")
    PlatformAccount.objects.filter(user=client.practitioner.user).update(scopes=[])
    user = type(client.practitioner.user).objects.get(pk=client.practitioner.user.pk)

    assert not user.has_perm("patients.add_patient")


def test_a_person_s_rights_are_not_touched_by_the_backend(scene: Scene):
    assert not scene.gp.user.has_perm("patients.add_patient")


def test_a_platform_reads_back_the_patient_it_registered_and_sets_its_care_team(
    scene: Scene, organization: Organization
):
    client = make_platform(organization, ["patients:read", "patients:write"], slug="onboard")
    api = obtain_token(client)
    created = api.post("/api/v1/patients/", NEW_PATIENT, format="json")
    assert created.status_code == 201, created.content
    patient_id = created.json()["id"]

    assert api.get(f"/api/v1/patients/{patient_id}/").status_code == 200  # its own, via the team
    added = api.post(
        f"/api/v1/patients/{patient_id}/care-team/",
        {"role": "gp", "practitioner": scene.gp.pk},
        format="json",
    )
    assert added.status_code == 201, added.content
    members = api.get(f"/api/v1/patients/{patient_id}/care-team/").json()
    roles = {(m["role"], m["practitioner"]["id"]) for m in members["results"]}
    assert roles == {("platform", client.practitioner.pk), ("gp", scene.gp.pk)}
    # The GP now reaches the patient the platform registered.
    gp = APIClient()
    gp.force_authenticate(scene.gp.user)
    assert gp.get(f"/api/v1/patients/{patient_id}/").status_code == 200


def test_another_platform_cannot_touch_the_care_team_of_a_patient_it_did_not_register(
    scene: Scene, organization: Organization
):
    owner = make_platform(organization, ["patients:read", "patients:write"], slug="owner")
    other = make_platform(organization, ["patients:read", "patients:write"], slug="other")
    patient_id = (
        obtain_token(owner).post("/api/v1/patients/", NEW_PATIENT, format="json").json()["id"]
    )

    refused = obtain_token(other).post(
        f"/api/v1/patients/{patient_id}/care-team/",
        {"role": "platform", "practitioner": other.practitioner.pk},
        format="json",
    )

    assert refused.status_code == 404  # not its patient: not found, as for any unseen patient


# --- external_sharing: a withdrawal hides the patient from platforms ------------------------


def test_withdrawing_external_sharing_hides_the_patient_from_its_platform_only(
    scene: Scene, platform: PlatformClient
):
    api = obtain_token(platform)
    url = f"/api/v1/patients/{scene.patient.pk}/"
    consent_set(
        patient=scene.patient, scope="external_sharing", given=True, actor=scene.gp.user,
        entry_point=AuditEvent.EntryPoint.REST,
    )  # fmt: skip
    assert api.get(url).status_code == 200

    consent_set(
        patient=scene.patient, scope="external_sharing", given=False, actor=scene.gp.user,
        entry_point=AuditEvent.EntryPoint.REST,
    )  # fmt: skip

    assert api.get(url).status_code == 404  # as for any patient it may not see
    assert api.get("/api/v1/patients/").json()["results"] == []
    gp = APIClient()
    gp.force_authenticate(scene.gp.user)
    assert gp.get(url).status_code == 200  # the care team is not concerned

    consent_set(
        patient=scene.patient, scope="external_sharing", given=True, actor=scene.gp.user,
        entry_point=AuditEvent.EntryPoint.REST,
    )  # fmt: skip

    assert api.get(url).status_code == 200


def test_a_platform_reads_the_directory_with_directory_read(organization: Organization):
    """A platform registers practitioners (directory:write) and reads them back, with the
    organisations and teams, through its real client-credentials token."""
    client = make_platform(organization, ["directory:read", "directory:write"])
    api = obtain_token(client)

    created = api.post(
        "/api/v1/practitioners/",
        {"username": "synthetic-nurse", "given_name": "Synthetic", "family_name": "Nurse",
         "profession": "nurse"},
        format="json",
    )  # fmt: skip
    assert created.status_code == 201, created.content
    listed = api.get("/api/v1/practitioners/")
    one = api.get(f"/api/v1/practitioners/{created.json()['id']}/")
    organizations = api.get("/api/v1/organizations/")

    assert listed.status_code == 200, listed.content
    assert created.json()["id"] in [row["id"] for row in listed.json()["results"]]
    assert one.status_code == 200
    assert organization.pk in [row["id"] for row in organizations.json()["results"]]
    without_scope = obtain_token(client, "directory:write").get("/api/v1/practitioners/")
    assert without_scope.status_code == 403
