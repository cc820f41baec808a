"""A nurse's patients with risk bands, scores, priorities and due times, and the order the
worklist and the alert inbox must show them in.

Patients (each on a `care-test` pathway, the nurse their only nurse, so the nurse's tasks
are hers):

    D  high 8    tasks: visit urgent +48h, extra routine +1h
                 alerts: a7 urgent (task D.visit), a4 routine (no task)
    B  high 6    tasks: visit urgent +48h, stat +72h, urgent +24h, urgent (no due time)
                 alerts: a2 urgent (task B.visit), a3 urgent (task B.urgent24)
    E  high 6    tasks: visit urgent +30h; alerts: a6 stat
    C  medium 3  tasks: visit urgent +48h; alerts: a5 asap (task C.visit), SpO2 85 %
    A  low 0     tasks: visit urgent +48h; alerts: a1 stat

Band first (high, medium, low), then score (8 before 6), then priority, then due time
(NULLs last), then id: B and E tie on risk, so their tasks interleave by priority and due.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from coordination import task_states
from coordination.models import AlertRecord, CarePathway, Task
from coordination.services import care_pathway_start
from coordination.services.triage import pathway_risk_apply
from directory.models import Practitioner
from directory.services import care_team_member_add
from patients.models import Observation, Patient
from tests.coordination.conftest import make_patient, make_practitioner


@dataclass
class TriageScene:
    nurse: Practitioner
    patients: dict[str, Patient]
    pathways: dict[str, CarePathway]
    tasks: dict[str, Task]
    alerts: dict[str, AlertRecord]
    observation: Observation
    now: dt.datetime

    def task_order(self) -> list[int]:
        names = ["D.visit", "D.extra", "B.stat72", "B.urgent24", "E.visit", "B.visit"]
        names += ["B.urgent_nodue", "C.visit", "A.visit"]
        return [self.tasks[n].pk for n in names]

    def alert_order(self) -> list[int]:
        return [self.alerts[n].pk for n in ("a7", "a4", "a6", "a3", "a2", "a5", "a1")]


RISKS = {"A": ("low", 0), "B": ("high", 6), "C": ("medium", 3), "D": ("high", 8), "E": ("high", 6)}


def _task(patient: Patient, pathway: CarePathway, nurse: Practitioner, code: str, priority: str,
          due: dt.datetime | None, now: dt.datetime) -> Task:  # fmt: skip
    return Task.objects.create(
        care_pathway=pathway,
        patient=patient,
        code=code,
        title={"en": code.title(), "fr": code.title()},
        status=task_states.READY,
        priority=priority,
        priority_rank=task_states.PRIORITY_RANK[priority],
        due_at=due,
        owner=nurse,
        offered_role="nurse",
        requester_label="test",
        created_at=now,
        updated_at=now,
    )


def build_triage_scene(*, nurse: Practitioner | None = None) -> TriageScene:
    """Needs the `care_test` fixture (the published pathway). Risks are applied through
    `pathway_risk_apply` after the tasks exist, as the alert engine does."""
    now = timezone.now().replace(microsecond=0)
    hours = lambda n: now + dt.timedelta(hours=n)  # noqa: E731
    nurse = nurse or make_practitioner("nurse")
    gp = make_practitioner("gp")
    patients, pathways, tasks = {}, {}, {}
    for name in "ABCDE":
        patient = make_patient()
        care_team_member_add(patient=patient, role="gp", practitioner=gp, actor=None)
        care_team_member_add(patient=patient, role="nurse", practitioner=nurse, actor=None)
        pathway = care_pathway_start(patient=patient, key="care-test", user=gp.user)
        patients[name], pathways[name] = patient, pathway
        visit = Task.objects.get(care_pathway=pathway, code="visit")
        Task.objects.filter(pk=visit.pk).update(due_at=hours(30 if name == "E" else 48))
        tasks[f"{name}.visit"] = visit
    tasks["D.extra"] = _task(patients["D"], pathways["D"], nurse, "extra", "routine", hours(1), now)
    for code, priority, due in (
        ("stat72", "stat", hours(72)),
        ("urgent24", "urgent", hours(24)),
        ("urgent_nodue", "urgent", None),
    ):
        tasks[f"B.{code}"] = _task(patients["B"], pathways["B"], nurse, code, priority, due, now)
    for name, (band, score) in RISKS.items():
        pathway_risk_apply(pathways[name].pk, score, band, now)
    for key, task in tasks.items():
        tasks[key] = Task.objects.get(pk=task.pk)

    observation = Observation.objects.create(
        patient=patients["C"],
        code="59408-5",
        value=Decimal("85"),
        unit="%",
        effective_at=now - dt.timedelta(minutes=20),
        source="device",
        received_at=now,
    )

    def alert(name: str, who: str, priority: str, task: str | None, **extra: object) -> AlertRecord:
        band, score = RISKS[who]
        return AlertRecord.objects.create(
            care_pathway=pathways[who],
            patient=patients[who],
            name=f"alert-{name}",
            kind="condition",
            state="assessment",
            priority=priority,
            task=tasks[task] if task else None,
            raised_at=now,
            last_seen_at=now,
            score=score,
            band=band,
            **extra,
        )

    alerts = {
        "a1": alert("a1", "A", "stat", None),
        "a2": alert("a2", "B", "urgent", "B.visit"),
        "a3": alert("a3", "B", "urgent", "B.urgent24"),
        "a4": alert("a4", "D", "routine", None),
        "a5": alert("a5", "C", "asap", "C.visit", observation_id=observation.pk),
        "a6": alert("a6", "E", "stat", None),
        "a7": alert("a7", "D", "urgent", "D.visit"),
    }
    return TriageScene(nurse, patients, pathways, tasks, alerts, observation, now)
