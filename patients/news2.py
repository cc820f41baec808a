"""The National Early Warning Score 2 (NEWS2), as a pure function of the latest vital signs.

Source: Royal College of Physicians, National Early Warning Score (NEWS) 2: Standardising the
assessment of acute-illness severity in the NHS, London, RCP, 2017 — chart 1 (the scoring
system) and chart 2 (thresholds and triggers). The bands below are that chart, row by row:

    parameter                3      2       1       0        1        2        3
    respiration rate /min    <=8            9-11    12-20             21-24    >=25
    SpO2 scale 1 %           <=91   92-93   94-95   >=96
    SpO2 scale 2 %           <=83   84-85   86-87   88-92    93-94    95-96    >=97
                                                    >=93 air on O2    on O2    on O2
    air or oxygen                   oxygen          air
    systolic BP mmHg         <=90   91-100  101-110 111-219                    >=220
    pulse /min               <=40           41-50   51-90    91-110   111-130  >=131
    consciousness                                   alert                      C, V, P or U
    temperature Cel          <=35.0         35.1-36.0 36.1-38.0 38.1-39.0 >=39.1

Scale 2 is for patients with hypercapnic respiratory failure whose prescribed target is 88-92 %
(a clinician's decision, per patient); scale 1 otherwise. The chart is filled in whole numbers
(temperature to a tenth of a degree), so a value is first rounded half up to that precision:
a pulse of 90.4 is charted 90, of 90.5 charted 91.

Clinical risk (chart 2): low 0-4; low-medium when a single parameter scores 3 (and the total is
at most 4); medium 5-6; high 7 or more.

A parameter without a value is *missing*: the result still sums the others (`total`) but is
not `complete`, and `score` is None. On scale 2, an SpO2 of 93 % or more cannot be scored
without knowing whether the patient breathes air or oxygen: it is missing too.

This module knows the measurement codes NEWS2 reads (`NEWS2_CODES`) and how they are encoded,
but reads nothing: `news2_from_values` scores the latest value of each code, however the
caller found them (`patients.selectors.news2_inputs`, or a series already in memory).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import IntEnum, StrEnum
from typing import Literal

Number = Decimal | int | float


class Parameter(StrEnum):
    """The seven rows of the NEWS2 chart, in its order."""

    RESPIRATION_RATE = "respiration_rate"
    SPO2 = "spo2"
    AIR_OR_OXYGEN = "air_or_oxygen"
    SYSTOLIC_BP = "systolic_bp"
    PULSE = "pulse"
    CONSCIOUSNESS = "consciousness"
    TEMPERATURE = "temperature"


class Risk(StrEnum):
    LOW = "low"
    LOW_MEDIUM = "low-medium"
    MEDIUM = "medium"
    HIGH = "high"


class Consciousness(IntEnum):
    """ACVPU, as recorded under LOINC 67775-7 (Level of responsiveness): a number, because
    observations hold numbers. Anything but Alert scores 3."""

    ALERT = 0
    NEW_CONFUSION = 1
    VOICE = 2
    PAIN = 3
    UNRESPONSIVE = 4


# The measurement each parameter is read from (patients.measurements). Supplemental oxygen is
# the inhaled oxygen flow rate: 0 L/min is air, more is oxygen.
RESPIRATORY_RATE_CODE = "9279-1"
SPO2_CODE = "59408-5"
OXYGEN_FLOW_CODE = "3151-8"
SYSTOLIC_BP_CODE = "8480-6"
PULSE_CODE = "8867-4"
CONSCIOUSNESS_CODE = "67775-7"
TEMPERATURE_CODE = "8310-5"
NEWS2_CODES: Mapping[Parameter, str] = {
    Parameter.RESPIRATION_RATE: RESPIRATORY_RATE_CODE,
    Parameter.SPO2: SPO2_CODE,
    Parameter.AIR_OR_OXYGEN: OXYGEN_FLOW_CODE,
    Parameter.SYSTOLIC_BP: SYSTOLIC_BP_CODE,
    Parameter.PULSE: PULSE_CODE,
    Parameter.CONSCIOUSNESS: CONSCIOUSNESS_CODE,
    Parameter.TEMPERATURE: TEMPERATURE_CODE,
}


@dataclass(frozen=True)
class Band:
    """Values up to `up_to` (inclusive, after rounding; None: no upper bound) score `points`."""

    up_to: Decimal | None
    points: int


@dataclass(frozen=True)
class Row:
    """One row of the chart: the precision values are charted at, and its bands, ascending."""

    precision: Decimal
    bands: tuple[Band, ...]

    def points(self, value: Number) -> int:
        charted = _decimal(value).quantize(self.precision, rounding=ROUND_HALF_UP)
        for band in self.bands:
            if band.up_to is None or charted <= band.up_to:
                return band.points
        raise AssertionError("the last band of a row has no upper bound")


def _row(precision: str, *bands: tuple[str | None, int]) -> Row:
    return Row(
        Decimal(precision),
        tuple(Band(Decimal(up) if up is not None else None, pts) for up, pts in bands),
    )


RESPIRATION_RATE = _row("1", ("8", 3), ("11", 1), ("20", 0), ("24", 2), (None, 3))
SPO2_SCALE_1 = _row("1", ("91", 3), ("93", 2), ("95", 1), (None, 0))
SPO2_SCALE_2_AIR = _row("1", ("83", 3), ("85", 2), ("87", 1), (None, 0))
SPO2_SCALE_2_OXYGEN = _row(
    "1", ("83", 3), ("85", 2), ("87", 1), ("92", 0), ("94", 1), ("96", 2), (None, 3)
)
SYSTOLIC_BP = _row("1", ("90", 3), ("100", 2), ("110", 1), ("219", 0), (None, 3))
PULSE = _row("1", ("40", 3), ("50", 1), ("90", 0), ("110", 1), ("130", 2), (None, 3))
TEMPERATURE = _row("0.1", ("35.0", 3), ("36.0", 1), ("38.0", 0), ("39.0", 1), (None, 2))
OXYGEN_POINTS = 2
NOT_ALERT_POINTS = 3
# On scale 2 the SpO2 score depends on air or oxygen only from this value up.
_SCALE_2_OXYGEN_MATTERS = Decimal(93)


@dataclass(frozen=True)
class News2Inputs:
    """The latest value of each parameter; None when there is none."""

    respiration_rate: Number | None = None
    spo2: Number | None = None
    on_oxygen: bool | None = None
    systolic_bp: Number | None = None
    pulse: Number | None = None
    consciousness: Consciousness | int | None = None
    temperature: Number | None = None


@dataclass(frozen=True)
class News2Result:
    """`total` sums the parameters scored; `score` is it only when all seven were, `partial`
    when at least one was."""

    total: int
    sub_scores: Mapping[Parameter, int] = field(hash=False)
    missing: tuple[Parameter, ...]
    risk: Risk
    spo2_scale: int

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def score(self) -> int | None:
        """The NEWS2 score, only when every parameter was scored (`news2(window)`)."""
        return self.total if self.complete else None

    @property
    def partial(self) -> int | None:
        """The total over the parameters scored; None when none was (`news2_partial`)."""
        return self.total if self.sub_scores else None


def news2_score(inputs: News2Inputs, *, spo2_scale: Literal[1, 2] = 1) -> News2Result:
    """Score `inputs` on the NEWS2 chart (module docstring), SpO2 on scale 1 or 2."""
    if spo2_scale not in (1, 2):
        raise ValueError(f"spo2_scale must be 1 or 2, not {spo2_scale!r}")
    sub_scores: dict[Parameter, int] = {}
    if inputs.respiration_rate is not None:
        sub_scores[Parameter.RESPIRATION_RATE] = RESPIRATION_RATE.points(inputs.respiration_rate)
    spo2 = _spo2_points(inputs.spo2, inputs.on_oxygen, spo2_scale)
    if spo2 is not None:
        sub_scores[Parameter.SPO2] = spo2
    if inputs.on_oxygen is not None:
        sub_scores[Parameter.AIR_OR_OXYGEN] = OXYGEN_POINTS if inputs.on_oxygen else 0
    if inputs.systolic_bp is not None:
        sub_scores[Parameter.SYSTOLIC_BP] = SYSTOLIC_BP.points(inputs.systolic_bp)
    if inputs.pulse is not None:
        sub_scores[Parameter.PULSE] = PULSE.points(inputs.pulse)
    if inputs.consciousness is not None:
        alert = Consciousness(inputs.consciousness) is Consciousness.ALERT
        sub_scores[Parameter.CONSCIOUSNESS] = 0 if alert else NOT_ALERT_POINTS
    if inputs.temperature is not None:
        sub_scores[Parameter.TEMPERATURE] = TEMPERATURE.points(inputs.temperature)
    ordered = {p: sub_scores[p] for p in Parameter if p in sub_scores}
    total = sum(ordered.values())
    return News2Result(
        total=total,
        sub_scores=ordered,
        missing=tuple(p for p in Parameter if p not in ordered),
        risk=clinical_risk(total, ordered.values()),
        spo2_scale=spo2_scale,
    )


def _spo2_points(spo2: Number | None, on_oxygen: bool | None, scale: int) -> int | None:
    if spo2 is None:
        return None
    if scale == 1:
        return SPO2_SCALE_1.points(spo2)
    if on_oxygen is None:
        # Below 93 % both columns agree; from 93 % on, air scores 0 and oxygen 1 to 3.
        low = SPO2_SCALE_2_AIR.points(spo2)
        high = SPO2_SCALE_2_OXYGEN.points(spo2)
        return low if low == high else None
    return (SPO2_SCALE_2_OXYGEN if on_oxygen else SPO2_SCALE_2_AIR).points(spo2)


def clinical_risk(total: int, sub_scores: Iterable[int]) -> Risk:
    """Chart 2: high at 7, medium at 5, else low-medium when one parameter scores 3."""
    if total >= 7:
        return Risk.HIGH
    if total >= 5:
        return Risk.MEDIUM
    if any(points == 3 for points in sub_scores):
        return Risk.LOW_MEDIUM
    return Risk.LOW


def inputs_from_values(values: Mapping[str, Number | None]) -> News2Inputs:
    """NEWS2 inputs from the latest value of each measurement code (`NEWS2_CODES`), in the
    code's canonical unit; codes absent or None are missing. Oxygen flow 0 L/min is air; a
    consciousness level is a `Consciousness` value (0 Alert ... 4 Unresponsive), rounded."""

    def get(parameter: Parameter) -> Number | None:
        return values.get(NEWS2_CODES[parameter])

    flow = get(Parameter.AIR_OR_OXYGEN)
    level = get(Parameter.CONSCIOUSNESS)
    return News2Inputs(
        respiration_rate=get(Parameter.RESPIRATION_RATE),
        spo2=get(Parameter.SPO2),
        on_oxygen=None if flow is None else _decimal(flow) > 0,
        systolic_bp=get(Parameter.SYSTOLIC_BP),
        pulse=get(Parameter.PULSE),
        consciousness=None if level is None else _consciousness(level),
        temperature=get(Parameter.TEMPERATURE),
    )


def news2_from_values(
    values: Mapping[str, Number | None], *, spo2_scale: Literal[1, 2] = 1
) -> News2Result:
    """`news2_score` of `inputs_from_values(values)`."""
    return news2_score(inputs_from_values(values), spo2_scale=spo2_scale)


def _consciousness(level: Number) -> Consciousness:
    rounded = int(_decimal(level).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return Consciousness(min(max(rounded, Consciousness.ALERT), Consciousness.UNRESPONSIVE))


def _decimal(value: Number) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise TypeError("a vital sign is a number, not a boolean")
    # str() so that 36.1 (a float) is 36.1, not 36.10000000000000142...
    return Decimal(str(value))
