"""The "what next" list above a pathway's diagram on the patient page: each way out of the
current step, in words (titles, never event codes), who may take it, and when a pending
timer is due. Logged in through the login form."""

from __future__ import annotations

import re

import time_machine
from django.test import Client

from coordination.models import CarePathway
from coordination.services import care_pathway_fire, care_pathway_start
from directory.services import care_team_member_add
from tests.coordination.conftest import make_patient, make_practitioner
from workflows.actors import Actor
from workflows.services import definition_publish
from workflows.shipped import LIBRARY_DIR

PASSWORD = "synthetic-pass-next"


def t2d_at_follow_up(db: None) -> tuple[Client, CarePathway]:
    source = (LIBRARY_DIR / "t2d-follow-up.yaml").read_text()
    definition_publish(source=source, actor=Actor(id="test"), fmt="yaml")
    patient, nurse = make_patient(), make_practitioner("nurse")
    care_team_member_add(patient=patient, role="nurse", practitioner=nurse, actor=None)
    with time_machine.travel("2026-03-02 09:30:00+01:00", tick=False):
        pathway = care_pathway_start(patient=patient, key="t2d-follow-up", user=nurse.user)
        for _ in range(2):  # inclusion, education: their tasks done
            care_pathway_fire(pathway=pathway, event="tasks_completed", user=None)
    nurse.user.set_password(PASSWORD)
    nurse.user.save(update_fields=["password"])
    client = Client()
    login = client.post("/login/", {"username": nurse.user.username, "password": PASSWORD})
    assert login.status_code == 302
    return client, pathway


def next_steps(body: str) -> list[str]:
    block = body[
        body.index('<ul class="next-steps">') : body.index("</ul>", body.index("next-steps"))
    ]
    items = re.findall(r"<li [^>]*>(.*?)</li>", block, flags=re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", item).split()) for item in items]


def test_what_next_names_each_way_out_in_words_with_who_and_when(db: None):
    client, pathway = t2d_at_follow_up(db)

    response = client.get(f"/patients/{pathway.patient_id}/")

    steps = next_steps(response.content.decode())
    assert response.status_code == 200
    assert steps[0] == (  # the timer's title
        "Consultation trimestrielle à prévoir → Consultation trimestrielle automatique "
        "· prévu le 02/05/2026"
    )
    assert steps[1] == (
        "Hypoglycémie (&lt; 0,70 g/L = 3,9 mmol/L) → Revue d&#x27;une hypoglycémie "
        "automatique, sur alerte"
    )
    assert steps[3] == (
        "Démarrer le bilan annuel → Bilan annuel "
        "par : Médecin traitant, Coordinateur·rice de parcours"  # the pathway's role titles
    )
    assert len(steps) == 8
    assert not [s for s in steps if "refer_" in s or "visit_due" in s]


def test_the_last_step_says_so_and_lists_nothing(db: None):
    client, pathway = t2d_at_follow_up(db)
    care_pathway_fire(pathway=pathway, event="close", user=None, payload={"reason": "moved"})

    body = client.get(f"/patients/{pathway.patient_id}/").content.decode()

    assert "C’est la dernière étape du parcours." in body
    assert '<ul class="next-steps">' not in body
