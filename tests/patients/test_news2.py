"""NEWS2 against the Royal College of Physicians' chart (NEWS2, 2017, charts 1 and 2).

Every band boundary of every parameter is checked from both sides, with all the other
parameters at their normal (0-point) value, so each case isolates one row of the chart.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from patients.measurements import MEASUREMENTS
from patients.news2 import (
    NEWS2_CODES,
    Consciousness,
    News2Inputs,
    Parameter,
    Risk,
    inputs_from_values,
    news2_from_values,
    news2_score,
)

NORMAL = News2Inputs(
    respiration_rate=16,
    spo2=97,
    on_oxygen=False,
    systolic_bp=120,
    pulse=70,
    consciousness=Consciousness.ALERT,
    temperature=Decimal("37.0"),
)


def scored(parameter: str, value: object, *, base: News2Inputs = NORMAL, scale: int = 1) -> int:
    inputs = News2Inputs(**{**base.__dict__, parameter: value})
    result = news2_score(inputs, spo2_scale=scale)  # type: ignore[arg-type]
    others = {p: s for p, s in result.sub_scores.items() if p != Parameter(_row(parameter))}
    assert set(others.values()) <= {0} or parameter == "on_oxygen"
    return result.sub_scores[Parameter(_row(parameter))]


def _row(parameter: str) -> str:
    return "air_or_oxygen" if parameter == "on_oxygen" else parameter


# (value, points): each boundary of the chart from both sides.
RESPIRATION_RATE = [
    (0, 3), (8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (60, 3),
]  # fmt: skip
SPO2_SCALE_1 = [(50, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)]
SYSTOLIC_BP = [
    (40, 3), (90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3),
    (300, 3),
]  # fmt: skip
PULSE = [
    (20, 3), (40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2), (130, 2),
    (131, 3), (250, 3),
]  # fmt: skip
TEMPERATURE = [
    ("30.0", 3), ("35.0", 3), ("35.1", 1), ("36.0", 1), ("36.1", 0), ("38.0", 0),
    ("38.1", 1), ("39.0", 1), ("39.1", 2), ("42.0", 2),
]  # fmt: skip


@pytest.mark.parametrize(("value", "points"), RESPIRATION_RATE)
def test_respiration_rate_bands(value, points):
    assert scored("respiration_rate", value) == points


@pytest.mark.parametrize(("value", "points"), SPO2_SCALE_1)
def test_spo2_scale_1_bands_whether_on_air_or_oxygen(value, points):
    on_oxygen = News2Inputs(**{**NORMAL.__dict__, "on_oxygen": True})

    assert scored("spo2", value) == points
    assert (
        news2_score(News2Inputs(**{**on_oxygen.__dict__, "spo2": value})).sub_scores[Parameter.SPO2]
        == points
    )


@pytest.mark.parametrize(("value", "points"), SYSTOLIC_BP)
def test_systolic_blood_pressure_bands(value, points):
    assert scored("systolic_bp", value) == points


@pytest.mark.parametrize(("value", "points"), PULSE)
def test_pulse_bands(value, points):
    assert scored("pulse", value) == points


@pytest.mark.parametrize(("value", "points"), TEMPERATURE)
def test_temperature_bands(value, points):
    assert scored("temperature", Decimal(value)) == points


@pytest.mark.parametrize(
    ("level", "points"),
    [
        (Consciousness.ALERT, 0),
        (Consciousness.NEW_CONFUSION, 3),
        (Consciousness.VOICE, 3),
        (Consciousness.PAIN, 3),
        (Consciousness.UNRESPONSIVE, 3),
    ],
)
def test_consciousness_scores_three_for_anything_but_alert(level, points):
    assert scored("consciousness", level) == points


@pytest.mark.parametrize(("on_oxygen", "points"), [(False, 0), (True, 2)])
def test_supplemental_oxygen_scores_two(on_oxygen, points):
    result = news2_score(News2Inputs(**{**NORMAL.__dict__, "on_oxygen": on_oxygen}))

    assert result.sub_scores[Parameter.AIR_OR_OXYGEN] == points
    assert result.total == points


# Scale 2 (hypercapnic respiratory failure, target 88-92 %): (SpO2, on air, on oxygen).
SPO2_SCALE_2 = [
    (50, 3, 3), (83, 3, 3), (84, 2, 2), (85, 2, 2), (86, 1, 1), (87, 1, 1),
    (88, 0, 0), (92, 0, 0), (93, 0, 1), (94, 0, 1), (95, 0, 2), (96, 0, 2),
    (97, 0, 3), (100, 0, 3),
]  # fmt: skip


@pytest.mark.parametrize(("value", "on_air", "on_oxygen"), SPO2_SCALE_2)
def test_spo2_scale_2_bands_on_air_and_on_oxygen(value, on_air, on_oxygen):
    def spo2_points(oxygen: bool) -> int:
        inputs = News2Inputs(**{**NORMAL.__dict__, "spo2": value, "on_oxygen": oxygen})
        return news2_score(inputs, spo2_scale=2).sub_scores[Parameter.SPO2]

    assert spo2_points(False) == on_air
    assert spo2_points(True) == on_oxygen


def test_scale_2_on_oxygen_adds_the_oxygen_points_to_the_saturation_points():
    inputs = News2Inputs(**{**NORMAL.__dict__, "spo2": 97, "on_oxygen": True})

    result = news2_score(inputs, spo2_scale=2)

    assert result.sub_scores[Parameter.SPO2] == 3
    assert result.sub_scores[Parameter.AIR_OR_OXYGEN] == 2
    assert result.total == 5
    assert result.risk is Risk.MEDIUM
    assert result.spo2_scale == 2


def test_the_same_saturation_scores_differently_on_each_scale():
    inputs = News2Inputs(**{**NORMAL.__dict__, "spo2": 89})

    assert news2_score(inputs).sub_scores[Parameter.SPO2] == 3
    assert news2_score(inputs, spo2_scale=2).sub_scores[Parameter.SPO2] == 0


@pytest.mark.parametrize(("value", "points"), [(80, 3), (85, 2), (87, 1), (90, 0)])
def test_scale_2_below_93_needs_no_air_or_oxygen(value, points):
    inputs = News2Inputs(**{**NORMAL.__dict__, "spo2": value, "on_oxygen": None})

    result = news2_score(inputs, spo2_scale=2)

    assert result.sub_scores[Parameter.SPO2] == points
    assert result.missing == (Parameter.AIR_OR_OXYGEN,)


def test_scale_2_from_93_without_air_or_oxygen_cannot_score_the_saturation():
    inputs = News2Inputs(**{**NORMAL.__dict__, "spo2": 95, "on_oxygen": None})

    result = news2_score(inputs, spo2_scale=2)

    assert Parameter.SPO2 not in result.sub_scores
    assert result.missing == (Parameter.SPO2, Parameter.AIR_OR_OXYGEN)
    assert result.score is None


def test_an_unknown_scale_is_refused():
    with pytest.raises(ValueError, match="spo2_scale must be 1 or 2"):
        news2_score(NORMAL, spo2_scale=3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("parameter", "value", "points"),
    [
        ("respiration_rate", "8.4", 3),
        ("respiration_rate", "8.5", 1),
        ("spo2", "95.4", 1),
        ("spo2", "95.5", 0),
        ("pulse", "90.4", 0),
        ("pulse", "90.5", 1),
        ("systolic_bp", "219.4", 0),
        ("systolic_bp", "219.5", 3),
        ("temperature", "38.04", 0),
        ("temperature", "38.05", 1),
        ("temperature", 38.05, 1),
    ],
)
def test_values_are_charted_rounded_half_up_to_the_charts_precision(parameter, value, points):
    given = Decimal(value) if isinstance(value, str) else value

    assert scored(parameter, given) == points


def test_all_normal_is_zero_low_and_complete():
    result = news2_score(NORMAL)

    assert result.total == 0
    assert result.score == 0
    assert result.partial == 0
    assert result.complete is True
    assert result.missing == ()
    assert result.risk is Risk.LOW
    assert list(result.sub_scores) == list(Parameter)


@pytest.mark.parametrize(
    ("changes", "total", "risk"),
    [
        ({"respiration_rate": 21}, 2, Risk.LOW),
        ({"respiration_rate": 21, "pulse": 111}, 4, Risk.LOW),
        # A single parameter scoring 3 is low-medium although the total is low.
        ({"consciousness": Consciousness.NEW_CONFUSION}, 3, Risk.LOW_MEDIUM),
        ({"temperature": Decimal("34.0")}, 3, Risk.LOW_MEDIUM),
        ({"systolic_bp": 90, "pulse": 91}, 4, Risk.LOW_MEDIUM),
        # Two parameters at 1 and 2 are not a 3 in one parameter.
        ({"pulse": 91, "respiration_rate": 21}, 3, Risk.LOW),
        ({"respiration_rate": 21, "pulse": 111, "temperature": Decimal("38.5")}, 5, Risk.MEDIUM),
        ({"respiration_rate": 25, "pulse": 111}, 5, Risk.MEDIUM),
        ({"respiration_rate": 25, "pulse": 111, "temperature": Decimal("38.5")}, 6, Risk.MEDIUM),
        ({"respiration_rate": 25, "pulse": 111, "temperature": Decimal("39.5")}, 7, Risk.HIGH),
        (
            {
                "respiration_rate": 30,
                "spo2": 88,
                "on_oxygen": True,
                "systolic_bp": 85,
                "pulse": 140,
                "consciousness": Consciousness.UNRESPONSIVE,
                "temperature": Decimal("34.5"),
            },
            20,
            Risk.HIGH,
        ),
    ],
)
def test_clinical_risk_bands(changes, total, risk):
    result = news2_score(News2Inputs(**{**NORMAL.__dict__, **changes}))

    assert result.total == total
    assert result.risk is risk


def test_a_partial_score_sums_what_is_present_and_names_what_is_missing():
    inputs = News2Inputs(respiration_rate=22, spo2=93, pulse=115)

    result = news2_score(inputs)

    assert result.total == 6
    assert result.sub_scores == {
        Parameter.RESPIRATION_RATE: 2,
        Parameter.SPO2: 2,
        Parameter.PULSE: 2,
    }
    assert result.missing == (
        Parameter.AIR_OR_OXYGEN,
        Parameter.SYSTOLIC_BP,
        Parameter.CONSCIOUSNESS,
        Parameter.TEMPERATURE,
    )
    assert result.complete is False
    assert result.score is None
    assert result.partial == 6
    assert result.risk is Risk.MEDIUM


def test_nothing_present_is_an_empty_partial_score():
    result = news2_score(News2Inputs())

    assert result.total == 0
    assert result.sub_scores == {}
    assert result.missing == tuple(Parameter)
    assert result.score is None
    assert result.partial is None


def test_inputs_from_measurement_codes():
    values = {
        "9279-1": Decimal("18"),
        "59408-5": Decimal("95"),
        "3151-8": Decimal("2"),
        "8480-6": Decimal("105"),
        "8867-4": Decimal("95"),
        "67775-7": Decimal("2"),
        "8310-5": Decimal("38.2"),
        "29463-7": Decimal("80"),  # not a NEWS2 parameter: ignored
    }

    inputs = inputs_from_values(values)
    result = news2_from_values(values)

    assert inputs == News2Inputs(
        respiration_rate=Decimal("18"),
        spo2=Decimal("95"),
        on_oxygen=True,
        systolic_bp=Decimal("105"),
        pulse=Decimal("95"),
        consciousness=Consciousness.VOICE,
        temperature=Decimal("38.2"),
    )
    # 0 + 1 + 2 (oxygen) + 1 + 1 + 3 + 1
    assert result.total == 9
    assert result.score == 9
    assert result.risk is Risk.HIGH


def test_an_oxygen_flow_of_zero_is_air():
    result = news2_from_values({"3151-8": 0, "59408-5": 94.0}, spo2_scale=2)

    assert result.sub_scores == {Parameter.SPO2: 0, Parameter.AIR_OR_OXYGEN: 0}


def test_codes_given_as_none_are_missing():
    result = news2_from_values({"9279-1": None, "8867-4": 131})

    assert result.sub_scores == {Parameter.PULSE: 3}
    assert Parameter.RESPIRATION_RATE in result.missing


def test_every_parameter_is_read_from_an_accepted_measurement_in_the_charts_unit():
    units = {p: MEASUREMENTS[code].canonical_unit for p, code in NEWS2_CODES.items()}

    assert units == {
        Parameter.RESPIRATION_RATE: "/min",
        Parameter.SPO2: "%",
        Parameter.AIR_OR_OXYGEN: "L/min",
        Parameter.SYSTOLIC_BP: "mm[Hg]",
        Parameter.PULSE: "/min",
        Parameter.CONSCIOUSNESS: "{ACVPU}",
        Parameter.TEMPERATURE: "Cel",
    }
