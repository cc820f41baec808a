"""Every read of patient data leaves an audit record naming the patient: a walk over every
route of the URL configuration, the admin's included.

The routes are read from `get_resolver()` at collection time, so a route added later is in
the walk without anyone remembering it. Each (route, method) must be either

- in `READS`: a read of patient data. It is requested with real data in place by a user
  allowed to read it, and the records written must name every patient whose data it
  answered (a list: each patient of the page); then by a user who may not (an unrelated
  practitioner, another patient's account, staff outside the care team), and the refusal
  must be recorded under the patient it targeted (outcome `denied`), the answer being the
  same as for a missing record;
- in `REFUSED_WRITES`: a change of patient data, which its service records under the
  patient (each service's tests hold that); a stranger's attempt must be refused as a
  missing record and recorded under the patient it targeted;
- or in `NO_PATIENT_DATA`: a route that reads no patient data, each with its reason.

Admin routes are derived from the admin site itself: every registered model is either in
`PATIENT_DATA_MODELS` (its list, record, history, delete and password pages are walked) or
in `NOT_PATIENT_DATA_MODELS` with a reason; which models hold patient data is checked
against their foreign keys, so a newly registered model that refers to a patient cannot be
left out.

A route, method or admin model in none of these fails `test_every_route_is_classified`,
naming it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.sites import AdminSite
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import Permission
from django.db import models, transaction
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from django.views.generic import RedirectView

from api.services.api_tokens import api_token_create
from coordination.models import AlertRecord, CarePathway, Task
from coordination.services.pathways import care_pathway_start
from coordination.task_states import ACTIONS
from directory.models import CareTeamMember
from directory.services import care_team_member_add, consent_set
from live.models import WebhookDelivery, WebhookSubscription
from live.services.webhooks import webhook_subscription_create
from patients.models import (
    AuditEvent,
    BreakGlassGrant,
    Consent,
    Device,
    Observation,
    Patient,
)
from patients.services import device_register, observation_record, patient_break_glass
from tests.coordination.conftest import CARE_TEST, make_patient, make_practitioner
from workflows.actors import Actor as WorkflowActor
from workflows.services import definition_publish

User = get_user_model()
METHODS = ("get", "post", "put", "patch", "delete")


# --- the routes, from the URL configuration -----------------------------------------------


@dataclass(frozen=True)
class Route:
    pattern: str  # "api/v1/pathways/<int:pk>/events/"
    callback: Callable[..., Any] = field(compare=False, repr=False)

    @property
    def view_class(self) -> type | None:
        callback = self.callback
        return getattr(callback, "view_class", None) or getattr(callback, "cls", None)

    @property
    def methods(self) -> tuple[str, ...]:
        """What a class-based view answers; a function view's methods are those its entry
        in the tables names."""
        view = self.view_class
        if view is None:
            return ()
        allowed = getattr(view, "http_method_names", METHODS)
        return tuple(m for m in METHODS if m in allowed and callable(getattr(view, m, None)))

    @property
    def model_admin(self) -> admin.ModelAdmin[Any] | None:
        found = getattr(self.callback, "model_admin", None)
        if found is None:  # UserAdmin's password page: admin_view(bound method)
            found = getattr(getattr(self.callback, "__wrapped__", None), "__self__", None)
        return found if isinstance(found, admin.ModelAdmin) else None

    @property
    def admin_view(self) -> str:
        """changelist_view, change_view, ..., or "redirect" for `<object_id>/`."""
        if self.view_class is RedirectView:
            return "redirect"
        return str(getattr(self.callback, "__name__", ""))


def _walk(entries: list[URLPattern | URLResolver], prefix: str) -> Iterator[Route]:
    for entry in entries:
        pattern = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, pattern)
        else:
            yield Route(pattern, entry.callback)


ROUTES = sorted(_walk(get_resolver().url_patterns, ""), key=lambda r: r.pattern)
ADMIN_MODEL_ROUTES = [r for r in ROUTES if r.model_admin is not None]
OTHER_ROUTES = [r for r in ROUTES if r.model_admin is None]


# --- the world --------------------------------------------------------------------------


@dataclass
class World:
    p: Patient  # the patient whose data the walk reads
    p2: Patient  # another patient of the same care team, so lists hold two patients
    nurse: AbstractBaseUser  # in P's and P2's care teams
    gp: AbstractBaseUser  # P's GP; owns a webhook subscription restricted to P
    outsider: AbstractBaseUser  # a practitioner in no care team
    p_account: AbstractBaseUser  # P's portal account
    p2_account: AbstractBaseUser  # P2's portal account
    staff: AbstractBaseUser  # operations staff in P's and P2's care teams
    staff_outsider: AbstractBaseUser  # operations staff in no care team
    pathway: CarePathway
    task: Task  # P's `visit` task
    member: CareTeamMember  # P's nurse membership
    consent: Consent
    observation: Observation
    device: Device
    grant: BreakGlassGrant
    subscription: WebhookSubscription
    delivery: WebhookDelivery  # a delivery to the GP's subscription about P
    audit_event: AuditEvent  # a record naming P
    alert: AlertRecord  # an alert raised on P's pathway


def _side(name: str, gp: Any, nurse: Any, staff: Any) -> tuple[Patient, CarePathway]:
    account = User.objects.create_user(username=f"portal-{name}", email=f"{name}@example.invalid")
    patient = make_patient(user=account)
    care_team_member_add(patient=patient, role="gp", practitioner=gp, actor=None)
    care_team_member_add(patient=patient, role="nurse", practitioner=nurse, actor=None)
    care_team_member_add(patient=patient, role="coordinator", practitioner=staff, actor=None)
    pathway = care_pathway_start(patient=patient, key="care-test", user=gp.user)
    consent_set(
        patient=patient, scope="remote_monitoring", given=True, actor=None, entry_point="system"
    )
    observation_record(
        patient=patient,
        item={"code": "29463-7", "value": "80", "unit": "kg", "effective_at": timezone.now()},
        actor=None,
        source="professional",
        entry_point="system",
    )
    device_register(patient=patient, kind="scale", actor=None, entry_point="system", serial=name)
    now = timezone.now()
    AlertRecord.objects.create(
        care_pathway=pathway, patient=patient, name="weight-gain", kind="condition",
        state="assessment", priority="urgent", raised_at=now, last_seen_at=now,
    )  # fmt: skip
    return patient, pathway


def _staff(practitioner: Any) -> AbstractBaseUser:
    """Operations staff: every view permission, and those the user admin's password and
    delete pages need."""
    user = practitioner.user
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    user.user_permissions.add(
        *Permission.objects.filter(codename__startswith="view_"),
        *Permission.objects.filter(codename__in=["change_user", "delete_user"]),
    )
    return user


def _build_world() -> World:
    definition_publish(source=CARE_TEST, actor=WorkflowActor(id="test"), fmt="yaml")
    gp, nurse = make_practitioner("gp"), make_practitioner("nurse")
    staff = make_practitioner("coordinator")
    p, pathway = _side("p", gp, nurse, staff)
    p2, _ = _side("p2", gp, nurse, staff)
    doctor = make_practitioner("gp")
    doctor.user.user_permissions.add(Permission.objects.get(codename="break_glass_patient"))
    grant, _ = (
        patient_break_glass(
            user=doctor.user, patient_id=side.pk, reason="synthetic emergency", entry_point="system"
        )
        for side in (p, p2)
    )
    subscription, _ = webhook_subscription_create(
        owner=gp.user, url="https://platform.invalid/", event_types=["*"], patient_id=p.pk
    )
    delivery = WebhookDelivery.objects.create(
        subscription=subscription, event_id=1, event_type="task.updated", patient=p, body="{}",
        created_at=timezone.now(),
    )  # fmt: skip
    other_subscription, _ = webhook_subscription_create(
        owner=gp.user, url="https://platform.invalid/", event_types=["*"], patient_id=p2.pk
    )
    WebhookDelivery.objects.create(
        subscription=other_subscription, event_id=2, event_type="task.updated", patient=p2,
        body="{}", created_at=timezone.now(),
    )  # fmt: skip
    assert p.user is not None
    assert p2.user is not None
    return World(
        p=p,
        p2=p2,
        nurse=nurse.user,
        gp=gp.user,
        outsider=make_practitioner("nurse").user,
        p_account=p.user,
        p2_account=p2.user,
        staff=_staff(staff),
        staff_outsider=_staff(make_practitioner("coordinator")),
        pathway=pathway,
        task=Task.objects.get(care_pathway=pathway, code="visit"),
        member=CareTeamMember.objects.get(care_team__patient=p, role="nurse"),
        consent=Consent.objects.filter(patient=p).first(),  # type: ignore[arg-type]
        observation=Observation.objects.filter(patient=p).first(),  # type: ignore[arg-type]
        device=Device.objects.get(patient=p),
        grant=grant,
        subscription=subscription,
        delivery=delivery,
        audit_event=AuditEvent.objects.filter(patient=p).first(),  # type: ignore[arg-type]
        alert=AlertRecord.objects.get(patient=p),
    )


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any) -> Iterator[World]:
    """Built once for the module, inside a transaction rolled back at the end; each case
    (marked django_db) runs in a savepoint of it, rolled back too."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield _build_world()
        transaction.set_rollback(True)


# --- what each route is ----------------------------------------------------------------


Getter = Callable[[World], Any]


@dataclass(frozen=True)
class Read:
    """A read of patient data: `allowed` gets it (and the records name `named`, P by
    default); each of `refused` is answered as for a missing record and recorded under P.
    `refused_query` is the query of the refused request (a list restricted to P)."""

    allowed: Getter
    named: Callable[[World], list[Patient]] = lambda w: [w.p]
    refused: tuple[Getter, ...] = ()
    no_refusal: str = ""  # why no refused request targets P, when `refused` is empty
    query: Callable[[World], dict[str, str]] = lambda w: {}
    refused_query: Callable[[World], dict[str, str]] | None = None
    missing_status: int = 404  # how a missing (or hidden) record is answered


@dataclass(frozen=True)
class RefusedWrite:
    """A change of patient data: a stranger is answered as for a missing record, and the
    attempt is recorded under P."""

    refused: Getter
    body: Callable[[World], dict[str, Any]] = lambda w: {}


@dataclass(frozen=True)
class NoPatientData:
    reason: str


Spec = Read | RefusedWrite | NoPatientData

OUTSIDER: Getter = lambda w: w.outsider  # noqa: E731
OTHER_PATIENT: Getter = lambda w: w.p2_account  # noqa: E731
NURSE: Getter = lambda w: w.nurse  # noqa: E731
BOTH: Callable[[World], list[Patient]] = lambda w: [w.p, w.p2]  # noqa: E731
ONLY_P: Callable[[World], dict[str, str]] = lambda w: {"patient": str(w.p.pk)}  # noqa: E731
UNFILTERED = "a list with no patient filter: a stranger's holds none of P's rows, nothing targets P"


def _since_until(w: World) -> dict[str, str]:
    now = timezone.now()
    return {
        "since": (now - dt.timedelta(days=2)).isoformat(),
        "until": (now + dt.timedelta(days=1)).isoformat(),
    }


# (pattern, method) -> what it is. Path parameters are filled by PARAMETERS below.
TABLE: dict[tuple[str, str], Spec] = {
    # REST API: patients
    ("api/v1/patients/", "get"): Read(NURSE, named=BOTH, no_refusal=UNFILTERED),
    ("api/v1/patients/", "post"): NoPatientData(
        "creates a patient (audited by patient_create); reads no existing one"
    ),
    ("api/v1/patients/<int:pk>/", "get"): Read(NURSE, refused=(OUTSIDER, OTHER_PATIENT)),
    ("api/v1/patients/<int:pk>/", "patch"): RefusedWrite(OUTSIDER, lambda w: {"city": "X"}),
    ("api/v1/patients/<int:pk>/consents/", "get"): Read(NURSE, refused=(OUTSIDER,)),
    ("api/v1/patients/<int:pk>/consents/", "post"): RefusedWrite(
        OUTSIDER, lambda w: {"scope": "care_team_sharing", "given": False}
    ),
    ("api/v1/patients/<int:pk>/observations/", "get"): Read(NURSE, refused=(OUTSIDER,)),
    ("api/v1/patients/<int:pk>/observations/", "post"): RefusedWrite(
        OUTSIDER,
        lambda w: {
            "code": "29463-7",
            "value": "80",
            "unit": "kg",
            "effective_at": timezone.now().isoformat(),
        },
    ),
    ("api/v1/patients/<int:pk>/audit-events/", "get"): Read(
        NURSE, refused=(OUTSIDER,), query=_since_until
    ),
    ("api/v1/patients/<int:pk>/break-glass/", "get"): Read(NURSE, refused=(OUTSIDER,)),
    ("api/v1/patients/<int:pk>/break-glass/", "post"): RefusedWrite(
        OUTSIDER, lambda w: {"reason": "no permission to break the glass"}
    ),
    ("api/v1/patients/<int:pk>/portal-invitation/", "post"): RefusedWrite(OUTSIDER, lambda w: {}),
    ("api/v1/patients/<int:patient_id>/care-team/", "get"): Read(NURSE, refused=(OUTSIDER,)),
    ("api/v1/patients/<int:patient_id>/care-team/", "post"): RefusedWrite(
        OUTSIDER, lambda w: {"role": "nurse", "practitioner": 1}
    ),
    ("api/v1/patients/<int:patient_id>/care-team/<int:member_id>/", "delete"): RefusedWrite(
        OUTSIDER
    ),
    # REST API: pathways and tasks
    ("api/v1/pathways/", "get"): Read(
        NURSE, named=BOTH, refused=(OUTSIDER,), refused_query=ONLY_P, missing_status=200
    ),
    ("api/v1/pathways/", "post"): RefusedWrite(
        OUTSIDER, lambda w: {"patient": w.p.pk, "pathway": "care-test"}
    ),
    ("api/v1/pathways/<int:pk>/", "get"): Read(NURSE, refused=(OUTSIDER, OTHER_PATIENT)),
    ("api/v1/pathways/<int:pk>/events/", "post"): RefusedWrite(
        OUTSIDER, lambda w: {"event": "stop"}
    ),
    ("api/v1/pathways/<int:pk>/history/", "get"): Read(NURSE, refused=(OUTSIDER,)),
    ("api/v1/pathways/<int:pk>/available-events/", "get"): Read(NURSE, refused=(OUTSIDER,)),
    ("api/v1/pathways/<int:pk>/parameters/", "get"): Read(NURSE, refused=(OUTSIDER, OTHER_PATIENT)),
    ("api/v1/pathways/<int:pk>/parameters/", "post"): RefusedWrite(
        OUTSIDER, lambda w: {"name": "spo2_floor", "value": 88, "reason": "COPD"}
    ),
    ("api/v1/pathways/<int:pk>/parameters/history/", "get"): Read(NURSE, refused=(OUTSIDER,)),
    ("api/v1/pathways/<int:pk>/diagram.svg", "get"): Read(NURSE, refused=(OUTSIDER,)),
    ("api/v1/tasks/", "get"): Read(
        NURSE, named=BOTH, refused=(OUTSIDER,), refused_query=ONLY_P, missing_status=200
    ),
    ("api/v1/tasks/<int:pk>/", "get"): Read(NURSE, refused=(OUTSIDER, OTHER_PATIENT)),
    ("api/v1/alerts/", "get"): Read(
        NURSE, named=BOTH, refused=(OUTSIDER,), refused_query=ONLY_P, missing_status=200
    ),
    ("api/v1/alerts/<int:pk>/acknowledge/", "post"): RefusedWrite(OUTSIDER),
    **{
        (f"api/v1/tasks/<int:pk>/{action}/", "post"): RefusedWrite(
            OUTSIDER, lambda w: {"note": "x", "new_owner": 1}
        )
        for action in ACTIONS  # every task action: a change of the task
    },
    # REST API: webhooks
    ("api/v1/webhooks/<int:pk>/deliveries/", "get"): Read(
        lambda w: w.gp,
        no_refusal="a stranger targets a subscription that is not theirs, not a patient: "
        "refused as missing, recorded naming no patient",
    ),
    ("api/v1/webhooks/", "get"): NoPatientData(
        "the caller's own subscriptions: settings (a URL, event types, the id of the patient "
        "one is restricted to), no data of the patient"
    ),
    ("api/v1/webhooks/", "post"): NoPatientData("creates a subscription of the caller's own"),
    ("api/v1/webhooks/<int:pk>/", "get"): NoPatientData(
        "one of the caller's own subscriptions: settings, no data of the patient"
    ),
    ("api/v1/webhooks/<int:pk>/", "delete"): NoPatientData(
        "ends one of the caller's own subscriptions"
    ),
    ("api/v1/webhooks/<int:pk>/deliveries/replay/", "post"): NoPatientData(
        "sends the failed deliveries of the caller's own subscription again; answers their "
        "count (another's subscription: 404, tests/api/test_webhooks_api.py)"
    ),
    ("api/v1/webhooks/<int:pk>/deliveries/<int:delivery_pk>/replay/", "post"): NoPatientData(
        "sends one failed delivery of the caller's own subscription again; answers its status "
        "(another's: 404, tests/api/test_webhooks_api.py)"
    ),
    # Web UI and portal
    ("worklist/", "get"): Read(NURSE, named=BOTH, no_refusal=UNFILTERED),
    ("tasks/<int:task_id>/", "get"): Read(NURSE, refused=(OUTSIDER, OTHER_PATIENT)),
    ("tasks/<int:task_id>/act/", "post"): RefusedWrite(
        OUTSIDER, lambda w: {"action": "claim", "version": "1"}
    ),
    ("patients/<int:patient_id>/", "get"): Read(NURSE, refused=(OUTSIDER, OTHER_PATIENT)),
    ("patients/<int:patient_id>/break-glass/", "get"): NoPatientData(
        "a form asking for the reason: shows nothing of the patient but the id of the address"
    ),
    ("patients/<int:patient_id>/break-glass/", "post"): RefusedWrite(
        OUTSIDER, lambda w: {"reason": "no permission to break the glass"}
    ),
    ("patients/<int:patient_id>/start/", "post"): RefusedWrite(
        OUTSIDER, lambda w: {"key": "care-test"}
    ),
    ("care-pathways/<int:pathway_id>/parameters/", "post"): RefusedWrite(
        OUTSIDER, lambda w: {"name": "spo2_floor", "value": "88", "reason": "COPD"}
    ),
    ("alerts/", "get"): Read(NURSE, named=BOTH, no_refusal=UNFILTERED),
    ("triage/", "get"): Read(NURSE, named=BOTH, no_refusal=UNFILTERED),
    ("alerts/<int:alert_id>/acknowledge/", "post"): RefusedWrite(OUTSIDER),
    ("portal/", "get"): Read(
        lambda w: w.p_account,
        no_refusal="shows the account's own record only: no address names another patient",
    ),
}

# Routes that read no patient data, whatever the method.
NO_PATIENT_DATA: dict[str, str] = {
    "": "redirects to the worklist, the portal or the login page",
    "health/": "readiness of the database, the broker and the channel layer",
    "login/": "the login form",
    "logout/": "logs out",
    "psc/login/": "starts a Pro Santé Connect login",
    "psc/callback/": "ends a Pro Santé Connect login",
    "password/": "changes the user's own password",
    "password/reset/": "asks for a password reset link by e-mail",
    "password/reset/sent/": "says the reset e-mail is on its way",
    "password/reset/<uidb64>/<token>/": "sets a new password from a reset link",
    "password/reset/done/": "says the password was changed",
    "invitation/<str:token>/": "sets the invited account's password; shows its username only",
    "i18n/setlang/": "sets the language",
    "pathways/": "the pathway library: definitions, no patient",
    "pathways/upload/": "uploads a pathway definition",
    "pathways/<slug:key>/<int:version>/": "a pathway definition",
    "pathways/<slug:key>/<int:version>/diagram.svg": "a pathway definition's diagram",
    "pathways/<slug:key>/<int:version>/publish/": "publishes a pathway definition, no patient",
    "pathways/<slug:key>/<int:version>/retire/": "retires a pathway definition, no patient",
    "api/schema/": "the OpenAPI schema",
    "api/docs/": "the API documentation page",
    "api/v1/live/tokens/": "issues a WebSocket token for the caller",
    "api/v1/tokens/": "the caller's own personal API tokens",
    "api/v1/tokens/<str:token_id>/": "revokes one of the caller's own tokens",
}
NO_PATIENT_DATA_PREFIXES: dict[str, str] = {
    "api/v1/pathway-definitions/": "pathway definitions: documents, no patient",
    "api/v1/organizations/": "the professional directory",
    "api/v1/practitioners/": "the professional directory",
    "api/v1/teams/": "the professional directory",
    "o/": "the OAuth2 authorisation server: clients, grants and tokens, no patient data",
}
# The admin site's own pages (not a model's).
ADMIN_SITE_PAGES: dict[str, str] = {
    "index": "lists the models",
    "app_index": "lists an app's models",
    "login": "the login form",
    "logout": "logs out",
    "password_change": "changes the staff member's own password",
    "password_change_done": "says the password was changed",
    "i18n_javascript": "translations for the admin's scripts",
    "catch_all_view": "redirects an address missing its slash, else 404",
    "autocomplete_view": "refused (404) for every model holding patient data, whatever "
    "relation points to it (test_admin_autocomplete_reaches_no_patient)",
    "shortcut": "redirects to a record's get_absolute_url: no model holding patient data has "
    "one (test_no_patient_data_model_has_a_public_address), so it answers 404",
}

# Admin: the models holding patient data, with the object of P each page opens and the list
# filter restricting a list to P (None: Django accepts none, or the list is not filtered
# by patient).
PATIENT_DATA_MODELS: dict[type[models.Model], tuple[Getter, str | None]] = {
    Patient: (lambda w: w.p, "id"),
    Consent: (lambda w: w.consent, "patient"),
    BreakGlassGrant: (lambda w: w.grant, "patient"),
    Device: (lambda w: w.device, "patient"),
    Observation: (lambda w: w.observation, "patient"),
    AuditEvent: (lambda w: w.audit_event, None),
    CareTeamMember: (lambda w: w.member, None),
    User: (lambda w: w.p_account, "patient_record"),
    WebhookDelivery: (lambda w: w.delivery, "patient"),
}
NO_LIST_REFUSAL = {
    AuditEvent: "the trail is listed whole to staff holding view_auditevent (its pages are "
    "audits, recorded with purpose audit)",
    CareTeamMember: "Django accepts no filter on the care team's patient: no list targets one",
}
NOT_PATIENT_DATA_MODELS: dict[str, str] = {
    "auth.Group": "groups of users and their permissions",
    "oauth2_provider.Application": "OAuth2 clients (platforms)",
    "oauth2_provider.AccessToken": "OAuth2 credentials: a token, its scopes, its user",
    "axes.AccessAttempt": "failed logins counted for lockouts: usernames and addresses",
    "axes.AccessLog": "logins (not kept: the audit trail records them)",
    "axes.AccessFailureLog": "failed logins (not kept: the audit trail records them)",
    "patients.AuditChainHead": "the hash chain's last seq and hash",
    "directory.Organization": "the professional directory",
    "directory.Practitioner": "the professional directory",
    "directory.ServiceTeam": "the professional directory",
    "api.PlatformAccount": "platforms' service accounts",
    "api.ApiToken": "personal API tokens (digests, names, expiry)",
    "coordination.DeadLetter": "failed background jobs: task names, ids, exceptions",
}


# --- path parameters ---------------------------------------------------------------------


PK_BY_PREFIX: dict[str, Getter] = {
    "api/v1/patients/": lambda w: w.p.pk,
    "api/v1/pathways/": lambda w: w.pathway.pk,
    "api/v1/tasks/": lambda w: w.task.pk,
    "api/v1/alerts/": lambda w: w.alert.pk,
    "api/v1/webhooks/": lambda w: w.subscription.pk,
}
PARAMETERS: dict[str, Getter] = {
    "patient_id": lambda w: w.p.pk,
    "task_id": lambda w: w.task.pk,
    "member_id": lambda w: w.member.pk,
    "pathway_id": lambda w: w.pathway.pk,
    "alert_id": lambda w: w.alert.pk,
}
MISSING = 10**9  # an id no row has
BEYOND = 10**30  # an id no key can hold (SQLite refuses it in a query)


def fill(
    route: Route, world: World, *, missing: bool = False, obj: Any = None, absent: int = MISSING
) -> str:
    """The route's address for P's data (or for a record that does not exist)."""
    url = "/" + route.pattern
    while "<" in url:
        start, end = url.index("<"), url.index(">")
        name = url[start + 1 : end].split(":")[-1]
        if name == "object_id" or (name == "id" and obj is not None):
            value: Any = obj.pk
        elif name == "pk":
            prefix = next(p for p in PK_BY_PREFIX if route.pattern.startswith(p))
            value = PK_BY_PREFIX[prefix](world)
        else:
            value = PARAMETERS[name](world)
        if missing and name in (
            "pk", "patient_id", "task_id", "pathway_id", "alert_id", "object_id", "id",
        ):  # fmt: skip
            value = absent
        url = url[:start] + str(value) + url[end + 1 :]
    return url


# --- classification ------------------------------------------------------------------------


def _no_patient_data_reason(route: Route) -> str | None:
    if route.pattern in NO_PATIENT_DATA:
        return NO_PATIENT_DATA[route.pattern]
    for prefix, reason in NO_PATIENT_DATA_PREFIXES.items():
        if route.pattern.startswith(prefix):
            return reason
    site = getattr(getattr(route.callback, "__wrapped__", None), "__self__", None)
    if isinstance(site, AdminSite) or route.pattern.startswith("admin/"):
        return ADMIN_SITE_PAGES.get(route.admin_view)
    return None


def _specs(route: Route) -> dict[str, Spec]:
    """The route's entries in TABLE, by method."""
    return {m: spec for (pattern, m), spec in TABLE.items() if pattern == route.pattern}


def unclassified() -> list[str]:
    missing = []
    for route in OTHER_ROUTES:
        specs = _specs(route)
        if specs:
            missing += [f"{route.pattern} {m.upper()}" for m in route.methods if m not in specs]
        elif _no_patient_data_reason(route) is None:
            missing.append(route.pattern)
    return missing


def _label(model: type[models.Model]) -> str:
    return model._meta.label


def _reaches_patient(model: type[models.Model], seen: frozenset[type] = frozenset()) -> bool:
    """Whether the model refers to a patient through its foreign keys (not through user
    accounts, which every row has)."""
    if model is Patient:
        return True
    for fk in model._meta.get_fields():
        target = getattr(fk, "related_model", None)
        forward = getattr(fk, "many_to_one", False) or (
            getattr(fk, "one_to_one", False) and getattr(fk, "concrete", False)
        )
        if not forward or not isinstance(target, type) or target is User or target in seen:
            continue
        if _reaches_patient(target, seen | {model}):
            return True
    return False


# --- the tests ---------------------------------------------------------------------------


def test_every_route_is_classified() -> None:
    assert unclassified() == [], (
        "routes nobody said whether they read patient data: add each to TABLE (a read, "
        f"audited, or a write) or NO_PATIENT_DATA (with the reason) in {__name__}"
    )


def test_every_admin_model_is_classified() -> None:
    registered = set(admin.site._registry)
    holding = {m for m in registered if _reaches_patient(m)} | {User}
    declared = set(PATIENT_DATA_MODELS)
    others = {_label(m) for m in registered - declared}

    assert holding <= declared, f"models holding patient data: {sorted(map(_label, holding))}"
    assert others == set(NOT_PATIENT_DATA_MODELS), (
        "every registered model is either in PATIENT_DATA_MODELS or in NOT_PATIENT_DATA_MODELS"
    )
    assert declared <= registered


def test_every_read_names_a_reason_when_no_stranger_targets_the_patient() -> None:
    for key, spec in TABLE.items():
        if isinstance(spec, Read):
            assert bool(spec.refused) != bool(spec.no_refusal), key


@pytest.mark.django_db
def test_admin_autocomplete_reaches_no_patient(world: World) -> None:
    # The autocomplete answers rows of whatever model a relation of any installed model
    # points to, through that model's admin: never those of a model holding patient data.
    client = _client(world.staff)
    asked = []
    for model in apps.get_models():
        for relation in model._meta.get_fields():
            remote = getattr(getattr(relation, "remote_field", None), "model", None)
            if remote not in PATIENT_DATA_MODELS or not relation.name:
                continue
            query: dict[str, str] = {
                "app_label": model._meta.app_label,
                "model_name": str(model._meta.model_name),
                "field_name": relation.name,
                "term": "",
            }
            response = client.get("/admin/autocomplete/", query)
            asked.append(query["field_name"])
            assert response.status_code in (403, 404), (query, response.content[:200])

    assert len(asked) > 10  # Patient.user, Consent.patient, Task.patient, ...


def test_no_patient_data_model_has_a_public_address() -> None:
    assert [m for m in PATIENT_DATA_MODELS if hasattr(m, "get_absolute_url")] == []


def _records_since(last_id: int) -> list[AuditEvent]:
    """The records of reads since `last_id` (the test clients' logins are recorded too)."""
    return list(AuditEvent.objects.filter(pk__gt=last_id).exclude(action="login").order_by("pk"))


def _last_id() -> int:
    return AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _send(client: Client, method: str, url: str, data: Any, *, api: bool) -> Any:
    if method == "get":
        return client.get(url, data)
    if api:
        return getattr(client, method)(url, data, content_type="application/json")
    return client.post(url, data)


def _named(records: list[AuditEvent], user: AbstractBaseUser, outcome: str) -> set[int]:
    return {
        e.patient_id
        for e in records
        if e.actor_id == user.pk and e.outcome == outcome and e.patient_id is not None
    }


@dataclass(frozen=True)
class Case:
    route: Route
    method: str
    spec: Read | RefusedWrite
    role: str  # "allowed", or "refused-<n>"

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.route.pattern} as {self.role}"


def _cases() -> Iterator[Any]:
    for route in OTHER_ROUTES:
        for method, spec in sorted(_specs(route).items()):
            if isinstance(spec, NoPatientData):
                continue
            roles = ["allowed"] if isinstance(spec, Read) else []
            roles += [f"refused-{n}" for n in range(len(spec_refused(spec)))]
            for role in roles:
                case = Case(route, method, spec, role)
                yield pytest.param(case, id=str(case).replace(" ", "-"))


def spec_refused(spec: Read | RefusedWrite) -> tuple[Getter, ...]:
    return spec.refused if isinstance(spec, Read) else (spec.refused,)


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(_cases()))
def test_each_read_of_patient_data_is_recorded_under_its_patient(world: World, case: Case):
    route, spec, api = case.route, case.spec, case.route.pattern.startswith("api/")
    if case.role == "allowed":
        assert isinstance(spec, Read)
        user = spec.allowed(world)
        before = _last_id()

        response = _send(_client(user), "get", fill(route, world), spec.query(world), api=api)

        assert response.status_code == 200, f"{case}: {response.status_code}"
        expected = {p.pk for p in spec.named(world)}
        named = _named(_records_since(before), user, "success")
        assert expected <= named, f"{case}: records name {sorted(named)}, not {sorted(expected)}"
        return

    refuser = spec_refused(spec)[int(case.role.removeprefix("refused-"))](world)
    client = _client(refuser)
    if isinstance(spec, Read):
        query = (spec.refused_query or spec.query)(world)
        data, status = query, spec.missing_status
    else:
        data, status = spec.body(world), 404
    before = _last_id()

    response = _send(client, case.method, fill(route, world), data, api=api)

    assert response.status_code == status, f"{case}: {response.status_code}"
    records = _records_since(before)
    assert world.p.pk in _named(records, refuser, "denied"), (
        f"{case}: the refusal is not recorded under the patient it targeted: "
        f"{[(e.resource_type, e.patient_id, e.outcome) for e in records]}"
    )
    if status == 404:  # the same answer as for a record that does not exist, or cannot
        for absent_id in (MISSING, BEYOND):
            url = fill(route, world, missing=True, absent=absent_id)
            absent = _send(client, case.method, url, data, api=api)
            assert (absent.status_code, absent.content) == (
                response.status_code,
                response.content,
            ), url
    elif isinstance(spec, Read) and spec.refused_query is not None:  # a list restricted to P
        beyond = {key: str(BEYOND) for key in spec.refused_query(world)}
        absent = _send(client, case.method, fill(route, world), beyond, api=api)
        assert absent.status_code == response.status_code
        assert absent.json()["results"] == response.json()["results"] == []


# --- the admin -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AdminCase:
    route: Route
    role: str  # "allowed" or "refused"

    def __str__(self) -> str:
        return f"GET {self.route.pattern} as {self.role}"


# The admin's views of a model and whether they show its rows.
ADMIN_READS = ("changelist_view", "change_view", "history_view", "delete_view")
ADMIN_PAGES_SHOWING_NOTHING = {
    "add_view": "a blank form (refused, 403, by the read-only admins)",
    "redirect": "`<object_id>/` redirects to the change page",
}


def _admin_cases() -> Iterator[Any]:
    for route in ADMIN_MODEL_ROUTES:
        assert route.model_admin is not None
        if route.model_admin.model not in PATIENT_DATA_MODELS:
            continue
        if route.admin_view in ADMIN_PAGES_SHOWING_NOTHING:
            continue
        listing = route.admin_view == "changelist_view"
        for role in ("allowed", "refused"):
            if (
                role == "refused"
                and listing
                and PATIENT_DATA_MODELS[route.model_admin.model][1] is None
            ):
                continue  # no list targets P: the reason is in NO_LIST_REFUSAL
            case = AdminCase(route, role)
            yield pytest.param(case, id=str(case).replace(" ", "-"))


def test_a_list_no_stranger_can_restrict_to_a_patient_says_why() -> None:
    unfiltered = {m for m, (_, list_filter) in PATIENT_DATA_MODELS.items() if list_filter is None}

    assert unfiltered == set(NO_LIST_REFUSAL)


def test_every_admin_page_of_a_patient_data_model_is_walked() -> None:
    walked = {"user_change_password", *ADMIN_READS, *ADMIN_PAGES_SHOWING_NOTHING}
    names = {
        r.admin_view
        for r in ADMIN_MODEL_ROUTES
        if r.model_admin is not None and r.model_admin.model in PATIENT_DATA_MODELS
    }

    assert names <= walked, f"admin pages not walked: {sorted(names - walked)}"


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(_admin_cases()))
def test_each_admin_page_of_patient_data_is_recorded_under_its_patient(
    world: World, case: AdminCase
):
    route, model_admin = case.route, case.route.model_admin
    assert model_admin is not None
    model = model_admin.model
    object_of, list_filter = PATIENT_DATA_MODELS[model]
    obj = object_of(world)
    user = world.staff if case.role == "allowed" else world.staff_outsider
    listing = route.admin_view == "changelist_view"
    url = fill(route, world, obj=obj)
    query: dict[str, str] = {}
    if listing and case.role == "refused":
        assert list_filter is not None
        query = {list_filter: str(world.p.pk)}
    before = _last_id()

    response = _client(user).get(url, query)

    if route.admin_view == "delete_view" and not model_admin.has_delete_permission(
        _request_for(user), obj
    ):
        assert response.status_code == 403  # read-only: refused before anything is shown
        assert _records_since(before) == []
        return
    records = _records_since(before)
    if case.role == "allowed":
        assert response.status_code == 200, f"{case}: {response.status_code}"
        expected = {world.p.pk, world.p2.pk} if listing else {world.p.pk}
        named = _named(records, user, "success")
        assert expected <= named, f"{case}: records name {sorted(named)}"
        return
    if model is AuditEvent:  # the trail is shown whole to staff allowed to read it
        assert response.status_code == 200
        assert world.p.pk in _named(records, user, "success")
        return
    assert response.status_code in (200, 302, 404), f"{case}: {response.status_code}"
    if listing:
        assert list(response.context["cl"].result_list) == []
    else:  # an id no key can hold is answered as missing too
        beyond = _client(user).get(fill(route, world, missing=True, obj=obj, absent=BEYOND))
        assert beyond.status_code == response.status_code
    assert world.p.pk in _named(records, user, "denied"), (
        f"{case}: {[(e.resource_type, e.patient_id, e.outcome) for e in records]}"
    )


def _request_for(user: Any) -> Any:
    request = RequestFactory().get("/")
    request.user = user
    return request


# --- through the real entry points -----------------------------------------------------------


@pytest.mark.django_db
def test_a_nurse_logged_in_through_the_form_leaves_a_record_per_patient_of_her_worklist(
    world: World,
):
    nurse = User.objects.get(pk=world.nurse.pk)  # the world's own stays as it is stored
    nurse.set_password("synthetic-password-1")
    nurse.save(update_fields=["password"])
    client = Client(REMOTE_ADDR="192.0.2.7")
    login = client.post(
        "/login/", {"username": nurse.get_username(), "password": "synthetic-password-1"}
    )
    before = _last_id()

    page = client.get("/worklist/")

    assert (login.status_code, page.status_code) == (302, 200)
    records = _records_since(before)
    assert sorted((e.patient_id, e.action, e.entry_point) for e in records) == sorted(
        (p.pk, "search", "web") for p in (world.p, world.p2)
    )
    shown = [int(i) for e in records for i in e.detail["ids"]]
    assert world.task.pk in shown
    assert {e.client_address for e in records} == {"192.0.2.7"}


@pytest.mark.django_db
def test_a_script_searching_the_tasks_of_a_patient_it_may_not_see_is_recorded_under_it(
    world: World,
):
    issued = api_token_create(
        user=world.outsider, name="script", actor=world.outsider, lifetime=None
    )
    client = Client(HTTP_AUTHORIZATION=f"Token {issued.secret}")
    before = _last_id()

    searched = client.get("/api/v1/tasks/", {"patient": world.p.pk})
    missing = client.get("/api/v1/tasks/", {"patient": MISSING})

    assert searched.status_code == missing.status_code == 200
    assert searched.json()["results"] == missing.json()["results"] == []
    assert [
        (e.patient_id, e.outcome, e.detail.get("requested_patient_id"))
        for e in _records_since(before)
    ] == [(world.p.pk, "denied", None), (None, "not_found", str(MISSING))]


@pytest.mark.django_db
def test_a_refused_read_shows_in_the_patients_trail_to_those_who_may_read_it(world: World):
    refused = _client(world.outsider).get(f"/api/v1/tasks/{world.task.pk}/")
    trail = f"/api/v1/patients/{world.p.pk}/audit-events/"

    seen = {
        name: _client(user).get(trail, _since_until(world))
        for name, user in (
            ("nurse", world.nurse),
            ("patient", world.p_account),
            ("outsider", world.outsider),
        )
    }

    assert refused.status_code == 404
    assert seen["outsider"].status_code == 404
    for name in ("nurse", "patient"):
        assert seen[name].status_code == 200, name
        found = [
            (e["actor"], e["action"], e["resource_id"], e["outcome"])
            for e in seen[name].json()["results"]
            if e["actor"] == world.outsider.pk
        ]
        assert found == [(world.outsider.pk, "read", str(world.task.pk), "denied")], name
