"""`live_access_many`: the bulk reading of what live connections may receive, against the
API's visibility rule (`visible_patients`) and the single-user `live_access`."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from directory.selectors import live_access, live_access_many
from directory.services import care_team_member_add, service_team_create, service_team_member_add
from live.selectors import LiveAccess
from patients.selectors import visible_patients
from patients.services import patient_break_glass
from tests.coordination.conftest import Scene, make_patient, make_practitioner


def _break_glass(user, patient, *, at: dt.datetime) -> None:
    user.user_permissions.add(Permission.objects.get(codename="break_glass_patient"))
    user = get_user_model().objects.get(pk=user.pk)  # drop the cached permissions
    patient_break_glass(
        user=user, patient_id=patient.pk, reason="synthetic emergency", entry_point="system", now=at
    )


@pytest.fixture
def population(scene: Scene) -> dict[str, int]:
    """Users seeing their patients in every way there is, and users seeing nothing."""
    other = make_patient()
    team = service_team_create(name="Synthetic home nursing", roles=["nurse"], actor=None)
    team_nurse = make_practitioner("nurse")
    service_team_member_add(team=team, practitioner=team_nurse, actor=None)
    care_team_member_add(patient=other, role="nurse", service_team=team, actor=None)
    emergency = make_practitioner("gp")
    _break_glass(emergency.user, other, at=timezone.now() - dt.timedelta(minutes=1))
    expired = make_practitioner("gp")
    _break_glass(expired.user, other, at=timezone.now() - dt.timedelta(days=2))
    account = get_user_model().objects.create_user(username="synthetic-live-account")
    scene.patient.user = account
    scene.patient.save(update_fields=["user"])
    inactive = make_practitioner("gp")
    care_team_member_add(patient=other, role="gp", practitioner=inactive, actor=None)
    inactive.user.is_active = False
    inactive.user.save(update_fields=["is_active"])
    plain = get_user_model().objects.create_user(username="synthetic-plain-user")
    return {
        "gp": scene.gp.user.pk,
        "nurse": scene.nurse.user.pk,
        "outsider": scene.outsider.user.pk,
        "team_nurse": team_nurse.user.pk,
        "emergency": emergency.user.pk,
        "expired": expired.user.pk,
        "account": account.pk,
        "inactive": inactive.user.pk,
        "plain": plain.pk,
        "deleted": 10**9,
    }


def test_the_bulk_reading_agrees_with_the_single_one_for_every_user(population):
    bulk = live_access_many(user_ids=set(population.values()))

    assert bulk == {user_id: live_access(user_id=user_id) for user_id in population.values()}


def test_practitioners_receive_the_patients_the_api_shows_them(population):
    users = get_user_model().objects.filter(pk__in=population.values())
    practitioners = [u for u in users if u.pk not in (population["account"], population["plain"])]

    bulk = live_access_many(user_ids=set(population.values()))

    assert {u.pk: bulk[u.pk].patient_ids for u in practitioners} == {
        u.pk: frozenset(visible_patients(u).values_list("pk", flat=True)) for u in practitioners
    }
    assert all(bulk[population[name]].patient_ids for name in ("gp", "team_nurse", "emergency"))


def test_a_patient_account_receives_its_own_record_only(population, scene: Scene):
    access = live_access_many(user_ids={population["account"]})[population["account"]]

    assert (access.active, access.patient_ids, access.own_patient_id) == (
        True,
        frozenset({scene.patient.pk}),
        scene.patient.pk,
    )


def test_inactive_deleted_and_plain_users_receive_nothing(population):
    bulk = live_access_many(
        user_ids={population["inactive"], population["deleted"], population["plain"]}
    )

    assert [bulk[population[n]].patient_ids for n in ("inactive", "deleted", "plain")] == [
        frozenset(),
        frozenset(),
        frozenset(),
    ]
    assert [bulk[population[n]].active for n in ("inactive", "deleted", "plain")] == [
        False,
        False,
        True,
    ]


def test_a_service_team_member_gets_the_team(population):
    access = live_access_many(user_ids={population["team_nurse"]})[population["team_nurse"]]

    assert len(access.team_ids) == 1


def test_a_break_glass_patient_is_seen_until_the_grant_expires(population):
    access = live_access_many(user_ids={population["emergency"]})[population["emergency"]]
    (patient_id,) = access.patient_ids
    ends = access.expiries[patient_id]

    assert access.sees(patient_id, ends - dt.timedelta(seconds=1))
    assert not access.sees(patient_id, ends)


def test_a_lasting_grant_has_no_expiry(population):
    access = live_access_many(user_ids={population["gp"]})[population["gp"]]

    assert access.patient_ids
    assert access.expiries == {}


def test_the_bulk_reading_costs_the_same_queries_for_one_user_or_many(
    population, django_assert_num_queries
):
    with django_assert_num_queries(8):
        live_access_many(user_ids={population["gp"]})
    with django_assert_num_queries(8):
        live_access_many(user_ids=set(population.values()))


def test_sees_ignores_a_patient_that_is_not_in_the_reading():
    access = LiveAccess(True, frozenset({1}), None, frozenset())

    assert (access.sees(1, timezone.now()), access.sees(2, timezone.now())) == (True, False)
