from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patients.errors import InvalidIdentifier
from patients.identifiers import (
    InsOid,
    check_birth_place,
    check_nir,
    check_nir_birth_place,
    check_oid,
    nir_key,
)


def key_by_the_rule(number: str) -> str:
    """The reference rule, written out independently: 97 - (number mod 97), with the
    Corsican departments 2A and 2B counted as 19 and 18."""
    digits = number[:5] + {"2A": "19", "2B": "18"}.get(number[5:7], number[5:7]) + number[7:]
    return str(97 - int(digits) % 97).zfill(2)


@pytest.mark.parametrize(
    "number",
    ["1800175123456", "2991299000001", "1000000000000", "2550799123999"],
)
def test_a_nir_with_the_key_of_the_rule_is_accepted(number):
    nir = number + key_by_the_rule(number)

    assert check_nir(nir) == nir


@pytest.mark.parametrize(
    ("number", "department_as"),
    [("185022A004123", "19"), ("185022B004123", "18")],
)
def test_corsican_departments_count_as_19_and_18(number, department_as):
    expected = str(97 - int(number[:5] + department_as + number[7:]) % 97).zfill(2)

    assert nir_key(number) == expected
    assert check_nir(number + expected) == number + expected


def test_the_same_number_in_2a_and_2b_has_different_keys():
    in_2a, in_2b = "185022A004123", "185022B004123"

    assert nir_key(in_2a) != nir_key(in_2b)
    with pytest.raises(InvalidIdentifier):
        check_nir(in_2b + nir_key(in_2a))


def test_a_wrong_key_names_the_expected_key():
    number = "1800175123456"
    expected = key_by_the_rule(number)
    wrong = f"{(int(expected) % 97) + 1:02d}"

    with pytest.raises(InvalidIdentifier) as caught:
        check_nir(number + wrong)

    assert caught.value.field == "ins_nir"
    assert caught.value.expected_key == expected
    assert str(caught.value) == (
        f"ins_nir: key mismatch: the key of {number} is {expected}, not {wrong}"
    )


def test_a_key_of_97_is_written_in_full():
    number = str(97 * 10**10).zfill(13)  # a multiple of 97: the key is 97 - 0

    assert nir_key(number) == "97"


@pytest.mark.parametrize("length", [13, 14, 16])
def test_a_nir_of_the_wrong_length_is_refused_with_its_length(length):
    with pytest.raises(InvalidIdentifier) as caught:
        check_nir("1" * length)

    assert caught.value.reason == (
        f"must be 15 characters (13-character number + 2-digit key), got {length}"
    )


@pytest.mark.parametrize(
    ("nir", "char", "position"),
    [
        ("18001751234X678", "X", 12),
        ("1800A7512345678", "A", 5),
        ("180012C12345678", "C", 7),  # 2C is not a department
        ("1800175123456٣7", "٣", 14),  # a non-ASCII digit
    ],
)
def test_a_bad_character_is_refused_with_its_position(nir, char, position):
    with pytest.raises(InvalidIdentifier) as caught:
        check_nir(nir)

    assert caught.value.reason == (
        f"invalid character {char!r} at position {position}: only digits are allowed, "
        "and 2A or 2B as the department (positions 6-7)"
    )


def test_spaces_and_lower_case_are_normalized():
    number = "185022A004123"
    spaced = f"1 85 02 2a 004 123 {nir_key(number)}"

    assert check_nir(spaced) == number + nir_key(number)


@given(st.from_regex(r"\A[12][0-9]{4}([0-9]{2}|2A|2B)[0-9]{6}\Z"))
def test_every_number_accepts_exactly_its_own_key(number):
    key = key_by_the_rule(number)

    assert check_nir(number + key) == number + key
    for other in ("00", "98", f"{int(key) % 97 + 1:02d}"):
        with pytest.raises(InvalidIdentifier):
            check_nir(number + other)


def test_the_four_ins_oids_are_known():
    assert [oid.value for oid in InsOid] == [
        "1.2.250.1.213.1.4.8",
        "1.2.250.1.213.1.4.9",
        "1.2.250.1.213.1.4.10",
        "1.2.250.1.213.1.4.11",
    ]
    assert check_oid(" 1.2.250.1.213.1.4.10 ") is InsOid.TEST_NIR


def test_an_unknown_oid_is_refused_listing_the_known_ones():
    with pytest.raises(InvalidIdentifier) as caught:
        check_oid("1.2.250.1.213.1.4.2")

    assert caught.value.field == "ins_oid"
    assert caught.value.reason == (
        "unknown INS OID '1.2.250.1.213.1.4.2'; expected one of 1.2.250.1.213.1.4.8 (NIR), "
        "1.2.250.1.213.1.4.9 (NIA), 1.2.250.1.213.1.4.10 (TEST_NIR), "
        "1.2.250.1.213.1.4.11 (TEST_NIA)"
    )


@pytest.mark.parametrize(("raw", "code"), [("75056", "75056"), ("2a004", "2A004")])
def test_birth_place_codes_are_insee_commune_codes(raw, code):
    assert check_birth_place(raw) == code


@pytest.mark.parametrize("raw", ["7505", "2C004", "ABCDE", "750560"])
def test_a_malformed_birth_place_is_refused(raw):
    with pytest.raises(InvalidIdentifier) as caught:
        check_birth_place(raw)

    assert caught.value.field == "birth_place_code"


def test_a_nir_born_in_2a_refuses_a_birth_place_in_2b():
    number = "185022A004123"
    nir = number + nir_key(number)

    check_nir_birth_place(nir, "2A004")
    check_nir_birth_place(nir, "")
    with pytest.raises(InvalidIdentifier) as caught:
        check_nir_birth_place(nir, "2B033")

    assert str(caught.value) == (
        "birth_place_code: 2B033 is not in department 2A, where the NIR records the birth"
    )
