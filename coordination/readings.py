"""The alert thresholds a patient's readings are drawn against, and which readings are abnormal.

Lines come from the compiled alerts (AlertSpec.thresholds: the comparisons
`observation.value < N` or `< params.name` read from the condition's syntax tree), at the
patient's value of a parameter, for every alert a pathway declares whatever its current step
(the pathway's own and every state's): a SpO2 of 86 % read after the pathway moved to a step
that does not watch it is still below the pathway's 90 % floor.

A chart is one code in one unit: glucose in g/L and in mg/dL are never on one axis.
- A threshold under a unit test (`observation.unit == 'g/L' && observation.value < 0.70`) is
  drawn on that unit's chart of each code the alert is restricted to that has the unit.
- A threshold without unit compares the number whatever the unit (the engine converts
  nothing): it is drawn on the chart of each unit of the code whose plausible range
  (patients.measurements) holds the level. Outside it, every reading there can be is on the
  same side of the line, which would only squash the axis (70 drawn over readings in g/L
  flattened them at 0); whether such a reading raised the alert, its alert record says.
- An alert not restricted to some codes (`only_codes`) draws nothing.
Identical lines on one chart (the same level from two alerts, or two pathways) are one.

A reading is abnormal for the patient (`PatientThresholds.abnormal`, the one rule the patient
page, its charts and the portal flag with) when it raised an alert (its AlertRecord names it),
or when, read alone at the patient's parameters, it meets the condition of an alert that draws
a line on its chart: `< 70 && >= 54` (level 1 hypoglycaemia) flags 60 mg/dL, not 90 mg/dL,
although 90 is on the far side of its line at 54. A condition that needs more than the reading
(`rise(...)`) does not hold here: only its alert record flags a reading.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from coordination.models import AlertRecord, CarePathway
from coordination.services.parameters import parameter_values_many
from patients.measurements import MEASUREMENTS
from workflows.definition.compiled import AlertSpec, CompiledDefinition, Text
from workflows.definition.conditions import Threshold
from workflows.definition.expressions import ExpressionError, evaluate
from workflows.selectors import instance_definition

Chart = tuple[str, str]  # (code, unit)


@dataclass(frozen=True)
class Line:
    """A threshold drawn on the chart of `code` in `unit`: the alert's readings are on the
    `op` side of `value` (`observation.value <op> value`)."""

    code: str
    unit: str
    value: float
    op: str
    alert: str
    title: Text | None = field(default=None, compare=False)
    # How many thresholds the alert has on this chart: a band's edge (2) yields its label to
    # an alert whose one line it is, when both fall at the same level.
    weight: int = field(default=1, compare=False)


def pathway_alerts(definition: CompiledDefinition) -> list[AlertSpec]:
    """Every alert `definition` declares, the pathway's then each state's, whatever the
    step; an alert repeated alike in several states once."""
    found: dict[tuple[str, str], AlertSpec] = {}
    for alert in definition.every_alert:
        found.setdefault((alert.name, alert.when), alert)
    return list(found.values())


def _charts(
    codes: Iterable[str], threshold: Threshold, level: float, unit_of: str | None
) -> list[Chart]:
    charts = []
    for code in sorted(codes):
        known = MEASUREMENTS.get(code)
        if known is None:
            continue
        if threshold.unit is not None:
            if known.stored_unit(threshold.unit) is not None:
                charts.append((code, threshold.unit))
            continue
        for unit in known.units:
            if unit_of is not None and unit.unit != unit_of:
                continue
            if unit.minimum <= Decimal(str(level)) <= unit.maximum:
                charts.append((code, unit.unit))
    return charts


def alert_lines(
    alert: AlertSpec, values: Mapping[str, float], definition: CompiledDefinition | None = None
) -> list[Line]:
    """The lines `alert` draws, at the patient's parameter `values` (a threshold on a
    parameter without a value draws nothing). A threshold on a parameter that declares its
    unit is drawn on that unit's chart only."""
    if not alert.only_codes:
        return []
    placed: list[tuple[Chart, Threshold, float]] = []
    for threshold in alert.thresholds:
        level = values.get(threshold.parameter) if threshold.parameter else threshold.value
        if level is None:
            continue
        unit_of = None
        if threshold.parameter and definition is not None:
            spec = definition.monitoring.parameters.get(threshold.parameter)
            unit_of = spec.unit if spec is not None else None
        for chart in _charts(alert.only_codes, threshold, float(level), unit_of):
            placed.append((chart, threshold, float(level)))
    per_chart: dict[Chart, int] = {}
    for chart, _, _ in placed:
        per_chart[chart] = per_chart.get(chart, 0) + 1
    return [
        Line(
            code=chart[0],
            unit=chart[1],
            value=level,
            op=threshold.op,
            alert=alert.name,
            title=alert.title,
            weight=per_chart[chart],
        )
        for chart, threshold, level in placed
    ]


def reading_meets(
    alert: AlertSpec, code: str, value: float, unit: str, params: Mapping[str, float]
) -> bool:
    """Whether the alert's condition holds for this one reading at `params`, nothing else
    known (a condition that calls a function does not hold)."""
    variables = {
        "params": dict(params),
        "observation": {"code": code, "value": float(value), "unit": unit},
    }
    try:
        return evaluate(alert.when, variables) is True
    except ExpressionError:
        return False


@dataclass
class PatientThresholds:
    """The lines of a patient's pathways by chart, and what flags a reading abnormal."""

    lines: dict[Chart, list[Line]] = field(default_factory=dict)
    # By chart: the alerts drawing a line there, each with its pathway's parameters.
    watched: dict[Chart, list[tuple[AlertSpec, Mapping[str, float]]]] = field(default_factory=dict)
    alerted: frozenset[int] = frozenset()  # observations that raised an alert

    def add(self, alert: AlertSpec, values: Mapping[str, float], lines: Sequence[Line]) -> None:
        for line in lines:
            chart = (line.code, line.unit)
            shown = self.lines.setdefault(chart, [])
            same = next((i for i, s in enumerate(shown) if s.value == line.value), None)
            if same is None:
                shown.append(line)
            elif line.weight < shown[same].weight:
                shown[same] = line
            watching = self.watched.setdefault(chart, [])
            if not any(a is alert and p is values for a, p in watching):
                watching.append((alert, values))

    def chart_lines(self, code: str, unit: str) -> list[Line]:
        return self.lines.get((code, unit), [])

    def abnormal(
        self, *, observation_id: int | None, code: str, value: Decimal | float, unit: str
    ) -> bool:
        """Whether the reading is abnormal for the patient: it raised an alert, or it meets
        on its own the condition of an alert drawing a line on its chart."""
        if observation_id is not None and observation_id in self.alerted:
            return True
        return any(
            reading_meets(alert, code, float(value), unit, params)
            for alert, params in self.watched.get((code, unit), ())
        )


def patient_thresholds(
    *, patient_id: int, pathways: Iterable[CarePathway], since: dt.datetime | None = None
) -> PatientThresholds:
    """The thresholds of `pathways` (the patient's, that the caller has read: no access
    check), newest first as given, at the patient's parameters; and the readings that raised
    an alert on one of them since `since`. Two queries at most."""
    return thresholds_by_patient(pathways, since=since).get(patient_id, PatientThresholds())


def thresholds_by_patient(
    pathways: Iterable[CarePathway], *, since: dt.datetime | None = None
) -> dict[int, PatientThresholds]:
    """`patient_thresholds` of the patients of `pathways` (read by the caller: no access
    check), by patient id, for pages that show many patients' readings: one query for the
    parameters of all the pathways, one for the readings that raised an alert."""
    compiled = []
    for pathway in pathways:
        instance = pathway.instance
        if instance is not None:
            compiled.append((pathway, instance_definition(instance)))
    values = parameter_values_many([(p.pk, d) for p, d in compiled])
    found: dict[int, PatientThresholds] = {}
    for pathway, definition in compiled:
        thresholds = found.setdefault(pathway.patient_id, PatientThresholds())
        params = values[pathway.pk]
        for alert in pathway_alerts(definition):
            thresholds.add(alert, params, alert_lines(alert, params, definition))
    if compiled:
        alerts = AlertRecord.objects.filter(
            care_pathway_id__in=[p.pk for p, _ in compiled], observation_id__isnull=False
        )
        if since is not None:
            alerts = alerts.filter(raised_at__gte=since)  # raised after it was taken
        alerted: dict[int, set[int]] = {}
        for patient_id, observation_id in alerts.values_list("patient_id", "observation_id"):
            if observation_id is not None:
                alerted.setdefault(patient_id, set()).add(observation_id)
        for patient_id, thresholds in found.items():
            thresholds.alerted = frozenset(alerted.get(patient_id, ()))
    return found
