"""Per-patient parameters: a care-team member with the right role sets a pathway's declared
parameter for one patient, with bounds, history, audit and a live event; alert conditions
read the value as `params.<name>`."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from django.utils import timezone

from coordination.models import PathwayParameter
from coordination.services import care_pathway_cancel
from coordination.services.parameters import (
    parameter_history,
    parameter_list,
    parameter_set,
    parameter_values,
    pathway_parameters,
)
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound, Problem
from directory.services import care_team_member_add
from live.models import OutboxEvent
from patients.models import AuditEvent
from tests.coordination.conftest import Scene, make_practitioner
from tests.coordination.parameters_pathway import LOW_SPO2, CopdScene, copd_publish, copd_scene
from workflows.definition.expressions import evaluate
from workflows.models import PathwayDefinition
from workflows.selectors import instance_definition

User = get_user_model()


@pytest.fixture
def copd(db: None) -> CopdScene:
    copd_publish()
    return copd_scene()


def _set(scene: CopdScene, user: object = None, **kwargs: object) -> PathwayParameter:
    arguments: dict[str, object] = {
        "user": user or scene.pulmonologist.user,
        "care_pathway_id": scene.pathway.pk,
        "name": "spo2_floor",
        "value": 88,
        "reason": "COPD: chronic hypoxaemia, usual SpO2 88-90 %",
    }
    arguments.update(kwargs)
    return parameter_set(**arguments)  # type: ignore[arg-type]


def _values(scene: CopdScene) -> dict[str, float]:
    scene.pathway.refresh_from_db()
    assert scene.pathway.instance is not None
    definition = instance_definition(scene.pathway.instance)
    return parameter_values(care_pathway_id=scene.pathway.pk, definition=definition)


def _nothing_written(before_audit: int) -> None:
    assert PathwayParameter.objects.count() == 0
    assert not OutboxEvent.objects.filter(type="parameter.changed").exists()
    assert not AuditEvent.objects.filter(pk__gt=before_audit, action="update").exists()


def _last_audit_id() -> int:
    return AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


# --- the scenario ------------------------------------------------------------------


def test_a_copd_patients_spo2_floor_is_set_to_88_without_a_new_pathway_version(copd):
    definition_id = copd.pathway.instance.definition_id
    reading = {"code": "59408-5", "value": 89.0, "unit": "%"}
    alert_before = evaluate(LOW_SPO2, {"observation": reading, "params": _values(copd)})

    _set(copd, value=88)

    copd.pathway.refresh_from_db()
    params = _values(copd)
    assert alert_before is True  # 89 % is below the pathway's default floor of 90 %
    assert params == {"spo2_floor": 88.0, "heart_rate_ceiling": 120.0}
    assert evaluate(LOW_SPO2, {"observation": reading, "params": params}) is False
    assert evaluate(LOW_SPO2, {"observation": {**reading, "value": 87.0}, "params": params})
    assert copd.pathway.instance.definition_id == definition_id
    assert PathwayDefinition.objects.filter(key="copd-test").count() == 1


# --- values ----------------------------------------------------------------------------------


def test_values_are_the_defaults_until_someone_sets_one(copd):
    assert _values(copd) == {"spo2_floor": 90.0, "heart_rate_ceiling": 120.0}


def test_the_latest_setting_of_a_name_is_its_value(copd):
    _set(copd, value=88)
    _set(copd, value=86.5)
    _set(copd, user=copd.nurse.user, name="heart_rate_ceiling", value=130)

    assert _values(copd) == {"spo2_floor": 86.5, "heart_rate_ceiling": 130.0}


def test_values_cost_one_query_whatever_the_history(copd, django_assert_num_queries):
    for value in (88, 87, 89):
        _set(copd, value=value)
    _set(copd, user=copd.nurse.user, name="heart_rate_ceiling", value=100)
    definition = instance_definition(copd.pathway.instance)

    with django_assert_num_queries(1):
        values = parameter_values(care_pathway_id=copd.pathway.pk, definition=definition)

    assert values == {"spo2_floor": 89.0, "heart_rate_ceiling": 100.0}


def test_a_pathway_declaring_no_parameter_reads_nothing(scene: Scene, django_assert_num_queries):
    assert scene.pathway.instance is not None
    definition = instance_definition(scene.pathway.instance)

    with django_assert_num_queries(0):
        values = parameter_values(care_pathway_id=scene.pathway.pk, definition=definition)

    assert values == {}


def test_values_of_one_pathway_ignore_another_patients_settings(copd):
    other = copd_scene()
    _set(other, value=85)

    assert _values(copd)["spo2_floor"] == 90.0
    assert _values(other)["spo2_floor"] == 85.0


def test_a_stored_value_outside_the_bounds_the_pathway_now_has_reads_as_the_nearest(copd):
    # As after a migration to a version that narrowed the bounds: rows are not rewritten.
    now = timezone.now()
    PathwayParameter.objects.create(
        care_pathway=copd.pathway, name="spo2_floor", value=Decimal("70"),
        previous_value=Decimal("90"), set_by_label="x", set_at=now, reason="older version",
    )  # fmt: skip

    assert _values(copd)["spo2_floor"] == 80.0


# --- refusals --------------------------------------------------------------------------------


def test_an_unknown_name_is_refused_naming_it_and_the_declared_ones(copd):
    before = _last_audit_id()

    with pytest.raises(InvalidInput) as refused:
        _set(copd, name="spo2_flor")

    assert refused.value.problems == [
        Problem(
            "name",
            "unknown parameter 'spo2_flor' (declared by this pathway: heart_rate_ceiling, "
            "spo2_floor)",
        )
    ]
    _nothing_written(before)


@pytest.mark.parametrize(
    ("value", "shown"),
    [(79, "79"), (95.5, "95.5"), (Decimal("-1"), "-1"), (10**12, "1000000000000")],
)
def test_a_value_outside_the_bounds_is_refused_naming_the_bounds_and_unit(copd, value, shown):
    before = _last_audit_id()

    with pytest.raises(InvalidInput) as refused:
        _set(copd, value=value)

    assert refused.value.problems == [
        Problem("value", f"{shown} is outside the bounds of spo2_floor: [80, 95] %")
    ]
    _nothing_written(before)


def test_the_bounds_themselves_are_allowed(copd):
    _set(copd, value=80)
    _set(copd, value="95")

    assert _values(copd)["spo2_floor"] == 95.0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("eighty-eight", "'eighty-eight' is not a number"),
        (None, "None is not a number"),
        (True, "True is not a number"),
        (float("nan"), "nan is not a number"),
        ("88.12345", "at most 4 decimal places"),
    ],
)
def test_a_value_that_is_not_a_plain_number_is_refused(copd, value, message):
    with pytest.raises(InvalidInput) as refused:
        _set(copd, value=value)

    assert refused.value.problems == [Problem("value", message)]
    assert PathwayParameter.objects.count() == 0


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_a_change_without_a_reason_is_refused(copd, reason):
    before = _last_audit_id()

    with pytest.raises(InvalidInput) as refused:
        _set(copd, reason=reason)

    assert refused.value.problems == [Problem("reason", "required: say why the value changes")]
    _nothing_written(before)


def test_a_bad_value_and_a_missing_reason_are_reported_together(copd):
    with pytest.raises(InvalidInput) as refused:
        _set(copd, value=100, reason="")

    assert [p.location for p in refused.value.problems] == ["value", "reason"]


@pytest.mark.parametrize(
    ("who", "name", "allowed"),
    [
        ("pulmonologist", "spo2_floor", True),
        ("gp", "spo2_floor", True),
        ("nurse", "spo2_floor", False),  # not one of the parameter's roles
        ("nurse", "heart_rate_ceiling", True),  # no roles named: any professional
        ("gp", "heart_rate_ceiling", True),
    ],
)
def test_who_may_set_a_parameter_is_its_roles(copd, who, name, allowed):
    user = getattr(copd, who).user
    value = 88 if name == "spo2_floor" else 130

    if allowed:
        row = _set(copd, user=user, name=name, value=value)
        assert (row.name, row.value, row.set_by_id) == (name, Decimal(value), user.pk)
    else:
        before = _last_audit_id()
        with pytest.raises(NotAllowed) as refused:
            _set(copd, user=user, name=name, value=value)
        assert str(refused.value) == (
            "only a member of the patient's care team as gp, pulmonologist may set spo2_floor"
        )
        _nothing_written(before)


def test_the_patient_sees_their_parameters_but_may_not_set_them(db):
    copd_publish()
    account = User.objects.create_user(username="portal-copd")
    scene = copd_scene(user=account)

    _, shown = parameter_list(user=account, care_pathway_id=scene.pathway.pk)
    with pytest.raises(NotAllowed):
        _set(scene, user=account, name="heart_rate_ceiling", value=130)

    assert [(p.name, p.may_set) for p in shown] == [
        ("spo2_floor", False),
        ("heart_rate_ceiling", False),
    ]
    assert PathwayParameter.objects.count() == 0


def test_a_platform_in_the_care_team_may_not_set_a_parameter_naming_no_roles(copd):
    platform = make_practitioner("other")
    care_team_member_add(patient=copd.patient, role="platform", practitioner=platform, actor=None)

    with pytest.raises(NotAllowed) as refused:
        _set(copd, user=platform.user, name="heart_rate_ceiling", value=130)

    assert str(refused.value) == (
        "only a professional of the patient's care team may set heart_rate_ceiling"
    )


def test_someone_who_may_not_see_the_patient_gets_not_found(copd):
    before = _last_audit_id()

    with pytest.raises(NotFound) as refused:
        _set(copd, user=copd.outsider.user)
    with pytest.raises(NotFound) as missing:
        _set(copd, care_pathway_id=10**9)

    assert str(refused.value) == str(missing.value).replace(str(10**9), str(copd.pathway.pk))
    assert (refused.value.patient_id, refused.value.outcome) == (copd.patient.pk, "denied")
    assert (missing.value.patient_id, missing.value.outcome) == (None, "not_found")
    _nothing_written(before)


def test_a_parameter_of_an_ended_pathway_is_kept(copd):
    care_pathway_cancel(pathway=copd.pathway, user=copd.gp.user, reason="transferred")

    with pytest.raises(Conflict):
        _set(copd)

    assert PathwayParameter.objects.count() == 0


# --- history, audit, event ------------------------------------------------------------------


def test_each_setting_is_kept_with_the_value_before_it_who_when_and_why(copd, time_machine):
    time_machine.move_to(dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC))
    _set(copd, value=88, reason="COPD baseline")
    time_machine.move_to(dt.datetime(2026, 3, 8, 9, 0, tzinfo=dt.UTC))
    _set(copd, user=copd.gp.user, value=87, reason="still symptom-free at 87 %")

    _, rows = parameter_history(user=copd.nurse.user, care_pathway_id=copd.pathway.pk)

    assert [
        (r.name, r.previous_value, r.value, r.set_by_id, r.set_at.day, r.reason) for r in rows
    ] == [
        ("spo2_floor", Decimal(88), Decimal(87), copd.gp.user.pk, 8, "still symptom-free at 87 %"),
        ("spo2_floor", Decimal(90), Decimal(88), copd.pulmonologist.user.pk, 1, "COPD baseline"),
    ]
    assert rows[0].set_by_roles == "gp"


def test_history_of_one_name(copd):
    _set(copd, value=88)
    _set(copd, user=copd.nurse.user, name="heart_rate_ceiling", value=130)

    _, rows = parameter_history(
        user=copd.nurse.user, care_pathway_id=copd.pathway.pk, name="heart_rate_ceiling"
    )

    assert [(r.name, r.value) for r in rows] == [("heart_rate_ceiling", Decimal(130))]


def test_history_is_not_found_for_someone_who_may_not_see_the_patient(copd):
    _set(copd)

    with pytest.raises(NotFound):
        parameter_history(user=copd.outsider.user, care_pathway_id=copd.pathway.pk)
    with pytest.raises(NotFound):
        parameter_list(user=copd.outsider.user, care_pathway_id=copd.pathway.pk)


def test_a_setting_is_audited_under_the_patient(copd):
    before = _last_audit_id()

    row = _set(copd, entry_point="rest", client_address="192.0.2.4")

    [record] = AuditEvent.objects.filter(pk__gt=before)
    assert (
        record.actor_id, record.action, record.resource_type, record.resource_id,
        record.patient_id, record.entry_point, record.outcome, record.client_address,
    ) == (
        copd.pulmonologist.user.pk, "update", "PathwayParameter", str(row.pk),
        copd.patient.pk, "rest", "success", "192.0.2.4",
    )  # fmt: skip
    assert record.detail == {
        "pathway": copd.pathway.pk,
        "name": "spo2_floor",
        "value": "88",
        "previous": "90",
        "reason": "COPD: chronic hypoxaemia, usual SpO2 88-90 %",
    }


def test_a_setting_tells_live_views_without_the_value(copd):
    row = _set(copd)

    [event] = OutboxEvent.objects.filter(type="parameter.changed")
    assert (event.patient_id, event.payload) == (
        copd.patient.pk,
        {"pathway": copd.pathway.pk, "name": "spo2_floor", "parameter": row.pk},
    )


# --- the listing -------------------------------------------------------------------------------


def test_the_listing_shows_each_declared_parameter_its_value_and_who_may_set_it(copd):
    _set(copd, value=88)

    as_nurse = pathway_parameters(pathway=copd.pathway, user=copd.nurse.user)
    as_gp = pathway_parameters(pathway=copd.pathway, user=copd.gp.user)

    assert [
        (p.name, p.value, p.default, p.minimum, p.maximum, p.unit, p.is_default, p.may_set)
        for p in as_nurse
    ] == [
        ("spo2_floor", 88.0, 90.0, 80.0, 95.0, "%", False, False),
        ("heart_rate_ceiling", 120.0, 120.0, 90.0, 150.0, "/min", True, True),
    ]
    assert as_nurse[0].set_by == copd.pulmonologist.user.get_full_name()
    assert as_nurse[0].title == {"en": "SpO2 floor", "fr": "Seuil de SpO2"}
    assert [p.may_set for p in as_gp] == [True, True]


def test_a_pathway_declaring_no_parameter_lists_none(scene: Scene):
    assert pathway_parameters(pathway=scene.pathway, user=scene.gp.user) == []


# --- concurrency (PostgreSQL) ---------------------------------------------------------------


def test_concurrent_settings_chain_each_previous_value_to_the_one_before(postgres_transactional):
    copd_publish()
    scene = copd_scene()
    values = [Decimal(80 + i) for i in range(8)]
    barrier = threading.Barrier(len(values))
    failures: list[BaseException] = []

    def worker(value: Decimal) -> None:
        try:
            barrier.wait()
            _set(scene, value=value, reason=f"set to {value}")
        except BaseException as error:  # reported by the assertion below
            failures.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(v,)) for v in values]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    rows = list(PathwayParameter.objects.order_by("id"))
    assert failures == []
    assert sorted(r.value for r in rows) == values
    # Each setting saw the one committed before it: no two read the same previous value.
    assert [r.previous_value for r in rows] == [Decimal(90)] + [r.value for r in rows[:-1]]
    assert _values(scene)["spo2_floor"] == float(rows[-1].value)
