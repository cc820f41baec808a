"""InIds: `column IN (ids)` for a set read into Python (core.sql.id_sets)."""

from __future__ import annotations

import pytest
from django.db import connection

from core.sql import InIds
from patients.models import Patient
from tests.patients.factories import PatientFactory

pytestmark = pytest.mark.django_db


def test_it_keeps_exactly_the_rows_whose_column_is_in_the_set():
    first, second, third = PatientFactory.create_batch(3)

    kept = Patient.objects.filter(InIds("id", [third.pk, first.pk, first.pk]))

    assert sorted(kept.values_list("pk", flat=True)) == sorted([first.pk, third.pk])
    assert list(Patient.objects.filter(~InIds("id", [first.pk, third.pk]))) == [second]


def test_an_empty_set_keeps_nothing():
    PatientFactory()

    assert list(Patient.objects.filter(InIds("id", []))) == []


def test_only_integers_are_accepted():
    with pytest.raises(ValueError, match="invalid literal"):
        InIds("id", ["1}'::bigint[]) OR (1 = 1"])  # type: ignore[list-item]


def test_on_postgresql_the_set_is_written_into_the_statement_not_bound(postgres_only):
    """A bound array would leave the set out of a prepared statement's generic plan, which
    then guesses ten elements and reads the tasks the wrong way (see the module)."""
    first, second = PatientFactory.create_batch(2)

    sql, params = Patient.objects.filter(InIds("id", [second.pk, first.pk])).query.sql_with_params()

    low, high = sorted([first.pk, second.pk])
    assert f"= ANY('{{{low},{high}}}'::bigint[])" in sql
    assert params == ()
    with connection.cursor() as cursor:
        # Run enough times for the statement to be prepared and given a generic plan.
        for _ in range(12):
            cursor.execute(sql, params)
            assert sorted(row[0] for row in cursor.fetchall()) == [low, high]
