"""What an alert condition tests of the observation, read from its syntax tree when the
definition is compiled: the codes it is restricted to and its thresholds."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflows.definition import compile_document, validate_source
from workflows.definition.conditions import NOT_ANALYSED, Threshold, observation_tests
from workflows.definition.expressions import ExpressionError, evaluate

# --- the codes a condition is restricted to -----------------------------------------------------


@pytest.mark.parametrize(
    ("source", "codes"),
    [
        ("observation.code == '59408-5' && observation.value < 90.0", {"59408-5"}),
        ('observation.code == "59408-5" && observation.value < 90.0', {"59408-5"}),
        ("'59408-5' == observation.code && observation.value < 90.0", {"59408-5"}),
        ("observation.value < 90.0 && observation.code == '59408-5'", {"59408-5"}),
        ("(observation.code == 'A' && observation.value > 1.0) && last('B') > 2.0", {"A"}),
        ("observation.code == 'A'", {"A"}),
        ("observation.code in ['A', 'B'] && observation.value >= 2.0", {"A", "B"}),
        ("observation.code in ['A', 'B',] && observation.value >= 2.0", {"A", "B"}),
        ("observation.code in ['A', 'B'] && observation.code == 'B'", {"B"}),
        ("observation.code in ['A'] && observation.code == 'B'", set()),
    ],
)
def test_a_code_test_among_the_top_level_conjuncts_restricts_the_condition(source, codes):
    assert observation_tests(source).only_codes == frozenset(codes)


@pytest.mark.parametrize(
    "source",
    [
        "observation.value < 90.0",
        "rise('29463-7', 'P3D') >= 2.0",
        # under ||: true for other codes when the other side is
        "observation.code == 'A' || observation.value > 5.0",
        "observation.value > 5.0 || observation.code == 'A' && observation.value > 1.0",
        "(observation.code == 'A' || observation.code == 'B') && observation.value > 1.0",
        "(observation.code == 'A' && observation.value > 1.0) || last('B') > 2.0",
        # negated, conditional, compared otherwise
        "!(observation.code == 'A') && observation.value > 1.0",
        "observation.code != 'A' && observation.value > 1.0",
        "(observation.code == 'A' ? observation.value > 1.0 : false) && true",
        "observation.code.startsWith('A') && observation.value > 1.0",
        # a list or a code that is not written out plainly
        "observation.code in ['A', observation.unit] && observation.value > 1.0",
        "observation.code in params.codes && observation.value > 1.0",
        "observation.code == 'A' + 'B' && observation.value > 1.0",
        r"observation.code == 'A\x42' && observation.value > 1.0",
        "observation.code == r'A' && observation.value > 1.0",
        "observation.code == '''A''' && observation.value > 1.0",
    ],
)
def test_a_condition_true_for_some_other_code_is_not_restricted(source):
    assert observation_tests(source).only_codes is None


def test_a_condition_that_cannot_be_analysed_gives_nothing():
    assert observation_tests("observation.code == 'A' &&") == NOT_ANALYSED
    too_deep = "observation.code == 'A' && " + "(" * 40 + "observation.value > 1.0" + ")" * 40

    assert observation_tests(too_deep) == NOT_ANALYSED


@given(
    code=st.sampled_from(["A", "B", "C"]),
    value=st.floats(min_value=-10, max_value=10, allow_nan=False),
    source=st.sampled_from(
        [
            "observation.code == 'A' && observation.value > 1.0",
            "observation.code in ['A', 'B'] && observation.value > 1.0",
            "observation.value < 0.0 && observation.code == 'B'",
            "observation.code == 'A' && observation.value > 1.0 || observation.value < -5.0",
            "observation.code == 'A' || observation.value > 1.0",
            "observation.code == 'C' && observation.value / 0.0 > 1.0",
        ]
    ),
)
def test_a_restricted_condition_is_false_for_every_other_code(code, value, source):
    only = observation_tests(source).only_codes
    observation = {"code": code, "value": value, "unit": "x"}

    try:
        holds = evaluate(source, {"observation": observation}) is True
    except ExpressionError:
        holds = False

    if only is not None and code not in only:
        assert not holds


# --- thresholds ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "thresholds"),
    [
        (
            "observation.code == '59408-5' && observation.value < 90.0",
            [Threshold(op="<", value=90.0)],
        ),
        ("observation.value <= 90", [Threshold(op="<=", value=90.0)]),
        ("observation.value > -2.5", [Threshold(op=">", value=-2.5)]),
        ("observation.value >= 1e2", [Threshold(op=">=", value=100.0)]),
        ("observation.value >= 0x10", [Threshold(op=">=", value=16.0)]),
        (
            "observation.value < params.spo2_floor",
            [Threshold(op="<", parameter="spo2_floor")],
        ),
        # written the other way round: read with observation.value on the left
        ("90.0 > observation.value", [Threshold(op="<", value=90.0)]),
        ("params.ceiling <= observation.value", [Threshold(op=">=", parameter="ceiling")]),
        (
            "observation.code == '8867-4' && (observation.value > params.heart_rate_max"
            " || observation.value < params.heart_rate_min)",
            [
                Threshold(op=">", parameter="heart_rate_max"),
                Threshold(op="<", parameter="heart_rate_min"),
            ],
        ),
        (
            "observation.value > 120.0 || observation.value < 50.0 || observation.value == 0.0",
            [Threshold(op=">", value=120.0), Threshold(op="<", value=50.0)],
        ),
    ],
)
def test_comparisons_of_the_value_are_its_thresholds_in_the_order_written(source, thresholds):
    assert observation_tests(source).thresholds == tuple(thresholds)


@pytest.mark.parametrize(
    "source",
    [
        "rise('29463-7', 'P3D') >= 2.0",
        "observation.code == '29463-7' && rise('29463-7', 'P3D') >= params.weight_gain_kg_3d",
        "last('59408-5') < 90.0",
        # inside a call, a comprehension, under ! or ?: the comparison is not a line crossed
        "size([observation.value < 90.0]) == 1",
        "[1.0].exists(x, observation.value < 90.0)",
        "!(observation.value < 90.0)",
        "observation.unit == '%' ? observation.value < 90.0 : false",
        # compared with something other than a number or a parameter
        "observation.value < params.floor * 1.1",
        "observation.value < last('59408-5')",
        "observation.value < double(params.floor)",
        "observation.value == 90.0 || observation.value != 80.0",
        "observation.value < 'x'",
    ],
)
def test_other_comparisons_are_not_thresholds(source):
    assert observation_tests(source).thresholds == ()


def test_a_threshold_carries_the_unit_its_conjunction_requires():
    source = textwrap.dedent(
        """\
        observation.code in ['41653-7', '14743-9'] && (
        (observation.unit == 'mg/dL' && observation.value < 70.0 && observation.value >= 54.0) ||
        (observation.unit == 'mmol/L' && observation.value < 3.9) ||
        observation.value < 1.0)"""
    )

    assert observation_tests(source).thresholds == (
        Threshold(op="<", value=70.0, unit="mg/dL"),
        Threshold(op=">=", value=54.0, unit="mg/dL"),
        Threshold(op="<", value=3.9, unit="mmol/L"),
        Threshold(op="<", value=1.0),
    )


def test_a_unit_required_around_a_disjunction_applies_inside_it():
    source = "'%' == observation.unit && (observation.value < 90.0 || observation.value > 99.0)"

    assert observation_tests(source).thresholds == (
        Threshold(op="<", value=90.0, unit="%"),
        Threshold(op=">", value=99.0, unit="%"),
    )


@pytest.mark.parametrize(
    "source",
    [
        "(observation.unit == '%' || observation.unit == 'ratio') && observation.value < 90.0",
        "observation.unit != '%' && observation.value < 90.0",
        "observation.unit in ['%', 'ratio'] && observation.value < 90.0",
    ],
)
def test_a_unit_not_required_outright_is_not_the_thresholds_unit(source):
    assert observation_tests(source).thresholds == (Threshold(op="<", value=90.0),)


def test_a_long_chain_is_read_without_recursion():
    source = " || ".join(f"observation.value > {n}.0" for n in range(200))

    thresholds = observation_tests(source).thresholds

    assert len(thresholds) == 200
    assert thresholds[-1] == Threshold(op=">", value=199.0)


# --- on the compiled definition -----------------------------------------------------------------

PATHWAY = textwrap.dedent(
    """
    key: watched
    version: 1
    title: Watched
    roles: [nurse]
    initial: watching
    monitoring:
      parameters:
        spo2_floor: {default: 90, minimum: 80, maximum: 95, unit: "%"}
      alerts:
        - name: low-spo2
          when: "observation.code == '59408-5' && observation.value < params.spo2_floor"
          role: nurse
    states:
      watching:
        alerts:
          - {name: weight-gain, when: "rise('29463-7', 'P3D') >= 2.0", role: nurse}
          - name: symptoms
            when: "observation.code in ['a', 'b'] && observation.value >= 2"
            role: nurse
        on:
          stop: {to: closed, roles: [nurse]}
      closed: {final: true}
    """
)


def test_compiled_alerts_carry_their_codes_and_thresholds():
    result = validate_source(PATHWAY, filename="watched.yaml")
    assert result.problems == []

    definition = compile_document(result.document)

    alerts = {a.name: a for a in definition.alerts_in(definition.state("watching"))}
    assert {name: (a.only_codes, a.thresholds) for name, a in alerts.items()} == {
        "weight-gain": (None, ()),
        "symptoms": (frozenset({"a", "b"}), (Threshold(op=">=", value=2.0),)),
        "low-spo2": (frozenset({"59408-5"}), (Threshold(op="<", parameter="spo2_floor"),)),
    }
