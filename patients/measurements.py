"""The measurements Parcours accepts: LOINC codes, their UCUM units and plausible ranges.

The ranges reject what cannot be a reading of a living patient (a typing or device error:
-3 kg, 900 kg, a temperature of 60 Cel); they are not clinical thresholds, which care teams set
per pathway. Bounds are inclusive and expressed in the unit they sit next to.

Each code has a canonical unit (its first one); `to_canonical` converts a value from another
allowed unit, so that series mixing units (glucose in mg/dL and g/L) compare correctly.

A code names a kind of quantity as well as a thing: 41653-7 is capillary glucose as a mass per
volume (mg/dL, g/L), 14743-9 the same glucose in moles per volume (mmol/L). Readings in mmol/L
were once accepted under 41653-7; new ones are refused with the code to use, and the ones
stored are still read (`Measurement.stored_unit`, `to_canonical`).

Each measurement has a name people read (`name`, translated: "Poids", "Glycémie capillaire")
next to its English `display` that the API and stored messages keep, and each unit a written
form (`unit_label`: mmHg for UCUM's mm[Hg], °C for Cel, nothing for a score).

Two NEWS2 parameters are not quantities, and are recorded as numbers:
- 3151-8 Inhaled oxygen flow rate, L/min: 0 means the patient breathes air, more means
  supplemental oxygen;
- 67775-7 Level of responsiveness, unit `{ACVPU}`: 0 Alert, 1 new Confusion, 2 Voice, 3 Pain,
  4 Unresponsive (whole numbers only; see `patients.news2.Consciousness`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class UnitRange:
    unit: str
    minimum: Decimal
    maximum: Decimal
    to_canonical: Decimal = Decimal(1)
    # Set on a unit only read from stored observations: new readings in it are recorded under
    # this code instead.
    recorded_as: str | None = None
    whole: bool = False  # only whole numbers (a category encoded as a number)


@dataclass(frozen=True)
class Measurement:
    code: str
    display: str  # English, as the API and stored messages say it
    units: tuple[UnitRange, ...]
    # What the pages call it, in the reader's language (str() at rendering).
    name: str | Promise = field(default="", compare=False)

    @property
    def label(self) -> str:
        return str(self.name) if self.name else self.display

    @property
    def canonical_unit(self) -> str:
        return self.units[0].unit

    @property
    def unit_names(self) -> tuple[str, ...]:
        """The units new readings may be recorded in."""
        return tuple(u.unit for u in self.units if u.recorded_as is None)

    def unit(self, name: str) -> UnitRange | None:
        """The range of `name` if new readings may be recorded in it."""
        found = self.stored_unit(name)
        return found if found is not None and found.recorded_as is None else None

    def stored_unit(self, name: str) -> UnitRange | None:
        """The range of `name` if observations stored in it can be read, including units no
        longer accepted for new readings."""
        return next((u for u in self.units if u.unit == name), None)


def _range(
    unit: str,
    minimum: str,
    maximum: str,
    to_canonical: str = "1",
    *,
    recorded_as: str | None = None,
    whole: bool = False,
) -> UnitRange:
    return UnitRange(
        unit, Decimal(minimum), Decimal(maximum), Decimal(to_canonical), recorded_as, whole
    )


CAPILLARY_GLUCOSE_MASS = "41653-7"
CAPILLARY_GLUCOSE_MOLES = "14743-9"

# Glucose: 1 mmol/L = 18.016 mg/dL (molar mass 180.16 g/mol); 1 g/L = 100 mg/dL.
_GLUCOSE_MASS = (
    _range("mg/dL", "10", "1000"),
    _range("g/L", "0.1", "10", "100"),
    # Accepted under 41653-7 until 14743-9 existed here; stored readings stay readable.
    _range("mmol/L", "0.5", "55.5", "18.016", recorded_as=CAPILLARY_GLUCOSE_MOLES),
)

MEASUREMENTS: dict[str, Measurement] = {
    m.code: m
    for m in (
        Measurement("29463-7", "Body weight", (_range("kg", "0.2", "500"),), name=_("Weight")),
        Measurement("8867-4", "Heart rate", (_range("/min", "20", "300"),), name=_("Heart rate")),
        Measurement(
            "8480-6",
            "Systolic blood pressure",
            (_range("mm[Hg]", "40", "300"),),
            name=_("Systolic blood pressure"),
        ),
        Measurement(
            "8462-4",
            "Diastolic blood pressure",
            (_range("mm[Hg]", "20", "200"),),
            name=_("Diastolic blood pressure"),
        ),
        Measurement(
            "59408-5", "SpO2 by pulse oximetry", (_range("%", "50", "100"),), name=_("SpO2")
        ),
        Measurement(
            CAPILLARY_GLUCOSE_MASS,
            "Glucose in capillary blood, mass/volume",
            _GLUCOSE_MASS,
            name=_("Capillary glucose"),
        ),
        Measurement(
            CAPILLARY_GLUCOSE_MOLES,
            "Glucose in capillary blood, moles/volume",
            (_range("mmol/L", "0.5", "55.5"),),
            name=_("Capillary glucose"),
        ),
        Measurement(
            "2339-0", "Glucose in blood", (_range("mg/dL", "10", "1000"),), name=_("Blood glucose")
        ),
        Measurement("4548-4", "HbA1c", (_range("%", "3", "20"),), name=_("HbA1c")),
        Measurement(
            "8310-5", "Body temperature", (_range("Cel", "25", "45"),), name=_("Temperature")
        ),
        Measurement(
            "9279-1", "Respiratory rate", (_range("/min", "2", "80"),), name=_("Respiratory rate")
        ),
        Measurement(
            "3151-8",
            "Inhaled oxygen flow rate",
            (_range("L/min", "0", "70"),),
            name=_("Oxygen flow"),
        ),
        Measurement(
            "67775-7",
            "Level of responsiveness (ACVPU)",
            (_range("{ACVPU}", "0", "4", whole=True),),
            name=_("Level of consciousness (ACVPU)"),
        ),
        # Heart-failure daily symptom questionnaire (HAS 2022 remote-monitoring referential):
        # one item each, 0 none, 1 mild, 2 moderate, 3 severe. No LOINC code exists for these
        # daily items, so they have local codes (not LOINC-shaped, so they cannot collide).
        Measurement(
            "hf-dyspnoea",
            "Breathlessness (0-3)",
            (_range("{score}", "0", "3", whole=True),),
            name=_("Breathlessness (0-3)"),
        ),
        Measurement(
            "hf-oedema",
            "Swelling (0-3)",
            (_range("{score}", "0", "3", whole=True),),
            name=_("Swelling (0-3)"),
        ),
        Measurement(
            "hf-fatigue",
            "Fatigue (0-3)",
            (_range("{score}", "0", "3", whole=True),),
            name=_("Fatigue (0-3)"),
        ),
        Measurement(
            "hf-orthopnoea",
            "Orthopnoea (0-3)",
            (_range("{score}", "0", "3", whole=True),),
            name=_("Breathless lying flat (0-3)"),
        ),
    )
}


def to_canonical(code: str, value: Decimal, unit: str) -> Decimal:
    """`value` in the code's canonical unit. The code and unit must be known (stored
    observations always are, including those in a unit no longer accepted)."""
    spec = MEASUREMENTS[code].stored_unit(unit)
    assert spec is not None, f"{unit} is not a unit of {code}"
    return value * spec.to_canonical


# UCUM units as people write them; a unit not listed is written as it is.
_UNIT_LABELS = {"mm[Hg]": "mmHg", "Cel": "°C", "{score}": "", "{ACVPU}": ""}


def unit_label(unit: str) -> str:
    """`unit` as a page writes it after a value ("" for a score or a category)."""
    return _UNIT_LABELS.get(unit, unit)


def measurement_label(code: str) -> str:
    """What the pages call the measurement `code`, in the active language; the code itself
    when it is not one Parcours knows."""
    known = MEASUREMENTS.get(code)
    return known.label if known is not None else code
