from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User

from patients.models import Patient
from tests.patients.factories import PatientFactory, UserFactory

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def nurse(db: None) -> User:
    return UserFactory.create(username="synthetic-nurse")


@pytest.fixture
def patient(db: None) -> Patient:
    return PatientFactory.create()
