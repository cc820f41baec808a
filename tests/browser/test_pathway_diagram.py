"""The type 2 diabetes pathway on a patient page, on a phone and a laptop: the "where am I /
what next" summary reads without the diagram, the diagram scrolls sideways inside its own box
(the page does not) and opens with the current step in view."""

from __future__ import annotations

from typing import Any

import pytest

from coordination.models import CarePathway
from coordination.services import care_pathway_fire, care_pathway_start
from directory.services import care_team_member_add
from tests.browser.conftest import PASSWORD, SCREENSHOTS, axe_violations, log_in, screenshot
from tests.coordination.conftest import make_patient, make_practitioner
from workflows.actors import Actor
from workflows.services import definition_publish
from workflows.shipped import LIBRARY_DIR

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 900}


@pytest.fixture
def t2d(transactional_db: None) -> tuple[str, CarePathway]:
    source = (LIBRARY_DIR / "t2d-follow-up.yaml").read_text()
    definition_publish(source=source, actor=Actor(id="test"), fmt="yaml")
    patient = make_patient()
    gp = make_practitioner("gp")
    gp.user.set_password(PASSWORD)
    gp.user.save(update_fields=["password"])
    care_team_member_add(patient=patient, role="gp", practitioner=gp, actor=None)
    pathway = care_pathway_start(patient=patient, key="t2d-follow-up", user=gp.user)
    # Through education to the follow-up, then a hypoglycaemia alert: a step drawn on the
    # right of the diagram, out of a phone's first view.
    for event in ("tasks_completed", "tasks_completed", "hypoglycaemia"):
        care_pathway_fire(pathway=pathway, event=event, user=None)
    return gp.user.username, pathway


def geometry(page: Any, pathway: CarePathway) -> dict[str, float]:
    return page.evaluate(
        """(id) => {
            const box = document.querySelector(`section[data-pathway="${id}"] .diagram`);
            const step = box.querySelector(".state.current").getBoundingClientRect();
            const seen = box.getBoundingClientRect();
            return {
                boxLeft: seen.left, boxRight: seen.right, stepLeft: step.left,
                stepRight: step.right, scrollWidth: box.scrollWidth, clientWidth: box.clientWidth,
                page: document.documentElement.scrollWidth, window: window.innerWidth,
            };
        }""",
        pathway.pk,
    )


def test_on_a_phone_the_diagram_opens_on_the_current_step_and_the_page_stays_narrow(
    t2d: tuple[str, CarePathway], live_url: str, browser: Any
):
    username, pathway = t2d
    page = log_in(browser, live_url, username, viewport=PHONE)

    page.goto(f"{live_url}/patients/{pathway.patient_id}/")
    page.wait_for_load_state("networkidle")

    g = geometry(page, pathway)
    section = f'section[data-pathway="{pathway.pk}"]'
    screenshot(page, "phone-patient-t2d-diagram")
    page.locator(f"{section} .diagram").screenshot(
        path=str(SCREENSHOTS / "phone-t2d-diagram-box.png")
    )
    assert g["page"] <= g["window"]  # the page does not scroll sideways
    assert g["scrollWidth"] > g["clientWidth"]  # the diagram does, inside its box
    assert g["boxLeft"] <= g["stepLeft"]
    assert g["stepRight"] <= g["boxRight"]
    assert page.inner_text(f"{section} .current-state") == "Revue d'une hypoglycémie"
    assert page.inner_text(f"{section} .where-next").splitlines() == [
        "Que faire ensuite",
        "Épisode traité, reprendre le suivi → Suivi entre deux consultations",
        "par : Infirmier·ère, Médecin traitant",
        "Hypoglycémies répétées : avis du diabétologue → Avis du diabétologue",
        "par : Médecin traitant",
    ]
    assert page.csp_violations == []
    assert axe_violations(page) == []


def test_on_a_laptop_the_whole_diagram_fits_its_column(
    t2d: tuple[str, CarePathway], live_url: str, browser: Any
):
    username, pathway = t2d
    page = log_in(browser, live_url, username, viewport=LAPTOP)

    page.goto(f"{live_url}/patients/{pathway.patient_id}/")
    page.wait_for_load_state("networkidle")

    g = geometry(page, pathway)
    screenshot(page, "laptop-patient-t2d-diagram")
    assert g["page"] <= g["window"]
    assert g["scrollWidth"] <= g["clientWidth"]  # scaled to the column: nothing clipped
    assert g["boxLeft"] <= g["stepLeft"]
    assert g["stepRight"] <= g["boxRight"]
    assert page.csp_violations == []


def test_on_a_phone_the_diagram_follows_the_pathway_when_it_moves_live(
    t2d: tuple[str, CarePathway], live_url: str, browser: Any
):
    username, pathway = t2d
    page = log_in(browser, live_url, username, viewport=PHONE)
    page.goto(f"{live_url}/patients/{pathway.patient_id}/")
    page.wait_for_selector('#live-status[data-state="connected"]', timeout=10_000)
    page.eval_on_selector(f'section[data-pathway="{pathway.pk}"] .diagram', "e => e.scrollLeft = 0")

    care_pathway_fire(
        pathway=pathway, event="refer_diabetologist", user=None, payload={"reason": "x"}
    )

    section = f'section[data-pathway="{pathway.pk}"]'
    page.wait_for_selector(f'{section} .current-state[data-state="specialist_review"]')
    g = geometry(page, pathway)
    assert g["boxLeft"] <= g["stepLeft"]
    assert g["stepRight"] <= g["boxRight"]
    assert page.inner_text(f"{section} .where-next").splitlines()[1] == (
        "Quand toutes les tâches de l’étape sont faites → Suivi entre deux consultations"
    )
