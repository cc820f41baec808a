"""Text that comes from a pathway's definition reads in the user's language on the care-team
pages: the timeline says steps and events by their titles and who moved the pathway by name,
the task page says whom a task is offered to by the role's title, the patient page names the
care team's roles and the alerts by their titles."""

from __future__ import annotations

import html
import re
import textwrap

import pytest

from coordination.models import Task
from coordination.services import care_pathway_fire, care_pathway_start
from directory.services import care_team_member_add
from tests.coordination.conftest import make_patient, make_practitioner
from tests.web.test_pathway_monitoring_pages import log_in
from workflows.actors import Actor
from workflows.services import definition_publish

TITLED = textwrap.dedent(
    """
    key: titled-test
    version: 1
    title: {fr: Suivi titré, en: Titled follow-up}
    roles: [gp, nurse, device_supplier]
    role_titles:
      nurse: {fr: Infirmier·ère libéral·e, en: Community nurse}
    initial: follow_up
    states:
      follow_up:
        title: {fr: Suivi entre deux consultations, en: Follow-up between visits}
        on_enter:
          - task: {code: check, title: {fr: Contrôle, en: Check}, role: nurse}
        on:
          start_annual_review:
            to: annual_review
            roles: [gp]
            title: {fr: Démarrer le bilan annuel, en: Start the annual review}
      annual_review:
        title: {fr: Bilan annuel, en: Annual review}
        on_enter:
          - task: {code: review, title: {fr: Bilan, en: Review}, role: gp}
        on:
          tasks_completed: closed
      closed: {final: true, title: {fr: Clôturé, en: Closed}}
    """
)


def text_of(body: bytes) -> str:
    body_text = re.sub(r"<(script|style)\b.*?</\1>", " ", body.decode(), flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body_text)))


@pytest.fixture
def moved(db: None):
    """A titled pathway the GP moved on to its annual review."""
    definition_publish(source=TITLED, actor=Actor(id="test"), fmt="yaml")
    patient = make_patient()
    gp, nurse = make_practitioner("gp"), make_practitioner("nurse")
    care_team_member_add(patient=patient, role="gp", practitioner=gp, actor=None)
    care_team_member_add(patient=patient, role="nurse", practitioner=nurse, actor=None)
    pathway = care_pathway_start(patient=patient, key="titled-test", user=gp.user)
    care_pathway_fire(pathway=pathway, event="start_annual_review", user=gp.user)
    return patient, gp, nurse, pathway


@pytest.mark.parametrize(
    ("language", "line", "roles"),
    [
        (
            "fr",
            "Suivi entre deux consultations → Bilan annuel (Démarrer le bilan annuel) · par ",
            ["— Médecin traitant", "— Infirmier·ère libéral·e"],
        ),
        (
            "en",
            "Follow-up between visits → Annual review (Start the annual review) · by ",
            ["— General practitioner", "— Community nurse"],
        ),
    ],
)
def test_the_timeline_and_the_care_team_read_as_titles_and_names(moved, language, line, roles):
    patient, gp, _nurse, _pathway = moved

    text = text_of(log_in(gp, language).get(f"/patients/{patient.pk}/").content)

    assert line + gp.user.get_full_name() in text
    assert all(role in text for role in roles)
    assert "start_annual_review" not in text
    assert f"user:{gp.user.pk}" not in text
    assert "->" not in text


@pytest.mark.parametrize(
    ("language", "offered"),
    [("fr", "Proposée à Infirmier·ère libéral·e"), ("en", "Offered to Community nurse")],
)
def test_the_task_page_says_whom_the_task_is_offered_to_by_the_roles_title(
    moved, language, offered
):
    _patient, _gp, nurse, pathway = moved
    task = Task.objects.get(care_pathway=pathway, code="check")

    text = text_of(log_in(nurse, language).get(f"/tasks/{task.pk}/").content)

    assert offered in text
    assert not re.search(r"(Offered to|Proposée à) nurse", text)
