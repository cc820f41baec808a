"""BOLA matrix: every `/api/v1/` route with an object id in its path, every method its view
defines, every kind of caller.

The routes are read from the URL configuration at collection time, so a new route is in the
matrix without anyone adding it; a route with a path parameter this file cannot map to the
fixture world fails with a message naming it (map it in `PK_BY_PREFIX` / `PARAMETERS`).

Actors (see `ACTORS`):
- anonymous: 401/403 everywhere.
- outsider (an unrelated practitioner), other_patient (Q's portal account on P's objects)
  and patient_on_other (P's portal account on Q's objects): 404 on every patient-data
  route, exactly as for a missing object (403 would leak existence, 400 would mean the body
  was validated before the caller was checked). Directory routes and pathway definitions
  are not patient data (`is_patient_data`): there 200/403/405 are accepted.
- platform_elsewhere: a platform's service account in Q's care team only, on P's objects:
  a stranger like the others (404 on patient data).
- member: the nurse of P's care team; every read of P's data answers 200 (its writes are
  only required not to fail with a 5xx: what a nurse may change is business rules).
- owner: for `tasks/...` the nurse, who owns the `visit` task used as target; for every other
  family, where ownership means nothing, the GP of P's care team (who started the pathway).
  Reads answer 2xx; writes are not refused for lack of access (no 401/404).
- patient: P's own portal account; reads of its own record and pathway answer 200.
Every case, whoever the caller, must not answer a 5xx.

Every refused write (401/403/404 on a non-GET method) must have changed nothing: the tables
the API writes are snapshotted before and after (the audit table is left out on purpose:
refusals are audited).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from api.models import ApiToken
from api.services.api_tokens import api_token_create
from api.services.platforms import platform_client_create
from coordination.models import AlertEvent, AlertRecord, CarePathway, Task
from coordination.services import TaskActionInput, task_act
from coordination.services.pathways import care_pathway_start
from directory.models import CareTeamMember, Organization, Practitioner, ServiceTeam
from directory.services import care_team_member_add, consent_set
from directory.services.organisations import (
    organization_create,
    service_team_create,
    service_team_member_add,
)
from live.models import WebhookDelivery, WebhookSubscription
from live.services.webhooks import webhook_subscription_create
from patients.models import BreakGlassGrant, Consent, Observation, Patient
from patients.services import observation_record
from tests.coordination.conftest import CARE_TEST, make_patient, make_practitioner
from workflows.actors import Actor as WorkflowActor
from workflows.models import HistoryEntry, PathwayInstance
from workflows.services import definition_publish

API_PREFIX = "api/v1/"
METHODS = ("get", "post", "put", "patch", "delete")


# --- the routes, from the URL configuration -----------------------------------------------


@dataclass(frozen=True)
class Route:
    pattern: str  # "api/v1/pathways/<int:pk>/events/"
    parameters: tuple[str, ...]
    methods: tuple[str, ...]

    @property
    def path(self) -> str:
        return self.pattern.removeprefix(API_PREFIX)


def _walk(
    resolvers: list[URLPattern | URLResolver], prefix: str, params: tuple[str, ...]
) -> Iterator[tuple[str, tuple[str, ...], URLPattern]]:
    for entry in resolvers:
        pattern = prefix + str(entry.pattern)
        groups = entry.pattern.regex.groupindex  # path() converters and regex groups alike
        names = params + tuple(sorted(groups, key=groups.__getitem__))
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, pattern, names)
        else:
            yield pattern, names, entry


def _methods(entry: URLPattern) -> tuple[str, ...]:
    view = getattr(entry.callback, "view_class", None) or getattr(entry.callback, "cls", None)
    if view is None:
        return ("get",)
    allowed = getattr(view, "http_method_names", METHODS)
    return tuple(m for m in METHODS if m in allowed and callable(getattr(view, m, None)))


def object_routes() -> list[Route]:
    routes = [
        Route(pattern, names, _methods(entry))
        for pattern, names, entry in _walk(get_resolver().url_patterns, "", ())
        if pattern.startswith(API_PREFIX) and names
    ]
    return sorted(routes, key=lambda r: r.pattern)


ROUTES = object_routes()

# Not patient data: the professional directory and the pathway definitions. Everything else
# under /api/v1/ with an id in its path is about one patient and must answer 404 to strangers.
NOT_PATIENT_DATA = ("organizations/", "practitioners/", "teams/", "pathway-definitions/")


# Objects that belong to the user who made them: the GP ("owner") made both sides' webhook
# subscriptions; to anyone else, even the GP's care-team colleagues, they do not exist.
OWNED_BY_THEIR_USER = ("webhooks/",)


def is_patient_data(route: Route) -> bool:
    return not route.path.startswith(NOT_PATIENT_DATA)


# --- the world --------------------------------------------------------------------------


@dataclass
class Side:
    """One patient and its objects."""

    patient: Patient
    account: AbstractBaseUser
    pathway: CarePathway
    visit: Task
    member: CareTeamMember  # the coordinator's membership: the one a DELETE targets
    webhook: WebhookSubscription  # the GP's subscription to this patient's events
    delivery: WebhookDelivery  # a delivery of it that failed: the one a replay targets
    alert: AlertRecord  # an alert raised on the pathway: the one an acknowledgement targets


@dataclass
class World:
    p: Side
    q: Side
    gp: AbstractBaseUser
    nurse: AbstractBaseUser
    outsider: AbstractBaseUser
    organization: Organization
    team: ServiceTeam
    team_practitioner_id: int
    newcomer_id: int  # a practitioner no team knows: the body of "add a member" requests
    nurse_practitioner_id: int  # the body of "reassign" requests
    gp_token_id: str  # the GP's personal API token: only the GP may revoke it
    platform: AbstractBaseUser  # a platform's service account, in Q's care team, not P's


def _side(name: str) -> tuple[Side, AbstractBaseUser, AbstractBaseUser]:
    account = get_user_model().objects.create_user(username=f"portal-{name}")
    patient = make_patient(user=account)
    gp, nurse, coordinator = (make_practitioner(p) for p in ("gp", "nurse", "coordinator"))
    care_team_member_add(patient=patient, role="gp", practitioner=gp, actor=None)
    care_team_member_add(patient=patient, role="nurse", practitioner=nurse, actor=None)
    member = care_team_member_add(
        patient=patient, role="coordinator", practitioner=coordinator, actor=None
    )
    pathway = care_pathway_start(patient=patient, key="care-test", user=gp.user)
    consent_set(
        patient=patient, scope="remote_monitoring", given=True, actor=gp.user, entry_point="system"
    )
    observation_record(
        patient=patient,
        item={"code": "29463-7", "value": "80", "unit": "kg", "effective_at": timezone.now()},
        actor=gp.user,
        source="professional",
        entry_point="system",
    )
    visit = Task.objects.get(care_pathway=pathway, code="visit")
    assert visit.owner_id in (None, nurse.pk, nurse.user.pk)
    webhook, _ = webhook_subscription_create(
        owner=gp.user, url="https://platform.invalid/", event_types=["*"], patient_id=patient.pk
    )
    delivery = WebhookDelivery.objects.create(
        subscription=webhook, event_id=0, position=0, event_type="task.changed", patient=patient,
        body="{}", status=WebhookDelivery.Status.FAILED, attempts=7, created_at=timezone.now(),
    )  # fmt: skip
    now = timezone.now()
    alert = AlertRecord.objects.create(
        care_pathway=pathway, patient=patient, name="weight-gain", kind="condition",
        state="assessment", priority="urgent", raised_at=now, last_seen_at=now,
    )  # fmt: skip
    side = Side(patient, account, pathway, visit, member, webhook, delivery, alert)
    return side, gp.user, nurse.user


def _build_world() -> World:
    definition_publish(source=CARE_TEST, actor=WorkflowActor(id="test"), fmt="yaml")
    p, gp, nurse = _side("p")
    q, _, _ = _side("q")
    _claim_visit(p, nurse)
    organization = organization_create(
        name="Synthetic clinic", kind=Organization.Kind.values[0], actor=None
    )
    team = service_team_create(
        name="Synthetic team", roles=["nurse"], actor=None, organization=organization
    )
    team_practitioner = make_practitioner("nurse")
    service_team_member_add(team=team, practitioner=team_practitioner, actor=None)
    return World(
        p, q, gp, nurse, make_practitioner("nurse").user, organization, team,
        team_practitioner.pk, make_practitioner("nurse").pk,
        Practitioner.objects.get(user_id=nurse.pk).pk,
        api_token_create(user=gp, name="synthetic script", actor=gp, lifetime=None).token.token_key,
        _platform_in_care_team_of(q.patient, organization).user,
    )  # fmt: skip


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any) -> Iterator[World]:
    """Built once for the module (about 230 cases), inside a transaction rolled back at the
    end; each case (marked django_db) runs in a savepoint of it, rolled back too."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield _build_world()
        transaction.set_rollback(True)


def _platform_in_care_team_of(patient: Patient, organization: Organization) -> Practitioner:
    client = platform_client_create(
        slug="bola", name="Synthetic platform", organization=organization,
        scopes=["patients:read", "patients:write"], actor=None,
    )  # fmt: skip
    care_team_member_add(
        patient=patient, role="platform", practitioner=client.practitioner, actor=None
    )
    return client.practitioner


def _claim_visit(side: Side, nurse: AbstractBaseUser) -> None:
    """The nurse owns P's `visit` task (claimed if the pathway offered it to the role)."""
    side.visit.refresh_from_db()
    if side.visit.owner_id is None:
        task_act(
            task_id=side.visit.pk,
            user=nurse,
            data=TaskActionInput(action="claim", expected_version=None, note="", output={}),
            entry_point="system",
        )
    side.visit.refresh_from_db()


# Path parameters. `pk` depends on the family (first segment); the others on their name.
PK_BY_PREFIX: dict[str, Callable[[World, Side], object]] = {
    "patients": lambda w, s: s.patient.pk,
    "pathways": lambda w, s: s.pathway.pk,
    "tasks": lambda w, s: s.visit.pk,
    "alerts": lambda w, s: s.alert.pk,
    "organizations": lambda w, s: w.organization.pk,
    "practitioners": lambda w, s: w.team_practitioner_id,
    "teams": lambda w, s: w.team.pk,
    "webhooks": lambda w, s: s.webhook.pk,
}
PARAMETERS: dict[str, Callable[[World, Side], object]] = {
    "patient_id": lambda w, s: s.patient.pk,
    "member_id": lambda w, s: s.member.pk,
    "practitioner_id": lambda w, s: w.team_practitioner_id,
    "key": lambda w, s: "care-test",
    "version": lambda w, s: 1,
    "token_id": lambda w, s: w.gp_token_id,
    "delivery_pk": lambda w, s: s.delivery.pk,
}


def _getter(route: Route, name: str) -> Callable[[World, Side], object] | None:
    if name == "pk":
        return PK_BY_PREFIX.get(route.path.split("/", 1)[0])
    return PARAMETERS.get(name)


def build_url(route: Route, world: World, side: Side) -> str:
    url = "/" + route.pattern
    for name in route.parameters:
        getter = _getter(route, name)
        if getter is None:
            pytest.fail(
                f"route {route.pattern}: <{name}> is not mapped to an object of the BOLA world "
                f"(add it to PK_BY_PREFIX or PARAMETERS in {__name__})"
            )
        start = url.index("<")
        end = url.index(">", start)
        assert url[start + 1 : end].split(":")[-1] == name, route.pattern
        url = url[:start] + str(getter(world, side)) + url[end + 1 :]
    return url


def body_for(route: Route, world: World) -> dict[str, Any]:
    """Minimal valid-looking bodies: the point is authorization, not validation."""
    last = route.path.rstrip("/").rsplit("/", 1)[-1]
    if last == "events":
        return {"event": "stop"}
    if last == "parameters":
        return {"name": "spo2_floor", "value": 88, "reason": "COPD"}
    if last == "consents":
        return {"scope": "care_team_sharing", "given": False}
    if last == "observations":
        effective = (timezone.now() - dt.timedelta(hours=1)).isoformat()
        return {"code": "29463-7", "value": "80", "unit": "kg", "effective_at": effective}
    if last == "care-team":
        return {"role": "nurse", "practitioner": world.newcomer_id}
    if last == "members":
        return {"practitioner": world.newcomer_id}
    if last == "reassign":
        return {"note": "x", "new_owner": world.nurse_practitioner_id}
    if last == "break-glass":
        return {"reason": "x"}
    if last in ("invitation", "portal-invitation"):
        return {}  # optional fields only: the address and language on record
    if last == "replay":
        return {}  # a replay takes no body (an unknown field would be refused with 400)
    if route.path.startswith("patients/"):
        return {"city": "Elsewhere"}
    return {"note": "x"}


def query_for(route: Route) -> dict[str, str]:
    if route.path.endswith("audit-events/"):
        now = timezone.now()
        return {"since": (now - dt.timedelta(days=1)).isoformat(), "until": now.isoformat()}
    return {}


def snapshot() -> dict[str, object]:
    """What a write could change, audit trail excepted."""
    return {
        "tasks": sorted(Task.objects.values_list("pk", "version", "status", "owner_id")),
        "instances": sorted(PathwayInstance.objects.values_list("pk", "revision", "state")),
        "history": HistoryEntry.objects.count(),
        "pathways": CarePathway.objects.count(),
        "members": sorted(CareTeamMember.objects.values_list("pk", "active")),
        "consents": sorted(Consent.objects.values_list("pk", "status")),
        "observations": sorted(Observation.objects.values_list("pk", flat=True)),
        "patients": sorted(Patient.objects.values_list("pk", "version", "user_id")),
        "teams": sorted(ServiceTeam.objects.values_list("pk", "memberships__practitioner_id")),
        "webhooks": sorted(WebhookSubscription.objects.values_list("pk", "active", "version")),
        "deliveries": sorted(WebhookDelivery.objects.values_list("pk", "status", "replays")),
        "tokens": sorted(ApiToken.objects.values_list("digest", flat=True)),
        "break_glass": sorted(BreakGlassGrant.objects.values_list("pk", flat=True)),
        "alerts": sorted(AlertRecord.objects.values_list("pk", "acknowledged_at")),
        "alert_history": AlertEvent.objects.count(),
    }


# --- the actors -------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    name: str
    user: Callable[[World, Route], AbstractBaseUser | None]
    side: Callable[[World], Side]


ACTORS = [
    Actor("anonymous", lambda w, r: None, lambda w: w.p),
    Actor("outsider", lambda w, r: w.outsider, lambda w: w.p),
    Actor("member", lambda w, r: w.nurse, lambda w: w.p),
    # The nurse owns the `visit` task; elsewhere ownership means nothing: the GP.
    Actor("owner", lambda w, r: w.nurse if r.path.startswith("tasks/") else w.gp, lambda w: w.p),
    Actor("patient", lambda w, r: w.p.account, lambda w: w.p),
    Actor("other_patient", lambda w, r: w.q.account, lambda w: w.p),
    Actor("patient_on_other", lambda w, r: w.p.account, lambda w: w.q),
    # A platform's service account sees the patients whose care team includes it: Q's.
    Actor("platform_elsewhere", lambda w, r: w.platform, lambda w: w.p),
]
STRANGERS = {"outsider", "other_patient", "patient_on_other", "platform_elsewhere"}

# Holes found: (route pattern, method, actor) -> reason. Each is an xfail(strict=True).
KNOWN_HOLES: dict[tuple[str, str, str], str] = {}


def _slug(path: str) -> str:
    """`pathways/<int:pk>/events/` -> `pathways.pk.events`, usable with -k."""
    return re.sub(r"<(?:\w+:)?(\w+)>", r"\1", path).strip("/").replace("/", ".")


def _cases() -> Iterator[Any]:
    for route in ROUTES:
        for method in route.methods:
            for actor in ACTORS:
                marks = []
                if (hole := KNOWN_HOLES.get((route.pattern, method, actor.name))) is not None:
                    marks.append(pytest.mark.xfail(strict=True, reason=hole))
                yield pytest.param(
                    route,
                    method,
                    actor,
                    marks=marks,
                    id=f"{method}-{_slug(route.path)}-{actor.name}",
                )


def expected(route: Route, method: str, actor: str) -> set[int] | None:
    """The statuses allowed, or None for 'any answer but a server error'."""
    read = method == "get"
    if actor == "anonymous":
        return {401, 403}
    if actor in STRANGERS:
        return {404} if is_patient_data(route) else {200, 403, 405}
    if route.path.startswith(OWNED_BY_THEIR_USER):
        if actor != "owner":
            return {404}
        # A replay answers what it replayed; other writes (a deactivation) answer nothing.
        return {200} if read or route.path.endswith("/replay/") else {204}
    if not is_patient_data(route):
        return None
    if actor in ("member", "owner") and read:
        return {200}
    if actor == "owner" and route.path.endswith("/parameters/"):
        return {400}  # after the access check: the world's pathway declares no parameter
    if actor == "owner":
        # Business refusals come after access checks; an invitation is accepted (202).
        return {200, 201, 202, 204, 409, 412, 428}
    if actor == "patient" and read and route.path.startswith(("patients/", "pathways/")):
        return {200}
    return None


def test_the_matrix_covers_the_api() -> None:
    paths = {r.path for r in ROUTES}

    assert {"pathways/<int:pk>/", "tasks/<int:pk>/complete/", "patients/<int:pk>/"} <= paths
    assert "patients/<int:patient_id>/care-team/<int:member_id>/" in paths
    assert all(r.methods for r in ROUTES), [r.pattern for r in ROUTES if not r.methods]


def test_every_path_parameter_is_mapped_to_the_world() -> None:
    unmapped = [
        f"{r.pattern} <{name}>" for r in ROUTES for name in r.parameters if _getter(r, name) is None
    ]

    assert unmapped == [], "map these in PK_BY_PREFIX / PARAMETERS of tests/api/test_bola.py"


@pytest.mark.django_db
@pytest.mark.parametrize(("route", "method", "actor"), list(_cases()))
def test_object_level_authorization(world: World, route: Route, method: str, actor: Actor) -> None:
    client = APIClient()
    user = actor.user(world, route)
    if user is not None:
        client.force_authenticate(user)
    url = build_url(route, world, actor.side(world))
    before = snapshot()

    if method == "get":
        response = client.get(url, query_for(route))
    else:
        response = getattr(client, method)(url, body_for(route, world), format="json")

    allowed = expected(route, method, actor.name)
    status = response.status_code
    where = f"{method.upper()} {url} ({route.pattern}) as {actor.name}"
    assert status < 500, f"{where}: {status}"
    if allowed is not None:
        assert status in allowed, f"{where}: {status}, expected one of {sorted(allowed)}"
    if method != "get" and status in (401, 403, 404):
        assert snapshot() == before, f"{where}: refused with {status} but wrote"
