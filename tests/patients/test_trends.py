"""Trends over a window (`rise`, `fall`, next to `delta`) and the NEWS2 inputs read from a
patient's latest vital signs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from patients.errors import InvalidRange
from patients.models import AuditEvent, Observation
from patients.news2 import Parameter, Risk
from patients.selectors import (
    delta,
    fall,
    news2_at,
    news2_inputs,
    rise,
    trend_delta,
    trend_fall,
    trend_rise,
)
from patients.services import observations_record
from tests.coordination.conftest import Scene, care_test, scene
from tests.patients.conftest import T0

__all__ = ["care_test", "scene"]

WEIGHT, GLUCOSE = "29463-7", "41653-7"
RESPIRATORY_RATE, SPO2, OXYGEN, SYSTOLIC = "9279-1", "59408-5", "3151-8", "8480-6"
PULSE, CONSCIOUSNESS, TEMPERATURE = "8867-4", "67775-7", "8310-5"
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
UNITS = {
    WEIGHT: "kg",
    RESPIRATORY_RATE: "/min",
    SPO2: "%",
    OXYGEN: "L/min",
    SYSTOLIC: "mm[Hg]",
    PULSE: "/min",
    CONSCIOUSNESS: "{ACVPU}",
    TEMPERATURE: "Cel",
}


def store(patient, actor, *readings: tuple[str, str, dt.datetime]) -> None:
    items = [
        {"code": code, "value": value, "unit": UNITS[code], "effective_at": at}
        for code, value, at in readings
    ]
    observations_record(
        patient=patient,
        items=items,
        actor=actor,
        source=Observation.Source.DEVICE,
        entry_point=AuditEvent.EntryPoint.REST,
        now=T0,
    )


def weights(patient, actor, *values_and_days_ago: tuple[str, float]) -> None:
    store(patient, actor, *((WEIGHT, v, T0 - ago * DAY) for v, ago in values_and_days_ago))


@pytest.mark.django_db
def test_a_gain_that_follows_a_dip_counts_in_full(patient, nurse):
    weights(patient, nurse, ("80", 2), ("78.5", 1), ("81", 0))

    assert delta(patient.pk, WEIGHT, "P3D", T0) == Decimal("1.0")
    assert rise(patient.pk, WEIGHT, "P3D", T0) == Decimal("2.5")
    assert fall(patient.pk, WEIGHT, "P3D", T0) == Decimal("0")


@pytest.mark.django_db
def test_a_loss_that_follows_a_peak_counts_in_full(patient, nurse):
    weights(patient, nurse, ("80", 2), ("82", 1), ("79.5", 0))

    assert delta(patient.pk, WEIGHT, "P3D", T0) == Decimal("-0.5")
    assert fall(patient.pk, WEIGHT, "P3D", T0) == Decimal("2.5")
    assert rise(patient.pk, WEIGHT, "P3D", T0) == Decimal("0")


@pytest.mark.django_db
def test_the_window_ends_at_at_and_includes_both_ends(patient, nurse):
    weights(patient, nurse, ("77", 4), ("80", 3), ("78.5", 1), ("81", 0))

    # [T0 - 3 days, T0] includes the 80 taken exactly 3 days before; the 77 is outside.
    assert rise(patient.pk, WEIGHT, "P3D", T0) == Decimal("2.5")
    assert fall(patient.pk, WEIGHT, "P3D", T0) == Decimal("0")
    # Ending a day earlier: the 81 is not yet taken; 80 then 78.5.
    assert rise(patient.pk, WEIGHT, "P3D", T0 - DAY) == Decimal("1.5")
    assert fall(patient.pk, WEIGHT, "P3D", T0 - DAY) == Decimal("1.5")


@pytest.mark.django_db
def test_rise_and_fall_need_two_measurements_in_the_window(patient, nurse):
    weights(patient, nurse, ("80", 2), ("81", 0))

    assert rise(patient.pk, WEIGHT, "P1D", T0) is None
    assert fall(patient.pk, WEIGHT, "P1D", T0) is None
    assert rise(patient.pk, "8867-4", "P30D", T0) is None
    assert fall(patient.pk, WEIGHT, "P1D", T0 - 10 * DAY) is None


@pytest.mark.django_db
def test_two_equal_readings_neither_rise_nor_fall(patient, nurse):
    weights(patient, nurse, ("80", 1), ("80", 0))

    assert (rise(patient.pk, WEIGHT, "P2D", T0), fall(patient.pk, WEIGHT, "P2D", T0)) == (
        Decimal(0),
        Decimal(0),
    )


@pytest.mark.django_db
def test_rise_and_fall_compare_mixed_units_in_the_canonical_one(patient, nurse):
    observations_record(
        patient=patient,
        items=[
            {"code": GLUCOSE, "value": "1.20", "unit": "g/L", "effective_at": T0 - 2 * DAY},
            {"code": GLUCOSE, "value": "95", "unit": "mg/dL", "effective_at": T0 - DAY},
        ],
        actor=nurse,
        source=Observation.Source.DEVICE,
        entry_point=AuditEvent.EntryPoint.REST,
        now=T0,
    )
    # Stored before 14743-9 was accepted: still part of the 41653-7 series, 5 * 18.016 mg/dL.
    Observation.objects.create(
        patient=patient,
        code=GLUCOSE,
        value=Decimal("5"),
        unit="mmol/L",
        effective_at=T0,
        source=Observation.Source.DEVICE,
        received_at=T0,
    )

    # The last (90.08 mg/dL) is the lowest: no rise; the fall is from 1.20 g/L = 120 mg/dL.
    assert rise(patient.pk, GLUCOSE, "P3D", T0) == Decimal("0")
    assert fall(patient.pk, GLUCOSE, "P3D", T0) == Decimal("120") - Decimal("90.080")


@pytest.mark.parametrize("window", ["3 days", "P", "PT", "P0D", "-P1D", "P1DT"])
@pytest.mark.django_db
def test_a_malformed_window_is_refused(patient, window):
    for helper in (rise, fall):
        with pytest.raises(InvalidRange):
            helper(patient.pk, WEIGHT, window, T0)
    with pytest.raises(InvalidRange):
        news2_inputs(patient.pk, T0, window)


@pytest.mark.django_db
def test_naive_times_are_refused(patient):
    naive = dt.datetime(2026, 3, 2, 8, 0)
    for helper in (rise, fall):
        with pytest.raises(InvalidRange, match=r"^at must be timezone-aware$"):
            helper(patient.pk, WEIGHT, "P1D", naive)
    with pytest.raises(InvalidRange, match=r"^at must be timezone-aware$"):
        news2_inputs(patient.pk, naive, "PT12H")


@pytest.mark.django_db
def test_windows_may_be_timedeltas(patient, nurse):
    weights(patient, nurse, ("80", 2), ("78.5", 1), ("81", 0))

    assert rise(patient.pk, WEIGHT, dt.timedelta(hours=36), T0) == Decimal("2.5")


@pytest.mark.django_db
def test_rise_and_fall_are_two_queries_however_long_the_series(
    patient, nurse, django_assert_num_queries
):
    weights(patient, nurse, *((str(70 + i % 5), i / 10) for i in range(30)))

    with django_assert_num_queries(2):
        rise(patient.pk, WEIGHT, "P3D", T0)
    with django_assert_num_queries(2):
        fall(patient.pk, WEIGHT, "P3D", T0)


@pytest.mark.parametrize(
    ("values", "expected_delta", "expected_rise", "expected_fall"),
    [
        ([], None, None, None),
        ([80.0], None, None, None),
        ([80.0, 78.5, 81.0], 1.0, 2.5, 0.0),
        ([80.0, 82.0, 79.5], -0.5, 0.0, 2.5),
        ([Decimal("80"), Decimal("78.5"), Decimal("81")], Decimal("1"), Decimal("2.5"), 0),
    ],
)
def test_the_pure_trends_over_a_series_in_memory(
    values, expected_delta, expected_rise, expected_fall
):
    assert trend_delta(values) == expected_delta
    assert trend_rise(values) == expected_rise
    assert trend_fall(values) == expected_fall


@pytest.mark.django_db
def test_the_pure_trends_give_the_selectors_answers(patient, nurse):
    series = ["72.4", "71.9", "73.0", "72.2", "74.1", "73.3"]
    weights(patient, nurse, *((v, 5 - i) for i, v in enumerate(series)))

    for window, count in (("P2D", 3), ("P4D", 5), ("P9D", 6)):
        values = [Decimal(v) for v in series[-count:]]
        assert delta(patient.pk, WEIGHT, window, T0) == trend_delta(values)
        assert rise(patient.pk, WEIGHT, window, T0) == trend_rise(values)
        assert fall(patient.pk, WEIGHT, window, T0) == trend_fall(values)


# --- NEWS2 inputs ------------------------------------------------------------------------


def vitals(at: dt.datetime, **changes: str) -> list[tuple[str, str, dt.datetime]]:
    normal = {
        RESPIRATORY_RATE: "16",
        SPO2: "97",
        OXYGEN: "0",
        SYSTOLIC: "125",
        PULSE: "72",
        CONSCIOUSNESS: "0",
        TEMPERATURE: "37.1",
    }
    normal.update(changes)
    return [(code, value, at) for code, value in normal.items()]


@pytest.mark.django_db
def test_news2_inputs_are_the_latest_of_each_code_within_the_window(patient, nurse):
    store(patient, nurse, *vitals(T0 - 3 * HOUR))
    store(patient, nurse, (PULSE, "118", T0 - HOUR), (SPO2, "93", T0 - 2 * HOUR))
    store(patient, nurse, (WEIGHT, "80", T0))  # not a NEWS2 parameter

    found = news2_inputs(patient.pk, T0, "PT6H")

    assert {code: m.value for code, m in found.items()} == {
        RESPIRATORY_RATE: Decimal("16"),
        SPO2: Decimal("93"),
        OXYGEN: Decimal("0"),
        SYSTOLIC: Decimal("125"),
        PULSE: Decimal("118"),
        CONSCIOUSNESS: Decimal("0"),
        TEMPERATURE: Decimal("37.1"),
    }
    assert found[PULSE].effective_at == T0 - HOUR
    assert found[PULSE].unit == "/min"
    assert found[PULSE].observation_id == Observation.objects.get(code=PULSE, value=118).pk


@pytest.mark.django_db
def test_news2_inputs_are_one_query(patient, nurse, django_assert_num_queries):
    store(patient, nurse, *vitals(T0 - 3 * HOUR), *vitals(T0 - 2 * HOUR))

    with django_assert_num_queries(1):
        found = news2_inputs(patient.pk, T0, "PT6H")

    assert len(found) == 7


@pytest.mark.django_db
def test_news2_is_complete_when_every_parameter_is_in_the_window(patient, nurse):
    store(patient, nurse, *vitals(T0 - 2 * HOUR, **{PULSE: "118", RESPIRATORY_RATE: "22"}))

    result = news2_at(patient.pk, T0, "PT6H")

    assert result.complete is True
    assert result.score == 4
    assert result.sub_scores[Parameter.PULSE] == 2
    assert result.sub_scores[Parameter.RESPIRATION_RATE] == 2
    assert result.risk is Risk.LOW


@pytest.mark.django_db
def test_news2_is_partial_when_a_parameter_is_older_than_the_window(patient, nurse):
    store(patient, nurse, (TEMPERATURE, "39.4", T0 - 30 * HOUR))
    store(patient, nurse, *[r for r in vitals(T0 - HOUR) if r[0] != TEMPERATURE])
    store(patient, nurse, (CONSCIOUSNESS, "1", T0 - HOUR / 2))  # new confusion

    within_a_day = news2_at(patient.pk, T0, "PT24H")
    within_two = news2_at(patient.pk, T0, "PT48H")

    assert within_a_day.missing == (Parameter.TEMPERATURE,)
    assert (within_a_day.score, within_a_day.total) == (None, 3)
    assert within_a_day.risk is Risk.LOW_MEDIUM
    assert (within_two.score, within_two.total) == (5, 5)
    assert within_two.risk is Risk.MEDIUM


@pytest.mark.django_db
def test_news2_on_scale_2_reads_the_oxygen_flow(patient, nurse):
    store(patient, nurse, *vitals(T0 - HOUR, **{SPO2: "95", OXYGEN: "2"}))

    scale_1 = news2_at(patient.pk, T0, "PT6H")
    scale_2 = news2_at(patient.pk, T0, "PT6H", spo2_scale=2)

    assert scale_1.sub_scores[Parameter.SPO2] == 1
    assert scale_2.sub_scores[Parameter.SPO2] == 2
    assert (scale_1.score, scale_2.score) == (3, 4)


def test_readings_posted_through_the_api_after_a_login_feed_the_trends(scene: Scene):
    scene.nurse.user.set_password("synthetic-login-pass-42")
    scene.nurse.user.save(update_fields=["password"])
    client = Client()
    login = client.post(
        "/login/", {"username": scene.nurse.user.username, "password": "synthetic-login-pass-42"}
    )
    assert login.status_code == 302
    now = timezone.now().replace(microsecond=0)
    items = [
        {"code": WEIGHT, "value": v, "unit": "kg", "effective_at": (now - h * HOUR).isoformat()}
        for v, h in (("80", 48), ("78.5", 24), ("81", 1))
    ]

    response = client.post(
        f"/api/v1/patients/{scene.patient.pk}/observations/",
        {"items": items},
        content_type="application/json",
    )

    assert response.status_code == 201
    assert delta(scene.patient.pk, WEIGHT, "P3D", now) == Decimal("1")
    assert rise(scene.patient.pk, WEIGHT, "P3D", now) == Decimal("2.5")
    assert fall(scene.patient.pk, WEIGHT, "P3D", now) == Decimal("0")


@pytest.mark.django_db
def test_news2_without_any_vital_sign_in_the_window_is_neither_score_nor_partial(patient, nurse):
    store(patient, nurse, *vitals(T0 - 3 * DAY), (WEIGHT, "80", T0))

    result = news2_at(patient.pk, T0, "PT24H")

    assert (result.score, result.partial, result.missing) == (None, None, tuple(Parameter))
