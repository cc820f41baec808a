"""factory_boy factories for the patients app. Every identity is synthetic: names like
"Synthetic Patient 3", NIRs under the test OID (1.2.250.1.213.1.4.10) with valid keys.

Factories write rows directly, without audit records: they set the scene; the behaviour
under test goes through the services. Call `XFactory.create(...)`: it is typed as the model."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import Group, User
from django.utils import timezone
from factory.declarations import LazyAttribute, LazyFunction, Sequence, SubFactory
from factory.django import DjangoModelFactory

from patients.identifiers import InsOid, nir_key
from patients.models import Device, Patient


def synthetic_nir(n: int, *, sex: str = "1", department: str = "75") -> str:
    """A well-formed 15-character test NIR: sex, born 1980-01, `department`, the commune and
    order numbers from `n`, and the key computed by the rule."""
    number = f"{sex}8001{department}{n % 1_000_000:06d}"
    return number + nir_key(number)


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = Sequence(lambda n: f"synthetic-user-{n}")


class GroupFactory(DjangoModelFactory[Group]):
    class Meta:
        model = Group

    name = Sequence(lambda n: f"synthetic-team-{n}")


class PatientFactory(DjangoModelFactory[Patient]):
    class Meta:
        model = Patient

    family_name = Sequence(lambda n: f"Patient {n}")
    given_names = "Synthetic"
    birth_date = dt.date(1980, 1, 15)
    sex = Patient.Sex.FEMALE
    ins_nir = Sequence(lambda n: synthetic_nir(n, sex="2"))
    ins_oid = InsOid.TEST_NIR.value
    identity_status = Patient.IdentityStatus.PROVISIONAL
    created_at = LazyFunction(timezone.now)
    updated_at = LazyAttribute(lambda o: o.created_at)
    version = 1


class DeviceFactory(DjangoModelFactory[Device]):
    class Meta:
        model = Device

    patient = SubFactory(PatientFactory)
    kind = Device.Kind.SCALE
    manufacturer = "Synthetic Devices"
    model = "Scale S1"
    serial = Sequence(lambda n: f"SYN-{n:06d}")
    active = True
    created_at = LazyFunction(timezone.now)
