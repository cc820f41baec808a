"""Playing each demo patient's pathway forward, through the services only.

A story acts as the care team would: each task action is done by the user playing the task's
role in the patient's care team (the patient through their portal account), each manual event
is fired by a user holding one of its roles, and alerts are fired by the system, as the
alert evaluation will once observations feed the engine.

Stories with `days_ago` complete a step in the past (`task_act` takes `now`, and completing a
step's last task moves the pathway on at that time), so the next step's tasks fall due in the
past: that is how the demo gets overdue tasks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser

from coordination import task_states
from coordination.management.demo.plan import (
    EXTRA_STORIES,
    HEART_RATE,
    HF,
    RETURN_HOME,
    SPO2,
    STORIES,
    T2D,
    WEIGHT,
)
from coordination.models import CarePathway, Task
from coordination.services import TaskActionInput, care_pathway_fire, task_act
from coordination.services.alerts import alerts_evaluate
from patients.models import AuditEvent, Observation, Patient

CLI = AuditEvent.EntryPoint.CLI
# Actions only the owner may take: an offered task is claimed first.
_OWNER_ONLY = frozenset({"hold", "release", "resume", "fail"})


@dataclass(frozen=True)
class Story:
    patient: Patient
    pathway: CarePathway
    actors: Mapping[str, AbstractBaseUser]  # role -> the user who acts for it
    anchor: dt.datetime

    def user(self, role: str) -> AbstractBaseUser:
        try:
            return self.actors[role]
        except KeyError:
            raise LookupError(f"nobody plays {role!r} for patient {self.patient.pk}") from None

    def act(self, code: str, action: str, *, note: str = "", days_ago: int | None = None) -> None:
        """Do `action` on the open task `code` of the pathway, as the user of its role.
        Claiming a task already owned (the role's only member gets it on opening) does
        nothing, so stories read the same whoever plays the role."""
        task = (
            Task.objects.filter(care_pathway=self.pathway, code=code, status__in=task_states.OPEN)
            .only("pk", "offered_role", "owner_id")
            .get()
        )
        user = self.user(task.offered_role)
        now = self.anchor - dt.timedelta(days=days_ago) if days_ago is not None else None
        if action == "claim" and task.owner_id is not None:
            return
        if action in _OWNER_ONLY and task.owner_id is None:
            self._task_act(task.pk, user, "claim", "", now)
        self._task_act(task.pk, user, action, note, now)

    def finish_step(self, *, days_ago: int | None = None) -> None:
        """Complete every open task of the pathway's current step, oldest first: the last
        completion moves the pathway on (`tasks_completed`)."""
        for code in (
            Task.objects.filter(care_pathway=self.pathway, status__in=task_states.OPEN)
            .order_by("pk")
            .values_list("code", flat=True)
        ):
            self.act(code, "complete", days_ago=days_ago)

    def fire(self, event: str, role: str, **payload: Any) -> None:
        care_pathway_fire(
            pathway=self.pathway,
            event=event,
            user=self.user(role),
            payload=payload,
            entry_point=CLI,
        )

    def evaluate(self, code: str) -> None:
        """Evaluate the patient's latest reading of `code` against the alerts of their
        pathways, as the ingestion does when a reading arrives (demo readings are stored
        before the pathway starts)."""
        latest = (
            Observation.objects.filter(patient=self.patient, code=code)
            .order_by("-effective_at", "-pk")
            .first()
        )
        if latest is not None:
            alerts_evaluate(patient_id=self.patient.pk, observations=[latest])

    def alert(self, event: str, alert: str) -> None:
        care_pathway_fire(
            pathway=self.pathway, event=event, user=None, payload={"alert": alert}, entry_point=CLI
        )

    def _task_act(
        self, task_id: int, user: AbstractBaseUser, action: str, note: str, now: dt.datetime | None
    ) -> None:
        data = TaskActionInput(action=action, note=note)
        task_act(task_id=task_id, user=user, data=data, entry_point=CLI, now=now)


# --- heart failure, remote monitoring -----------------------------------------------------


def hf_enrolment_under_way(s: Story) -> None:
    s.act("prescription", "complete", note="NYHA II, NT-proBNP 1 850 pg/mL (données fictives).")
    s.act("consent", "complete")
    s.act("care-team", "start")
    s.act("install-devices", "hold", note="Balance connectée en cours de livraison.")
    s.act("initial-education", "claim")


def hf_monitoring(s: Story) -> None:
    s.finish_step()


def hf_monitoring_overdue_review(s: Story) -> None:
    s.finish_step(days_ago=40)  # monitoring began 40 days ago: the month-1 review is overdue


def hf_weight_alert(s: Story) -> None:
    """In monitoring, the latest weight (+3.2 kg in 3 days) evaluated as on arrival: the
    nurse's alert task opens and the pathway stays in monitoring."""
    s.finish_step()
    s.evaluate(WEIGHT)


def hf_renewal_decision(s: Story) -> None:
    """The prescribed period is over; the latest SpO2 (87 %) is looked at all the same."""
    s.finish_step()
    s.fire("prescription_ended", "coordinator")
    s.act("period-summary", "start")
    s.evaluate(SPO2)


def hf_decompensation(s: Story) -> None:
    """In monitoring, +3.2 kg in 3 days and a SpO2 of 87 %: two alerts, 5 triage points or
    more (the weight rule gives 2 or 3 by the exact gain), the high band."""
    s.finish_step()
    s.evaluate(WEIGHT)
    s.evaluate(SPO2)


def hf_tachycardia(s: Story) -> None:
    """In monitoring, a resting heart rate of 128 /min: one alert of 2 points, the low band."""
    s.finish_step()
    s.evaluate(HEART_RATE)


def hf_hospitalised(s: Story) -> None:
    s.finish_step()
    s.fire("hospitalised", "nurse")


def hf_declined(s: Story) -> None:
    s.fire("declined", "cardiologist", reason="Non éligible : NYHA I à la réévaluation.")
    s.act("end-report", "complete")


# --- return home after a hospital stay ----------------------------------------------------


def rh_planning_under_way(s: Story) -> None:
    s.act("discharge-letter", "complete")
    s.act("discharge-reconciliation", "start")
    s.act("choose-professionals", "complete")
    s.act("plan-return", "claim")


def rh_ready_for_discharge(s: Story) -> None:
    s.finish_step()


def rh_first_week(s: Story) -> None:
    s.finish_step()
    s.fire("discharged", "hospital_physician", letter_handed_to_patient=True)
    s.act("nurse-home-visit", "complete", note="Constantes normales, pilulier conforme.")
    s.act("medication-review", "start")


def rh_home_follow_up(s: Story) -> None:
    s.finish_step()
    s.fire("discharged", "hospital_physician", letter_handed_to_patient=True)
    s.finish_step()


def rh_physiotherapy(s: Story) -> None:
    rh_home_follow_up(s)
    s.fire("refer_physio", "gp", needs_physio=True)
    s.act("physio-assessment", "complete", note="Verticalisation et marche avec déambulateur.")


def rh_readmitted(s: Story) -> None:
    s.finish_step()
    s.fire("discharged", "hospital_physician", letter_handed_to_patient=True)
    s.act("nurse-home-visit", "complete")
    s.fire("readmitted", "nurse")
    s.act("inform-team", "complete")


def rh_declined(s: Story) -> None:
    s.fire("declined", "coordinator", reason="Retour en établissement, hors programme.")


# --- type 2 diabetes ----------------------------------------------------------------------


def t2d_inclusion_under_way(s: Story) -> None:
    s.act("initial-assessment", "start")
    s.act("educational-assessment", "complete")
    s.act("care-plan", "hold", note="En attente des résultats du bilan biologique.")


def t2d_education_overdue(s: Story) -> None:
    s.finish_step(days_ago=100)  # education began 100 days ago: its P3M tasks are overdue
    s.act("etp-sessions", "start", days_ago=60)


def t2d_follow_up(s: Story) -> None:
    s.finish_step()
    s.finish_step()


def t2d_hypoglycaemia_review(s: Story) -> None:
    s.finish_step()
    s.fire("skip_education", "patient")
    s.alert("severe_hypoglycaemia", "severe-hypoglycaemia")
    s.act("call-patient", "complete", note="Resucrage fait, contrôle à 1,12 g/L.")


def t2d_annual_review(s: Story) -> None:
    t2d_follow_up(s)
    s.fire("start_annual_review", "gp")
    s.act("annual-tests", "complete")
    s.act("dental-check", "complete")
    s.act("eye-screening", "start")


def t2d_podiatry(s: Story) -> None:
    t2d_follow_up(s)
    s.fire("refer_podiatry", "gp", foot_risk_grade=2)
    s.act("podiatry-assessment", "start")


def t2d_diabetologist(s: Story) -> None:
    t2d_follow_up(s)
    s.fire("refer_diabetologist", "gp", reason="HbA1c 8,4 % malgré une bithérapie.")


def t2d_declined(s: Story) -> None:
    s.fire("declined", "gp", reason="Suivi assuré par un autre médecin traitant.")


def _nothing_yet(s: Story) -> None:
    """The pathway has just started: every first-step task is ready."""


SCRIPTS: dict[tuple[str, str], Callable[[Story], None]] = {
    (HF, "enrolment-new"): _nothing_yet,
    (HF, "enrolment-under-way"): hf_enrolment_under_way,
    (HF, "monitoring"): hf_monitoring,
    (HF, "monitoring-overdue-review"): hf_monitoring_overdue_review,
    (HF, "weight-alert"): hf_weight_alert,
    (HF, "renewal-decision"): hf_renewal_decision,
    (HF, "hospitalised"): hf_hospitalised,
    (HF, "declined"): hf_declined,
    (RETURN_HOME, "planning-new"): _nothing_yet,
    (RETURN_HOME, "planning-under-way"): rh_planning_under_way,
    (RETURN_HOME, "ready-for-discharge"): rh_ready_for_discharge,
    (RETURN_HOME, "first-week"): rh_first_week,
    (RETURN_HOME, "home-follow-up"): rh_home_follow_up,
    (RETURN_HOME, "physiotherapy"): rh_physiotherapy,
    (RETURN_HOME, "readmitted"): rh_readmitted,
    (RETURN_HOME, "declined"): rh_declined,
    (T2D, "inclusion-new"): _nothing_yet,
    (T2D, "inclusion-under-way"): t2d_inclusion_under_way,
    (T2D, "education-overdue"): t2d_education_overdue,
    (T2D, "follow-up"): t2d_follow_up,
    (T2D, "hypoglycaemia-review"): t2d_hypoglycaemia_review,
    (T2D, "annual-review"): t2d_annual_review,
    (T2D, "podiatry"): t2d_podiatry,
    (T2D, "diabetologist"): t2d_diabetologist,
    (T2D, "declined"): t2d_declined,
    (HF, "decompensation"): hf_decompensation,
    (HF, "tachycardia"): hf_tachycardia,
}

assert set(SCRIPTS) == {
    *((key, name) for key, stories in STORIES.items() for name, _ in stories),
    *((key, name) for key, name, _ in EXTRA_STORIES),
}
