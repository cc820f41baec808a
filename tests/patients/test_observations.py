from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from patients.errors import InvalidObservation, InvalidRange
from patients.measurements import MEASUREMENTS
from patients.models import AuditEvent, Observation
from patients.selectors import delta, last_value
from patients.services import ObservationItem, observation_record, observations_record
from tests.patients.conftest import T0
from tests.patients.factories import DeviceFactory, PatientFactory

DEVICE = Observation.Source.DEVICE
REST = AuditEvent.EntryPoint.REST
WEIGHT = "29463-7"
GLUCOSE = "41653-7"
GLUCOSE_MMOL = "14743-9"
DAY = dt.timedelta(days=1)


def weight(value, at=T0, **extra):
    return {"code": WEIGHT, "value": value, "unit": "kg", "effective_at": at, **extra}


def record(patient, actor, items, now=T0):
    return observations_record(
        patient=patient, items=items, actor=actor, source=DEVICE, entry_point=REST, now=now
    )


def problems_of(patient, actor, items, now=T0):
    with pytest.raises(InvalidObservation) as caught:
        record(patient, actor, items, now)
    return [str(p) for p in caught.value.problems]


def test_the_table_covers_the_reference_measurements():
    units = {code: m.unit_names for code, m in MEASUREMENTS.items()}

    assert units == {
        "29463-7": ("kg",),
        "8867-4": ("/min",),
        "8480-6": ("mm[Hg]",),
        "8462-4": ("mm[Hg]",),
        "59408-5": ("%",),
        "41653-7": ("mg/dL", "g/L"),
        "14743-9": ("mmol/L",),
        "2339-0": ("mg/dL",),
        "4548-4": ("%",),
        "8310-5": ("Cel",),
        "9279-1": ("/min",),
        "3151-8": ("L/min",),
        "67775-7": ("{ACVPU}",),
        "hf-dyspnoea": ("{score}",),
        "hf-oedema": ("{score}",),
        "hf-fatigue": ("{score}",),
        "hf-orthopnoea": ("{score}",),
    }


@pytest.mark.django_db
def test_a_valid_batch_is_stored_whole_with_one_audit_record(patient, nurse):
    device = DeviceFactory.create(patient=patient)
    items = [
        weight("72.35", T0 - DAY, device_id=device.pk),
        ObservationItem(code="8867-4", value=64, unit="/min", effective_at=T0),
        {
            "code": GLUCOSE_MMOL,
            "value": 5.4,
            "unit": "mmol/L",
            "effective_at": "2026-03-02T07:55:00Z",
        },
    ]

    stored = record(patient, nurse, items)

    rows = list(
        Observation.objects.order_by("pk").values_list(
            "code", "value", "unit", "effective_at", "device_id", "source", "recorded_by_id"
        )
    )
    assert rows == [
        (WEIGHT, Decimal("72.3500"), "kg", T0 - DAY, device.pk, "device", nurse.pk),
        ("8867-4", Decimal("64.0000"), "/min", T0, None, "device", nurse.pk),
        (
            GLUCOSE_MMOL,
            Decimal("5.4000"),
            "mmol/L",
            T0 - dt.timedelta(minutes=5),
            None,
            "device",
            nurse.pk,
        ),
    ]
    assert [o.pk for o in stored] == list(
        Observation.objects.order_by("pk").values_list("pk", flat=True)
    )
    event = AuditEvent.objects.get()
    first, last = stored[0].pk, stored[-1].pk
    assert (event.action, event.resource_type, event.patient_id, event.purpose) == (
        "create",
        "Observation",
        patient.pk,
        "treatment",
    )
    assert event.detail == {
        "count": 3,
        "ids": f"{first}-{last}",
        "codes": [GLUCOSE_MMOL, WEIGHT, "8867-4"],
    }


@pytest.mark.django_db
def test_a_batch_with_bad_items_reports_every_one_by_index_and_stores_nothing(patient, nurse):
    items = [
        weight("70"),
        weight("70", unit="lb"),
        weight("-3"),
        {"code": "0000-0", "value": 1, "unit": "kg", "effective_at": T0},
        weight("900", at=dt.datetime(2026, 3, 2, 8, 0)),  # naive
        weight("71"),
    ]

    problems = problems_of(patient, nurse, items)

    assert problems == [
        "items.1.unit: 'lb' is not a unit of 29463-7 (Body weight); allowed: kg",
        "items.2.value: -3 kg is outside the plausible range for Body weight (0.2 to 500 kg)",
        "items.3.code: unknown LOINC code '0000-0'; known: 14743-9, 2339-0, 29463-7, 3151-8, "
        "41653-7, 4548-4, 59408-5, 67775-7, 8310-5, 8462-4, 8480-6, 8867-4, 9279-1, hf-dyspnoea, "
        "hf-fatigue, hf-oedema, hf-orthopnoea",
        "items.4.value: 900 kg is outside the plausible range for Body weight (0.2 to 500 kg)",
        "items.4.effective_at: must be timezone-aware (give an offset such as +01:00 or Z)",
    ]
    assert Observation.objects.count() == 0
    assert AuditEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("code", "value", "unit"),
    [
        (WEIGHT, "0.2", "kg"),
        (WEIGHT, "500", "kg"),
        ("8310-5", "37.2", "Cel"),
        ("59408-5", "100", "%"),
        (GLUCOSE, "0.54", "g/L"),
        (GLUCOSE, "54", "mg/dL"),
        (GLUCOSE_MMOL, "3.0", "mmol/L"),
        ("3151-8", "0", "L/min"),
        ("67775-7", "4", "{ACVPU}"),
        ("8480-6", "120", "mm[Hg]"),
    ],
)
@pytest.mark.django_db
def test_plausible_values_and_their_bounds_are_accepted(patient, nurse, code, value, unit):
    record(patient, nurse, [{"code": code, "value": value, "unit": unit, "effective_at": T0}])

    assert Observation.objects.get().value == Decimal(value)


@pytest.mark.parametrize(
    ("code", "value", "unit", "message"),
    [
        (
            "8310-5",
            "60",
            "Cel",
            "60 Cel is outside the plausible range for Body temperature (25 to 45 Cel)",
        ),
        (
            "59408-5",
            "101",
            "%",
            "101 % is outside the plausible range for SpO2 by pulse oximetry (50 to 100 %)",
        ),
        (
            GLUCOSE_MMOL,
            "90",
            "mmol/L",
            "90 mmol/L is outside the plausible range for Glucose in capillary blood, "
            "moles/volume (0.5 to 55.5 mmol/L)",
        ),
        (
            "67775-7",
            "5",
            "{ACVPU}",
            "5 {ACVPU} is outside the plausible range for Level of responsiveness (ACVPU) "
            "(0 to 4 {ACVPU})",
        ),
        (
            "67775-7",
            "1.5",
            "{ACVPU}",
            "1.5 is not a whole number; Level of responsiveness (ACVPU) takes whole numbers only",
        ),
    ],
)
@pytest.mark.django_db
def test_ranges_depend_on_the_unit(patient, nurse, code, value, unit, message):
    problems = problems_of(
        patient, nurse, [{"code": code, "value": value, "unit": unit, "effective_at": T0}]
    )

    assert problems == [f"items.0.value: {message}"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("heavy", "'heavy' is not a number"),
        (True, "True is not a number"),
        (None, "None is not a number"),
        (float("nan"), "nan is not a finite number"),
        ("Infinity", "'Infinity' is not a finite number"),
        ("1e30", "'1e30' is far too large"),
    ],
)
@pytest.mark.django_db
def test_values_must_be_finite_numbers(patient, nurse, value, message):
    assert problems_of(patient, nurse, [weight(value)]) == [f"items.0.value: {message}"]


@pytest.mark.django_db
def test_values_are_rounded_to_four_decimals(patient, nurse):
    record(patient, nurse, [weight("72.123456")])

    assert Observation.objects.get().value == Decimal("72.1235")


@pytest.mark.django_db
def test_up_to_five_minutes_in_the_future_is_clock_skew(patient, nurse):
    record(patient, nurse, [weight("70", at=T0 + dt.timedelta(minutes=5))], now=T0)

    problems = problems_of(
        patient, nurse, [weight("70", at=T0 + dt.timedelta(minutes=5, seconds=1))]
    )

    assert problems == [
        "items.0.effective_at: 2026-03-02T08:05:01+00:00 is in the future (at most 5 minutes "
        "ahead of the server clock, 2026-03-02T08:00:00+00:00, are accepted)"
    ]
    assert Observation.objects.count() == 1


@pytest.mark.django_db
def test_the_future_is_judged_by_the_server_clock(patient, nurse):
    with time_machine.travel(T0, tick=False):
        observations_record(
            patient=patient,
            items=[weight("70", at=T0 + dt.timedelta(minutes=4))],
            actor=nurse,
            source=DEVICE,
            entry_point=REST,
        )
        with pytest.raises(InvalidObservation, match=r"^items\.0\.effective_at: .* in the future"):
            observations_record(
                patient=patient,
                items=[weight("70", at=T0 + dt.timedelta(minutes=6))],
                actor=nurse,
                source=DEVICE,
                entry_point=REST,
            )

    assert Observation.objects.get().received_at == T0


@pytest.mark.django_db
def test_effective_time_strings_are_iso_8601(patient, nurse):
    problems = problems_of(
        patient, nurse, [weight("70", at="yesterday"), weight("70", at="2026-03-01T10:00")]
    )

    assert problems == [
        "items.0.effective_at: 'yesterday' is not an ISO-8601 date and time",
        "items.1.effective_at: must be timezone-aware (give an offset such as +01:00 or Z)",
    ]


@pytest.mark.django_db
def test_missing_and_unknown_fields_are_reported(patient, nurse):
    problems = problems_of(patient, nurse, [{"code": WEIGHT, "value": 70, "when": T0}, "70 kg"])

    assert problems == [
        "items.0.when: unknown field",
        "items.0.unit: required",
        "items.0.effective_at: required",
        "items.1: must be an object",
    ]


@pytest.mark.django_db
def test_a_device_of_another_patient_is_refused(patient, nurse):
    other_device = DeviceFactory.create(patient=PatientFactory.create())

    problems = problems_of(patient, nurse, [weight("70", device_id=other_device.pk)])

    assert problems == [f"items.0.device_id: {other_device.pk} is not a device of this patient"]


@pytest.mark.django_db
def test_empty_and_oversized_batches_and_unknown_sources_are_refused(patient, nurse):
    with pytest.raises(InvalidObservation) as caught:
        observations_record(patient=patient, items=[], actor=nurse, source="fax", entry_point=REST)

    assert [str(p) for p in caught.value.problems] == [
        "source: 'fax' is not one of device, patient, professional, platform",
        "items: no observations given",
    ]
    with pytest.raises(InvalidObservation, match=r"^items: 1001 observations; at most 1000$"):
        record(patient, nurse, [weight("70")] * 1001)


@pytest.mark.django_db
def test_a_single_observation_names_fields_without_an_index(patient, nurse):
    with pytest.raises(InvalidObservation) as caught:
        observation_record(
            patient=patient,
            item=weight("70", unit="g"),
            actor=nurse,
            source=DEVICE,
            entry_point=REST,
            now=T0,
        )

    assert [str(p) for p in caught.value.problems] == [
        "unit: 'g' is not a unit of 29463-7 (Body weight); allowed: kg"
    ]
    stored = observation_record(
        patient=patient, item=weight("70"), actor=None, source="platform", entry_point=REST, now=T0
    )
    assert (stored.value, stored.source, stored.recorded_by_id) == (
        Decimal("70.0000"),
        "platform",
        None,
    )
    assert AuditEvent.objects.get().actor_label == "system"


@pytest.fixture
def weights(patient, nurse):
    """Body weight at T0 - 3d: 70, T0 - 2d: 70.5, T0 - 1d: 71.2, T0: 72.5; another patient's
    and another code's measurements around them."""
    record(
        patient,
        nurse,
        [
            weight("70", T0 - 3 * DAY),
            weight("70.5", T0 - 2 * DAY),
            weight("71.2", T0 - DAY),
            weight("72.5", T0),
            {"code": "8867-4", "value": 80, "unit": "/min", "effective_at": T0 - DAY},
        ],
    )
    record(PatientFactory.create(), nurse, [weight("120", T0 - DAY), weight("50", T0)])
    return patient


@pytest.mark.django_db
def test_last_value_is_the_latest_at_or_before(weights):
    at_noon = last_value(weights.pk, WEIGHT, T0 - DAY + dt.timedelta(hours=4))
    exactly = last_value(weights.pk, WEIGHT, T0 - DAY)
    strictly = last_value(weights.pk, WEIGHT, T0 - DAY, inclusive=False)

    assert at_noon is not None
    assert exactly is not None
    assert strictly is not None
    assert (at_noon.value, at_noon.unit, at_noon.effective_at) == (Decimal("71.2"), "kg", T0 - DAY)
    assert exactly.value == Decimal("71.2")
    assert strictly.value == Decimal("70.5")


@pytest.mark.django_db
def test_last_value_before_the_first_measurement_is_none(weights):
    assert last_value(weights.pk, WEIGHT, T0 - 4 * DAY) is None
    assert last_value(weights.pk, "8310-5", T0) is None


@pytest.mark.django_db
def test_delta_is_latest_minus_earliest_within_the_window(weights):
    assert delta(weights.pk, WEIGHT, "P3D", T0) == Decimal("2.5")
    assert delta(weights.pk, WEIGHT, "P2D", T0) == Decimal("2.0")
    assert delta(weights.pk, WEIGHT, "PT36H", T0) == Decimal("1.3")
    assert delta(weights.pk, WEIGHT, dt.timedelta(days=2), T0 - DAY) == Decimal("1.2")


@pytest.mark.django_db
def test_delta_needs_two_measurements_in_the_window(weights):
    assert delta(weights.pk, WEIGHT, "PT12H", T0) is None
    assert delta(weights.pk, WEIGHT, "P1D", T0 - 5 * DAY) is None
    assert delta(weights.pk, "8867-4", "P30D", T0) is None


@pytest.mark.django_db
def test_delta_converts_mixed_units_to_the_canonical_one(patient, nurse):
    record(
        patient,
        nurse,
        [
            {"code": GLUCOSE, "value": "90", "unit": "mg/dL", "effective_at": T0 - DAY},
            {"code": GLUCOSE, "value": "1.08", "unit": "g/L", "effective_at": T0},
        ],
    )

    assert delta(patient.pk, GLUCOSE, "P2D", T0) == Decimal("18")
    latest = last_value(patient.pk, GLUCOSE, T0)
    assert latest is not None
    assert (latest.value, latest.unit) == (Decimal("108"), "mg/dL")


@pytest.mark.django_db
def test_capillary_glucose_in_mmol_per_litre_under_the_mass_code_is_refused(patient, nurse):
    item = {"code": GLUCOSE, "value": "5.4", "unit": "mmol/L", "effective_at": T0}

    problems = problems_of(patient, nurse, [item])

    assert problems == [
        "items.0.unit: 'mmol/L' is not a unit of 41653-7 (Glucose in capillary blood, "
        "mass/volume); allowed: mg/dL, g/L. A reading in mmol/L is recorded as 14743-9 "
        "(Glucose in capillary blood, moles/volume)"
    ]
    assert Observation.objects.count() == 0


@pytest.mark.django_db
def test_glucose_stored_in_mmol_per_litre_under_the_mass_code_is_still_read(patient, nurse):
    # Such rows were accepted before 14743-9 existed; they stay part of the series.
    record(
        patient,
        nurse,
        [{"code": GLUCOSE, "value": "90", "unit": "mg/dL", "effective_at": T0 - DAY}],
    )
    Observation.objects.create(
        patient=patient,
        code=GLUCOSE,
        value=Decimal("6"),
        unit="mmol/L",
        effective_at=T0,
        source=DEVICE,
        received_at=T0,
    )

    assert delta(patient.pk, GLUCOSE, "P2D", T0) == Decimal("18.096")
    latest = last_value(patient.pk, GLUCOSE, T0)
    assert latest is not None
    assert (latest.value, latest.unit) == (Decimal("108.096"), "mg/dL")


@pytest.mark.django_db
def test_the_helpers_are_one_and_two_queries(weights, django_assert_num_queries):
    with django_assert_num_queries(1):
        last_value(weights.pk, WEIGHT, T0)
    with django_assert_num_queries(2):
        delta(weights.pk, WEIGHT, "P3D", T0)


@pytest.mark.parametrize("window", ["3 days", "P", "PT", "P0D", "-P1D", "P1DT"])
@pytest.mark.django_db
def test_a_malformed_window_is_refused(patient, window):
    with pytest.raises(InvalidRange):
        delta(patient.pk, WEIGHT, window, T0)


@pytest.mark.django_db
def test_calendar_windows_count_months(patient, nurse):
    end = dt.datetime(2026, 3, 31, 8, 0, tzinfo=dt.UTC)
    record(
        patient,
        nurse,
        [weight("70", dt.datetime(2026, 2, 28, 8, 0, tzinfo=dt.UTC)), weight("71", end)],
        now=end,
    )

    assert delta(patient.pk, WEIGHT, "P1M", end) == Decimal("1")
    assert delta(patient.pk, WEIGHT, "P1M", end + dt.timedelta(seconds=1)) is None


@pytest.mark.django_db
def test_naive_times_are_refused_by_the_helpers(patient):
    with pytest.raises(InvalidRange, match=r"^at must be timezone-aware$"):
        delta(patient.pk, WEIGHT, "P1D", dt.datetime(2026, 3, 2, 8, 0))
    with pytest.raises(InvalidRange, match=r"^before must be timezone-aware$"):
        last_value(patient.pk, WEIGHT, dt.datetime(2026, 3, 2, 8, 0))
