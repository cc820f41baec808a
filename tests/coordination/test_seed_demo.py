"""`seed_demo`: what it loads, that a second run changes nothing, and that demo practitioners
see their patients.

The demo is loaded once for the module (it takes several seconds), inside a transaction rolled
back after the module's last test, so no other test ever sees it. Each test runs in its own
savepoint within that transaction.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections import Counter
from collections.abc import Iterator

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.utils import timezone

from coordination import task_states
from coordination.management.demo import plan
from coordination.models import AlertRecord, CarePathway, Task
from coordination.selectors import visible_tasks, worklist_mine, worklist_unclaimed
from directory.identifiers import rpps_problem
from directory.models import CareTeamMember, Practitioner
from directory.services.roles import COORDINATOR_PERMISSIONS
from patients.identifiers import InsOid, check_nir
from patients.models import AuditEvent, BreakGlassGrant, Consent, Device, Observation, Patient
from patients.selectors import visible_patients
from workflows.models import PathwayDefinition, PathwayInstance
from workflows.selectors import instance_definition

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def first_run(django_db_setup: None, django_db_blocker) -> Iterator[str]:
    """The output of seeding an empty database; the data stays until the module ends."""
    with django_db_blocker.unblock(), transaction.atomic():
        out = io.StringIO()
        call_command("seed_demo", stdout=out)
        yield out.getvalue()
        transaction.set_rollback(True)


@pytest.fixture
def seeded(first_run: str, db: None) -> str:
    return first_run


def break_glass_patient() -> Patient:
    spec = next(p for p in plan.patient_plan() if p.story == plan.BREAK_GLASS_STORY)
    return Patient.objects.get(ins_nir=spec.ins_nir)


def user(username: str):
    return get_user_model().objects.get(username=username)


def instance(pathway: CarePathway) -> PathwayInstance:
    assert pathway.instance is not None
    return pathway.instance


def test_first_run_reports_what_it_created(seeded: str):
    assert seeded.splitlines()[:12] == [
        "pathway hf-telemonitoring@2: published",
        "pathway return-home@2: published",
        "pathway t2d-follow-up@2: published",
        "organisations: 5 created, 0 already present",
        "practitioners: 18 created, 0 already present",
        "service teams: 1 created, 0 already present",
        "patients: 53 created, 0 already present",
        "  hf-telemonitoring: 19 pathways started",
        "  return-home: 17 pathways started",
        "  t2d-follow-up: 17 pathways started",
        "roles: demo-coordinator-1 manages pathways, demo-gp-1 may break the glass",
        f"break the glass: demo-gp-1 opened patient {break_glass_patient().pk}",
    ]


def test_a_second_run_creates_nothing_and_says_so(seeded: str):
    models = apps.get_models()
    before = {model._meta.label: model._default_manager.count() for model in models}
    out = io.StringIO()

    call_command("seed_demo", stdout=out)

    after = {model._meta.label: model._default_manager.count() for model in models}
    assert after == before
    assert out.getvalue().splitlines()[3:] == [
        "organisations: 0 created, 5 already present",
        "practitioners: 0 created, 18 already present",
        "service teams: 0 created, 1 already present",
        "patients: 0 created, 53 already present",
        "roles: demo-coordinator-1 manages pathways, demo-gp-1 may break the glass",
        "break the glass: access already open",
        "Demo data already present: nothing created.",
    ]


def test_a_database_seeded_by_an_earlier_release_keeps_its_published_pathway(seeded: str):
    """A shipped file whose text changed under the same version (an earlier release's
    database holds the older text): `make run` goes on, saying which one it kept."""
    earlier = PathwayDefinition.objects.get(key="hf-telemonitoring", version=2)
    PathwayDefinition.objects.filter(pk=earlier.pk).update(checksum="0" * 64)
    out, err = io.StringIO(), io.StringIO()

    call_command("seed_demo", stdout=out, stderr=err)

    assert "Demo data already present: nothing created." in out.getvalue()
    assert "hf-telemonitoring.yaml: hf-telemonitoring@2 is already active" in err.getvalue()
    assert "the demo keeps the published one" in err.getvalue()
    assert PathwayDefinition.objects.get(pk=earlier.pk).checksum == "0" * 64


def test_patients_are_synthetic_with_valid_test_ins_and_varied_identity_statuses(seeded: str):
    patients = list(Patient.objects.all())

    assert len(patients) >= 50
    assert {p.ins_oid for p in patients} == {InsOid.TEST_NIR.value}
    assert all(check_nir(p.ins_nir) == p.ins_nir for p in patients)
    assert all(p.family_name.startswith("Synthétique ") for p in patients)
    assert all(p.email.endswith("@parcours-demo.invalid") for p in patients)
    assert set(Counter(p.identity_status for p in patients)) == {
        "qualified", "validated", "recovered", "provisional",
    }  # fmt: skip
    portal = sorted(p.user.username for p in patients if p.user is not None)
    assert portal[0] == "demo-patient-04"
    assert all(name.startswith("demo-patient-") for name in portal)
    assert 0 < len(portal) < len(patients)


def test_practitioners_of_every_profession_with_synthetic_rpps_and_no_usable_password(
    seeded: str,
):
    practitioners = list(Practitioner.objects.select_related("user", "organization"))
    kinds = Counter(
        (p.profession, p.specialty) if p.profession == "specialist" else p.profession
        for p in practitioners
    )

    assert kinds == {
        "gp": 3,
        ("specialist", "cardiologie"): 2,
        ("specialist", "endocrinologie-diabétologie"): 1,
        ("specialist", "ophtalmologie"): 1,
        "nurse": 4,
        "coordinator": 2,
        "pharmacist": 2,
        "physiotherapist": 1,
        "podiatrist": 1,
        "dentist": 1,
    }
    assert all(p.user.username.startswith("demo-") for p in practitioners)
    with_rpps = [p.rpps for p in practitioners if p.rpps]
    assert len(with_rpps) == 16  # all but the two coordinators
    assert all(rpps_problem(r) is None and r.startswith("9999") for r in with_rpps)
    assert all(p.organization is not None and "Démo" in p.organization.name for p in practitioners)
    assert not any(p.user.has_usable_password() for p in practitioners)


def test_pathways_run_on_all_three_library_keys_in_varied_states(seeded: str):
    pathways = CarePathway.objects.select_related("instance__definition")
    states = Counter((instance(p).definition.key, instance(p).state) for p in pathways)
    per_key = Counter(key for key, _ in states.elements())

    assert per_key == {"hf-telemonitoring": 19, "return-home": 17, "t2d-follow-up": 17}
    # Heart failure has five non-final states since an alert no longer leaves monitoring.
    least = {"hf-telemonitoring": 5, "return-home": 6, "t2d-follow-up": 6}
    for key in per_key:
        assert len({state for k, state in states if k == key}) >= least[key], key
    assert Counter(instance(p).status for p in pathways) == {"active": 50, "completed": 3}


def test_each_care_team_covers_the_roles_of_its_pathway(seeded: str):
    for pathway in CarePathway.objects.select_related("instance__definition", "patient"):
        declared = set(instance_definition(instance(pathway)).roles)
        held = set(
            CareTeamMember.objects.filter(
                care_team__patient=pathway.patient, active=True
            ).values_list("role", flat=True)
        )

        assert held == declared - {"patient"}, pathway


def test_tasks_are_left_in_several_statuses_some_overdue(seeded: str):
    statuses = Counter(Task.objects.values_list("status", flat=True))
    overdue = Task.objects.filter(status__in=task_states.OPEN, due_at__lt=timezone.now())

    assert {"ready", "in-progress", "on-hold", "completed", "cancelled"} <= set(statuses)
    assert set(overdue.values_list("code", flat=True)) == {
        "monthly-review-1", "etp-sessions", "personal-goals",
    }  # fmt: skip
    assert Task.objects.filter(status="ready", owner=None, offered_team__isnull=False).exists()


def test_telemonitored_patients_have_consent_devices_and_readings(seeded: str):
    heart_failure = Patient.objects.filter(
        pathways__instance__definition__key="hf-telemonitoring",
        pathways__instance__state__in=["monitoring", "renewal_decision"],
    )
    weights = Observation.objects.filter(patient__in=heart_failure, code="29463-7")
    glucose = Observation.objects.filter(
        patient__pathways__instance__definition__key="t2d-follow-up", code="41653-7"
    )

    assert heart_failure.count() == 10
    assert all(
        Consent.objects.filter(patient=p, scope="remote_monitoring", status="active").exists()
        for p in heart_failure
    )
    assert weights.count() == 10 * 14
    assert not weights.filter(device=None).exists()
    assert set(weights.values_list("source", flat=True)) == {"device"}
    assert glucose.exists()
    assert set(Device.objects.values_list("kind", flat=True)) == {
        "scale", "pulse_oximeter", "glucometer",
    }  # fmt: skip


def test_a_demo_gp_sees_their_patients_and_works_on_their_tasks(seeded: str):
    gp = user("demo-gp-1")
    theirs = set(
        CareTeamMember.objects.filter(practitioner__user=gp, active=True).values_list(
            "care_team__patient_id", flat=True
        )
    )
    mine = list(worklist_mine(gp))

    # and, for a few hours, the record they opened in an emergency (break the glass)
    assert set(visible_patients(gp).values_list("pk", flat=True)) == theirs | {
        break_glass_patient().pk
    }
    assert break_glass_patient().pk not in theirs
    assert len(theirs) == 17
    assert mine
    assert {t.patient_id for t in mine} <= theirs
    assert all(t.owner is not None and t.owner.user_id == gp.pk for t in mine)


def test_a_nurse_of_the_service_team_sees_the_teams_patients_and_offered_tasks(seeded: str):
    nurse = user("demo-nurse-2")
    through_team = set(
        CareTeamMember.objects.filter(
            service_team__name="Soins infirmiers à domicile Démo", active=True
        ).values_list("care_team__patient_id", flat=True)
    )
    offered = list(worklist_unclaimed(nurse))

    assert set(visible_patients(nurse).values_list("pk", flat=True)) == through_team
    assert offered
    assert {t.patient_id for t in offered} <= through_team


def test_a_demo_patient_sees_only_their_own_record_and_tasks(seeded: str):
    account = user("demo-patient-04")
    patient = Patient.objects.get(user=account)

    assert list(visible_patients(account)) == [patient]
    assert {t.patient_id for t in visible_tasks(account)} == {patient.pk}
    assert all(t.for_patient for t in visible_tasks(account))


def test_demo_alerts_open_the_nurses_task_and_leave_the_pathway_where_it_was(seeded: str):
    stories = {"weight-alert": "alert-weight-gain", "renewal-decision": "alert-low-spo2"}
    for spec in plan.patient_plan():
        if spec.pathway != plan.HF or spec.story not in stories:
            continue
        pathway = CarePathway.objects.get(patient__ins_nir=spec.ins_nir)
        task = Task.objects.get(care_pathway=pathway, code=stories[spec.story])

        assert instance(pathway).state == (
            "monitoring" if spec.story == "weight-alert" else "renewal_decision"
        )
        assert (task.offered_role, task.status) == ("nurse", "ready")
        assert task.priority in ("urgent", "asap")


# --- what every page needs to be tried with the demo accounts alone ------------------------

DEMO_PASSWORD = "demo-password-for-tests"


def form_login(username: str) -> Client:
    """The demo account logged in through the login form (its password set first: the
    module seeds without PARCOURS_DEMO_PASSWORD)."""
    account = user(username)
    account.set_password(DEMO_PASSWORD)
    account.save()
    client = Client()
    client.post("/i18n/setlang/", {"language": "en", "next": "/login/"})
    response = client.post("/login/", {"username": username, "password": DEMO_PASSWORD})
    assert response.status_code == 302, response.content[:300]
    return client


def test_open_alerts_fall_in_each_triage_band(seeded: str):
    open_alerts = AlertRecord.objects.filter(task__status__in=task_states.OPEN)
    bands = Counter(
        CarePathway.objects.filter(
            pk__in=open_alerts.values("care_pathway_id"), instance__status="active"
        ).values_list("risk_band", flat=True)
    )

    assert set(bands) == {"low", "medium", "high"}, bands
    decompensation = CarePathway.objects.get(patient=break_glass_patient())
    assert decompensation.risk_band == "high"
    assert decompensation.risk_score >= 5
    assert set(
        AlertRecord.objects.filter(care_pathway=decompensation).values_list("name", flat=True)
    ) == {"weight-gain", "low-spo2"}


def test_a_home_nurse_logs_in_and_finds_alerts_of_every_band_in_the_inbox(seeded: str):
    client = form_login("demo-nurse-1")

    page = client.get("/alerts/")

    assert page.status_code == 200
    body = page.content.decode()
    assert set(re.findall(r'data-risk-band="(\w+)"', body)) == {"low", "medium", "high"}
    # triage order: the high band comes first
    assert re.findall(r'data-risk-band="(\w+)"', body)[0] == "high"


def test_open_tasks_are_overdue_and_due_soon(seeded: str):
    now = timezone.now()
    open_tasks = Task.objects.filter(status__in=task_states.OPEN, due_at__isnull=False)

    assert open_tasks.filter(due_at__lt=now).count() >= 5
    assert open_tasks.filter(due_at__gte=now, due_at__lt=now + dt.timedelta(hours=48)).exists()


def test_one_coordinator_manages_pathways_and_one_gp_may_break_the_glass(seeded: str):
    manager, gp = user(plan.PATHWAY_MANAGER), user(plan.EMERGENCY_GP)

    assert all(manager.has_perm(perm) for perm in COORDINATOR_PERMISSIONS)
    assert gp.has_perm("patients.break_glass_patient")
    assert not user("demo-coordinator-2").has_perm("workflows.add_pathwaydefinition")
    assert not user("demo-gp-2").has_perm("patients.break_glass_patient")
    assert not manager.has_perm("patients.break_glass_patient")
    client = form_login(plan.PATHWAY_MANAGER)
    assert client.get("/pathways/upload/").status_code == 200


def test_a_gp_broke_the_glass_on_a_patient_outside_their_care_team(seeded: str):
    patient, gp = break_glass_patient(), user(plan.EMERGENCY_GP)
    grant = BreakGlassGrant.objects.get(patient=patient, user=gp)
    event = AuditEvent.objects.get(action="break_glass", patient_id=patient.pk)

    assert grant.reason == plan.BREAK_GLASS_REASON
    assert grant.expires_at > timezone.now()
    assert (event.actor_id, event.purpose) == (gp.pk, "emergency")
    assert not CareTeamMember.objects.filter(
        care_team__patient=patient, practitioner__user=gp
    ).exists()

    page = form_login(plan.EMERGENCY_GP).get(f"/patients/{patient.pk}/")

    assert page.status_code == 200
    html = page.content.decode()
    assert html.count("data-break-glass-until=") == 1  # one banner, saying until when
    assert "Emergency access until" in html
