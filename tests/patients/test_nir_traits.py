"""The INS number against the sex and birth date it encodes: the rule (table-driven, on
`nir_trait_problems`) and where it applies (patient_create and patient_update)."""

from __future__ import annotations

import datetime as dt

import pytest

from patients.errors import InvalidPatient
from patients.identifiers import InsOid, check_nir, nir_key, nir_trait_problems
from patients.models import AuditEvent, Patient
from patients.services import patient_create, patient_update
from tests.patients.conftest import T0
from tests.patients.factories import PatientFactory

WEB = AuditEvent.EntryPoint.WEB


def nir(digits_1_to_5: str, department: str = "75", rest: str = "056123") -> str:
    """A well-formed synthetic NIR: sex, year and month from `digits_1_to_5`, then the
    department, the commune and order numbers, and the key of the rule."""
    number = f"{digits_1_to_5}{department}{rest}"
    return check_nir(number + nir_key(number))


def fields(problems) -> list[str]:
    return [problem.location for problem in problems]


# (digits 1-5, sex, birth date, the fields named; [] when they agree)
CASES = [
    # digit 1: 1, 3, 7 male; 2, 4, 8 female
    ("18505", "male", dt.date(1985, 5, 12), []),
    ("28505", "female", dt.date(1985, 5, 12), []),
    ("38505", "male", dt.date(1985, 5, 12), []),
    ("48505", "female", dt.date(1985, 5, 12), []),
    ("78505", "male", dt.date(1985, 5, 12), []),
    ("88505", "female", dt.date(1985, 5, 12), []),
    ("18505", "female", dt.date(1985, 5, 12), ["ins_nir", "sex"]),
    ("28505", "male", dt.date(1985, 5, 12), ["ins_nir", "sex"]),
    ("38505", "female", dt.date(1985, 5, 12), ["ins_nir", "sex"]),
    ("48505", "male", dt.date(1985, 5, 12), ["ins_nir", "sex"]),
    ("78505", "female", dt.date(1985, 5, 12), ["ins_nir", "sex"]),
    ("88505", "male", dt.date(1985, 5, 12), ["ins_nir", "sex"]),
    # a sex neither male nor female is not compared, nor is a digit 1 that encodes no sex
    ("18505", "other", dt.date(1985, 5, 12), []),
    ("28505", "unknown", dt.date(1985, 5, 12), []),
    ("58505", "female", dt.date(1985, 5, 12), []),
    ("08505", "male", dt.date(1985, 5, 12), []),
    # digits 2-3: the last two digits of the birth year, whatever the century
    ("20005", "female", dt.date(2000, 5, 1), []),
    ("20005", "female", dt.date(1900, 5, 1), []),
    ("28505", "female", dt.date(1986, 5, 12), ["ins_nir", "birth_date"]),
    ("20005", "female", dt.date(2001, 5, 1), ["ins_nir", "birth_date"]),
    ("29912", "female", dt.date(1999, 12, 31), []),
    # digits 4-5: the month when 01-12, boundaries included
    ("28501", "female", dt.date(1985, 1, 1), []),
    ("28512", "female", dt.date(1985, 12, 31), []),
    ("28501", "female", dt.date(1985, 12, 31), ["ins_nir", "birth_date"]),
    ("28512", "female", dt.date(1985, 1, 1), ["ins_nir", "birth_date"]),
    # ...anything else encodes no month
    ("28520", "female", dt.date(1985, 7, 4), []),
    ("28542", "female", dt.date(1985, 7, 4), []),
    ("28550", "female", dt.date(1985, 7, 4), []),
    ("28599", "female", dt.date(1985, 7, 4), []),
    ("28500", "female", dt.date(1985, 7, 4), []),
    ("28513", "female", dt.date(1985, 7, 4), []),
    ("28545", "female", dt.date(1985, 7, 4), []),
    # ...but the year still counts with a special month
    ("28550", "female", dt.date(1986, 7, 4), ["ins_nir", "birth_date"]),
    # everything wrong at once: one problem for the number, one per contradicted field
    ("18505", "female", dt.date(1986, 6, 12), ["ins_nir", "sex", "birth_date"]),
]


@pytest.mark.parametrize(("digits", "sex", "birth_date", "named"), CASES)
def test_the_number_is_compared_with_the_traits_it_encodes(digits, sex, birth_date, named):
    assert fields(nir_trait_problems(nir(digits), sex=sex, birth_date=birth_date)) == named


@pytest.mark.parametrize("department", ["2A", "2B"])
def test_corsican_numbers_are_compared_like_the_others(department):
    corsican = nir("18502", department=department, rest="004123")

    assert nir_trait_problems(corsican, sex="male", birth_date=dt.date(1985, 2, 3)) == []
    assert fields(nir_trait_problems(corsican, sex="female", birth_date=dt.date(1984, 2, 3))) == [
        "ins_nir",
        "sex",
        "birth_date",
    ]


@pytest.mark.parametrize(
    ("sex", "birth_date", "named"),
    [
        ("x", dt.date(1986, 5, 12), ["ins_nir", "birth_date"]),
        ("female", None, ["ins_nir", "sex"]),
        ("female", "1986-05-12", ["ins_nir", "sex"]),
        ("female", dt.datetime(1986, 5, 12, tzinfo=dt.UTC), ["ins_nir", "sex"]),
    ],
)
def test_invalid_traits_are_left_to_their_own_checks(sex, birth_date, named):
    problems = nir_trait_problems(nir("18505"), sex=sex, birth_date=birth_date)

    assert fields(problems) == named


def test_the_messages_name_both_sides():
    problems = nir_trait_problems(nir("18505"), sex="female", birth_date=dt.date(1986, 6, 12))

    assert [str(problem) for problem in problems] == [
        "ins_nir: digit 1 (1) encodes sex male, but sex is female; digits 2-3 (85) encode a "
        "birth year ending in 85 and digits 4-5 (05) encode birth month 05, but birth_date "
        "is 1986-06-12",
        "sex: female, but ins_nir encodes male (digit 1 is 1)",
        "birth_date: 1986-06-12, but in ins_nir digits 2-3 (85) encode a birth year ending "
        "in 85 and digits 4-5 (05) encode birth month 05",
    ]


# --- in the services -----------------------------------------------------------------------


def create(actor, **overrides):
    values = {
        "family_name": "Patient 1",
        "given_names": "Synthetic",
        "birth_date": dt.date(1985, 5, 12),
        "sex": "female",
        "ins_nir": nir("28505"),
        "ins_oid": InsOid.TEST_NIR.value,
        "actor": actor,
        "entry_point": WEB,
        "now": T0,
    }
    return patient_create(**{**values, **overrides})


@pytest.mark.django_db
@pytest.mark.parametrize("oid", list(InsOid))
def test_create_refuses_a_contradiction_under_every_oid_and_writes_nothing(nurse, oid):
    with pytest.raises(InvalidPatient) as caught:
        create(nurse, sex="male", ins_oid=oid.value)

    assert fields(caught.value.problems) == ["ins_nir", "sex"]
    assert not Patient.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_create_lists_a_contradiction_with_the_other_problems(nurse):
    with pytest.raises(InvalidPatient) as caught:
        create(nurse, family_name=" ", birth_date=dt.date(1985, 6, 1))

    assert fields(caught.value.problems) == ["family_name", "ins_nir", "birth_date"]


@pytest.mark.django_db
def test_create_accepts_an_agreeing_number(nurse):
    patient = create(nurse)

    assert Patient.objects.get().ins_nir == patient.ins_nir == nir("28505")


def agreeing_patient() -> Patient:
    return PatientFactory.create(
        birth_date=dt.date(1985, 5, 12), sex="female", ins_nir=nir("28505", rest="056999")
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"birth_date": dt.date(1985, 6, 12)}, ["ins_nir", "birth_date"]),
        ({"birth_date": dt.date(1984, 5, 12)}, ["ins_nir", "birth_date"]),
        ({"sex": "male"}, ["ins_nir", "sex"]),
        ({"ins_nir": nir("18505")}, ["ins_nir", "sex"]),
        ({"ins_nir": nir("28506")}, ["ins_nir", "birth_date"]),
    ],
)
def test_update_checks_a_changed_trait_against_the_stored_ones(nurse, changes, named):
    patient = agreeing_patient()

    with pytest.raises(InvalidPatient) as caught:
        patient_update(
            patient=patient, expected_version=1, changes=changes, actor=nurse, entry_point=WEB
        )

    assert fields(caught.value.problems) == named
    stored = Patient.objects.get(pk=patient.pk)
    assert (stored.version, stored.birth_date, stored.sex, stored.ins_nir) == (
        1,
        patient.birth_date,
        patient.sex,
        patient.ins_nir,
    )
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "changes",
    [
        {"birth_date": dt.date(1985, 5, 30)},
        {"sex": "unknown"},
        {"sex": "male", "ins_nir": nir("18505")},
        {"birth_date": dt.date(1986, 1, 2), "ins_nir": nir("28601")},
    ],
)
def test_update_accepts_changes_that_keep_them_agreeing(nurse, changes):
    patient = agreeing_patient()

    updated = patient_update(
        patient=patient, expected_version=1, changes=changes, actor=nurse, entry_point=WEB
    )

    assert updated.version == 2


@pytest.mark.django_db
def test_a_stored_contradiction_is_not_rechecked_by_an_update_of_other_fields(nurse):
    older = PatientFactory.create(birth_date=dt.date(1985, 5, 12), sex="male")  # NIR: 2 80 01

    updated = patient_update(
        patient=older,
        expected_version=1,
        changes={"phone": "+33 1 00 00 00 00"},
        actor=nurse,
        entry_point=WEB,
    )

    assert updated.version == 2
    with pytest.raises(InvalidPatient) as caught:
        patient_update(
            patient=updated,
            expected_version=2,
            changes={"given_names": "Other", "sex": "female"},  # 2 agrees; 1985-05 does not
            actor=nurse,
            entry_point=WEB,
        )

    assert fields(caught.value.problems) == ["ins_nir", "birth_date"]
