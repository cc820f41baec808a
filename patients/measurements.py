"""The measurements Parcours accepts: LOINC codes, their UCUM units and plausible ranges.

The ranges reject what cannot be a reading of a living patient (a typing or device error:
-3 kg, 900 kg, a temperature of 60 Cel); they are not clinical thresholds, which care teams set
per pathway. Bounds are inclusive and expressed in the unit they sit next to.

Each code has a canonical unit (its first one); `to_canonical` converts a value from another
allowed unit, so that series mixing units (glucose in mg/dL and mmol/L) compare correctly.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class UnitRange:
    unit: str
    minimum: Decimal
    maximum: Decimal
    to_canonical: Decimal = Decimal(1)


@dataclass(frozen=True)
class Measurement:
    code: str
    display: str
    units: tuple[UnitRange, ...]

    @property
    def canonical_unit(self) -> str:
        return self.units[0].unit

    @property
    def unit_names(self) -> tuple[str, ...]:
        return tuple(u.unit for u in self.units)

    def unit(self, name: str) -> UnitRange | None:
        return next((u for u in self.units if u.unit == name), None)


def _range(unit: str, minimum: str, maximum: str, to_canonical: str = "1") -> UnitRange:
    return UnitRange(unit, Decimal(minimum), Decimal(maximum), Decimal(to_canonical))


# Glucose: 1 mmol/L = 18.016 mg/dL (molar mass 180.16 g/mol); 1 g/L = 100 mg/dL.
_GLUCOSE = (
    _range("mg/dL", "10", "1000"),
    _range("mmol/L", "0.5", "55.5", "18.016"),
    _range("g/L", "0.1", "10", "100"),
)

MEASUREMENTS: dict[str, Measurement] = {
    m.code: m
    for m in (
        Measurement("29463-7", "Body weight", (_range("kg", "0.2", "500"),)),
        Measurement("8867-4", "Heart rate", (_range("/min", "20", "300"),)),
        Measurement("8480-6", "Systolic blood pressure", (_range("mm[Hg]", "40", "300"),)),
        Measurement("8462-4", "Diastolic blood pressure", (_range("mm[Hg]", "20", "200"),)),
        Measurement("59408-5", "SpO2 by pulse oximetry", (_range("%", "50", "100"),)),
        Measurement("41653-7", "Glucose in capillary blood", _GLUCOSE),
        Measurement("2339-0", "Glucose in blood", (_range("mg/dL", "10", "1000"),)),
        Measurement("4548-4", "HbA1c", (_range("%", "3", "20"),)),
        Measurement("8310-5", "Body temperature", (_range("Cel", "25", "45"),)),
        Measurement("9279-1", "Respiratory rate", (_range("/min", "2", "80"),)),
        # Heart-failure daily symptom questionnaire (HAS 2022 remote-monitoring referential):
        # one item each, 0 none, 1 mild, 2 moderate, 3 severe. No LOINC code exists for these
        # daily items, so they have local codes (not LOINC-shaped, so they cannot collide).
        Measurement("hf-dyspnoea", "Breathlessness (0-3)", (_range("{score}", "0", "3"),)),
        Measurement("hf-oedema", "Swelling (0-3)", (_range("{score}", "0", "3"),)),
        Measurement("hf-fatigue", "Fatigue (0-3)", (_range("{score}", "0", "3"),)),
        Measurement("hf-orthopnoea", "Orthopnoea (0-3)", (_range("{score}", "0", "3"),)),
    )
}


def to_canonical(code: str, value: Decimal, unit: str) -> Decimal:
    """`value` in the code's canonical unit. The code and unit must be known (stored
    observations always are)."""
    spec = MEASUREMENTS[code].unit(unit)
    assert spec is not None, f"{unit} is not a unit of {code}"
    return value * spec.to_canonical
