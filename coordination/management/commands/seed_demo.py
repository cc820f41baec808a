"""`python manage.py seed_demo`: synthetic demo data, through the services only.

Idempotent: what is already there is recognised by stable keys (organisation name and kind,
practitioner usernames, the service team's name, patients' synthetic INS) and left alone, so
a second run creates nothing (but for the break-the-glass access, opened again once the
previous one expired). Everything runs in one transaction: a failed run leaves nothing
behind. What is created is described in coordination.management.demo.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections import Counter
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from coordination.management.demo import plan
from coordination.management.demo.stories import SCRIPTS, Story
from coordination.services import care_pathway_start
from directory.models import Organization, Practitioner, ServiceTeam
from directory.services import (
    care_team_member_add,
    organization_create,
    practitioner_create,
    service_team_create,
    service_team_member_add,
)
from directory.services.roles import coordinator_role_grant, emergency_access_grant
from patients.identifiers import InsOid
from patients.models import AuditEvent, Device, Observation, Patient
from patients.selectors import break_glass_grant_active
from patients.services import (
    ObservationItem,
    consent_record,
    device_register,
    observations_record,
    patient_break_glass,
    patient_create,
    patient_portal_account_create,
)
from workflows.actors import Actor
from workflows.errors import DefinitionConflict
from workflows.services import definition_publish
from workflows.shipped import library_files

CLI = AuditEvent.EntryPoint.CLI
PASSWORD_VARIABLE = "PARCOURS_DEMO_PASSWORD"  # noqa: S105 - its name, not a password
# Who starts each pathway: the physician who prescribes or organises it.
STARTED_BY = {plan.HF: "cardiologist", plan.RETURN_HOME: "hospital_physician", plan.T2D: "gp"}
DEVICE_MODELS = {
    "scale": "Balance connectée D-1",
    "pulse_oximeter": "Oxymètre connecté D-2",
    "glucometer": "Lecteur de glycémie D-3",
}


class Command(BaseCommand):
    help = (
        "Load synthetic demo data (idempotent): the library pathways, demo organisations, "
        f"{len(plan.PRACTITIONERS)} practitioners (demo-gp-1, demo-nurse-1, ...), a home-nursing "
        f"service team and {plan.PATIENT_COUNT} synthetic patients with care teams, pathways "
        "in varied states, tasks (some overdue, some due soon), device observations raising "
        "alerts of every triage band, and consents; demo-coordinator-1 may upload and publish "
        "pathways, demo-gp-1 may break the glass and has opened one patient's record so. "
        "Demo accounts get an "
        f"unusable password unless {PASSWORD_VARIABLE} is set: "
        f"`{PASSWORD_VARIABLE}=... python manage.py seed_demo` makes them usable (the password "
        "is set when an account is created; existing accounts are left as they are)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        password = os.environ.get(PASSWORD_VARIABLE) or self._local_password()
        anchor = timezone.now()
        with transaction.atomic():
            created = self._publish_library()
            organisations = self._organisations()
            practitioners = self._practitioners(organisations, password)
            team = self._service_team(organisations, practitioners)
            created += self._patients(practitioners, team, password, anchor)
            self._roles(practitioners)
            created += self._break_glass(practitioners, anchor)
        if created == 0:
            self.stdout.write("Demo data already present: nothing created.")
        elif password is not None and not os.environ.get(PASSWORD_VARIABLE):
            self.stdout.write(
                f"Demo accounts' password (generated, kept in {self._password_file()}): {password}"
            )
        elif password is None:
            self.stdout.write(
                f"Demo accounts have no usable password; set {PASSWORD_VARIABLE} before the "
                "first run to log in with them."
            )

    def _password_file(self) -> Path:
        return Path(settings.VAR_DIR) / "demo_password"

    def _local_password(self) -> str | None:
        """On a developer's machine (DEBUG, the embedded default), a random password for the
        demo accounts, generated once and kept next to the local secret key in var/ (mode
        0600), so that `make run` gives a demo one can log in to with no secret in the
        repository. None elsewhere: there the accounts stay unusable unless the variable is
        set."""
        if not settings.DEBUG:
            return None
        path = self._password_file()
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(12))
            path.chmod(0o600)
        return path.read_text().strip()

    def _publish_library(self) -> int:
        actor = Actor(id="cli:seed_demo")
        created = 0
        for path in library_files():
            try:
                result = definition_publish(
                    source=path.read_text(encoding="utf-8"), actor=actor, filename=path.name
                )
            except DefinitionConflict as conflict:
                # A database seeded by an earlier release holds this version with other
                # text: published versions are immutable, so the demo keeps that one (and
                # its running pathways) rather than stopping `make run`.
                self.stderr.write(
                    f"pathway {path.name}: {conflict}; the demo keeps the published one "
                    "(`make clean` starts over with the shipped text)"
                )
                continue
            created += result.created
            state = "published" if result.created else "already published"
            self.stdout.write(f"pathway {result.definition}: {state}")
        return created

    def _organisations(self) -> dict[str, Organization]:
        found: dict[str, Organization] = {}
        created = 0
        for spec in plan.ORGANISATIONS:
            existing = Organization.objects.filter(name=spec.name, kind=spec.kind).first()
            if existing is None:
                existing = organization_create(name=spec.name, kind=spec.kind, actor=None)
                created += 1
            found[spec.key] = existing
        self._summary("organisations", created, len(found))
        return found

    def _practitioners(
        self, organisations: dict[str, Organization], password: str | None
    ) -> dict[str, Practitioner]:
        found: dict[str, Practitioner] = {}
        created = 0
        for spec in plan.PRACTITIONERS:
            existing = Practitioner.objects.filter(user__username=spec.username).first()
            if existing is None:
                if get_user_model().objects.filter(username=spec.username).exists():
                    raise CommandError(
                        f"user {spec.username!r} exists but is not a practitioner; rename it "
                        "or load the demo into another database"
                    )
                existing = practitioner_create(
                    username=spec.username,
                    given_name=spec.given_name,
                    family_name=spec.family_name,
                    profession=spec.profession,
                    specialty=spec.specialty,
                    rpps=spec.rpps,
                    email=spec.email,
                    organization=organisations[spec.organisation],
                    password=password,
                    actor=None,
                )
                created += 1
            found[spec.username] = existing
        self._summary("practitioners", created, len(found))
        return found

    def _service_team(
        self, organisations: dict[str, Organization], practitioners: dict[str, Practitioner]
    ) -> ServiceTeam:
        team = ServiceTeam.objects.filter(name=plan.SERVICE_TEAM_NAME).first()
        created = team is None
        if team is None:
            team = service_team_create(
                name=plan.SERVICE_TEAM_NAME,
                roles=list(plan.SERVICE_TEAM_ROLES),
                organization=organisations[plan.SERVICE_TEAM_ORGANISATION],
                actor=None,
            )
        for username in plan.SERVICE_TEAM_NURSES:  # idempotent
            service_team_member_add(team=team, practitioner=practitioners[username], actor=None)
        self._summary("service teams", int(created), 1)
        return team

    def _patients(
        self,
        practitioners: dict[str, Practitioner],
        team: ServiceTeam,
        password: str | None,
        anchor: dt.datetime,
    ) -> int:
        created: Counter[str] = Counter()
        specs = plan.patient_plan()
        for spec in specs:
            known = Patient.objects.filter(ins_nir=spec.ins_nir, ins_oid=InsOid.TEST_NIR).exists()
            if known:
                continue
            self._patient(spec, practitioners, team, password, anchor)
            created[spec.pathway] += 1
        total = sum(created.values())
        self._summary("patients", total, len(specs))
        for key in plan.PATHWAY_KEYS:
            if created[key]:
                self.stdout.write(f"  {key}: {created[key]} pathways started")
        return total

    def _patient(
        self,
        spec: plan.PatientSpec,
        practitioners: dict[str, Practitioner],
        team: ServiceTeam,
        password: str | None,
        anchor: dt.datetime,
    ) -> None:
        patient = patient_create(
            family_name=spec.family_name,
            given_names=spec.given_names,
            birth_date=spec.birth_date,
            sex=spec.sex,
            birth_place_code="75056",
            phone=f"01 99 00 {spec.number // 100:02d} {spec.number % 100:02d}",
            email=f"patient-{spec.number:02d}@parcours-demo.invalid",
            address_lines=[f"{spec.number} rue de l'Exemple"],
            postal_code="00000",
            city="Démoville",
            ins_nir=spec.ins_nir,
            ins_oid=InsOid.TEST_NIR,
            identity_status=spec.identity_status,
            actor=None,
            entry_point=CLI,
        )
        portal = None
        if spec.portal_username:
            portal = patient_portal_account_create(
                patient=patient,
                email=f"patient-{spec.number:02d}@parcours-demo.invalid",
                username=spec.portal_username,
                password=password,
                actor=None,
                entry_point=CLI,
            )
        actors: dict[str, AbstractBaseUser] = {}
        for role, member in spec.care_team:
            if member == plan.SERVICE_TEAM:
                care_team_member_add(patient=patient, role=role, service_team=team, actor=None)
                nurse = plan.SERVICE_TEAM_NURSES[spec.number % len(plan.SERVICE_TEAM_NURSES)]
                actors.setdefault(role, practitioners[nurse].user)
            else:
                practitioner = practitioners[member]
                care_team_member_add(
                    patient=patient, role=role, practitioner=practitioner, actor=None
                )
                actors.setdefault(role, practitioner.user)
        if portal is not None:
            actors["patient"] = portal
        if spec.traits.consent:
            consent_record(
                patient=patient,
                scope="remote_monitoring",
                actor=actors["coordinator"],
                entry_point=CLI,
                note="Consentement recueilli à l'inclusion (données fictives).",
            )
        if spec.observations:
            _record_observations(spec, patient, anchor)
        pathway = care_pathway_start(
            patient=patient,
            key=spec.pathway,
            user=actors[STARTED_BY[spec.pathway]],
            entry_point=CLI,
        )
        SCRIPTS[(spec.pathway, spec.story)](Story(patient, pathway, actors, anchor))

    def _roles(self, practitioners: dict[str, Practitioner]) -> None:
        """The rights beyond care teams, each to one demo account (idempotent)."""
        coordinator_role_grant(user=practitioners[plan.PATHWAY_MANAGER].user)
        emergency_access_grant(user=practitioners[plan.EMERGENCY_GP].user)
        self.stdout.write(
            f"roles: {plan.PATHWAY_MANAGER} manages pathways, "
            f"{plan.EMERGENCY_GP} may break the glass"
        )

    def _break_glass(self, practitioners: dict[str, Practitioner], anchor: dt.datetime) -> int:
        """The emergency GP opens a record outside their care team, through the break-glass
        service (audited). The access lasts BREAK_GLASS_DURATION: a run after it expired
        opens it again, so the banner shows on every `make run`."""
        spec = next(p for p in plan.patient_plan() if p.story == plan.BREAK_GLASS_STORY)
        patient = Patient.objects.get(ins_nir=spec.ins_nir, ins_oid=InsOid.TEST_NIR)
        user = practitioners[plan.EMERGENCY_GP].user
        if break_glass_grant_active(user=user, patient_id=patient.pk, now=anchor) is not None:
            self.stdout.write("break the glass: access already open")
            return 0
        patient_break_glass(
            user=user,
            patient_id=patient.pk,
            reason=plan.BREAK_GLASS_REASON,
            entry_point=CLI,
            now=anchor,
        )
        self.stdout.write(f"break the glass: {plan.EMERGENCY_GP} opened patient {patient.pk}")
        return 1

    def _summary(self, what: str, created: int, total: int) -> None:
        self.stdout.write(f"{what}: {created} created, {total - created} already present")


def _record_observations(spec: plan.PatientSpec, patient: Patient, anchor: dt.datetime) -> None:
    """Register the patient's devices, then their readings as one batch from the gateway."""
    devices: dict[str, Device] = {}
    for kind in dict.fromkeys(o.device for o in spec.observations):
        devices[kind] = device_register(
            patient=patient,
            kind=kind,
            manufacturer="Démo Santé",
            model=DEVICE_MODELS[kind],
            serial=f"DEMO-{kind.upper()}-{spec.number:04d}",
            actor=None,
            entry_point=CLI,
        )
    observations_record(
        patient=patient,
        items=[
            ObservationItem(
                code=o.code,
                value=o.value,
                unit=o.unit,
                effective_at=anchor - dt.timedelta(minutes=o.minutes_ago),
                device_id=devices[o.device].pk,
            )
            for o in spec.observations
        ],
        actor=None,
        source=Observation.Source.DEVICE,
        entry_point=CLI,
    )
