"""Who finds an unclaimed task in their worklist when a role is played both by a person and
by a service team (the task is then offered to the role, not to the team)."""

from __future__ import annotations

from coordination.models import Task
from coordination.selectors import worklist_overdue, worklist_unclaimed
from coordination.services import care_pathway_start
from directory.services import care_team_member_add, service_team_create, service_team_member_add
from tests.coordination.conftest import make_patient, make_practitioner


def test_a_role_shared_by_a_person_and_a_team_is_offered_to_both_and_to_no_one_else(care_test):
    patient = make_patient()
    gp, nurse, team_nurse = (
        make_practitioner("gp"), make_practitioner("nurse"), make_practitioner("nurse"),
    )  # fmt: skip
    other_team_nurse = make_practitioner("nurse")
    team = service_team_create(name="Home nursing", roles=["nurse"], actor=None)
    other_team = service_team_create(name="Other nursing", roles=["nurse"], actor=None)
    service_team_member_add(team=team, practitioner=team_nurse, actor=None)
    service_team_member_add(team=other_team, practitioner=other_team_nurse, actor=None)
    care_team_member_add(patient=patient, role="gp", practitioner=gp, actor=None)
    care_team_member_add(patient=patient, role="nurse", practitioner=nurse, actor=None)
    care_team_member_add(patient=patient, role="nurse", service_team=team, actor=None)

    pathway = care_pathway_start(patient=patient, key="care-test", user=gp.user)

    visit = Task.objects.get(care_pathway=pathway, code="visit")
    assert (visit.owner, visit.offered_team, visit.offered_role) == (None, None, "nurse")
    assert list(worklist_unclaimed(nurse.user)) == [visit]
    assert list(worklist_unclaimed(team_nurse.user)) == [visit]
    assert list(worklist_unclaimed(other_team_nurse.user)) == []
    assert list(worklist_unclaimed(gp.user)) == []  # the only GP: the review is theirs
    assert list(worklist_overdue(team_nurse.user, now=visit.due_at)) == []
