"""What the demo contains, decided before anything is written.

Pure data, computed from `random.Random(SEED)` in a fixed order: every run plans exactly the
same organisations, practitioners and patients, whatever the database holds, and the command
skips what is already there. Append new entries at the end of the lists: RPPS numbers and
patient numbers follow list order, and existing demo data is recognised by them.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from directory.identifiers import luhn_valid
from patients.identifiers import nir_key

SEED = 42
PATIENT_COUNT = 51
HF, RETURN_HOME, T2D = "hf-telemonitoring", "return-home", "t2d-follow-up"
PATHWAY_KEYS = (HF, RETURN_HOME, T2D)
SERVICE_TEAM = "service-team"  # care-team member: the home-nursing service team

WEIGHT, SPO2, HEART_RATE, GLUCOSE = "29463-7", "59408-5", "8867-4", "41653-7"


@dataclass(frozen=True)
class OrganisationSpec:
    key: str
    name: str
    kind: str


ORGANISATIONS = (
    OrganisationSpec("hospital", "Centre hospitalier Démo", "hospital"),
    OrganisationSpec("practice", "Cabinet médical Démo", "practice"),
    OrganisationSpec("home_care", "Service de soins infirmiers à domicile Démo", "home_care"),
    OrganisationSpec("pharmacy", "Pharmacie Démo", "pharmacy"),
    OrganisationSpec("platform", "Plateforme régionale de coordination Démo", "platform"),
)


@dataclass(frozen=True)
class PractitionerSpec:
    username: str
    given_name: str
    family_name: str
    profession: str
    organisation: str
    specialty: str = ""
    rpps: str = ""

    @property
    def email(self) -> str:
        return f"{self.username}@parcours-demo.invalid"


def synthetic_rpps(number: int) -> str:
    """`9999` + six digits + the Luhn digit: valid for the checksum, obviously not issued."""
    base = f"9999{number:06d}"
    return next(base + d for d in "0123456789" if luhn_valid(base + d))


# username, given name, family name (fictional), profession, specialty, organisation, has RPPS
_PEOPLE = (
    ("demo-gp-1", "Alice", "Exemple", "gp", "", "practice", True),
    ("demo-gp-2", "Bruno", "Fictif", "gp", "", "practice", True),
    ("demo-gp-3", "Chloé", "Modèle", "gp", "", "practice", True),
    ("demo-cardiologist-1", "Damien", "Essai", "specialist", "cardiologie", "hospital", True),
    ("demo-cardiologist-2", "Estelle", "Témoin", "specialist", "cardiologie", "hospital", True),
    ("demo-diabetologist-1", "Fabien", "Maquette", "specialist",
     "endocrinologie-diabétologie", "hospital", True),
    ("demo-ophthalmologist-1", "Gaëlle", "Prototype", "specialist", "ophtalmologie",
     "hospital", True),
    ("demo-nurse-1", "Hugo", "Gabarit", "nurse", "", "home_care", True),
    ("demo-nurse-2", "Inès", "Esquisse", "nurse", "", "home_care", True),
    ("demo-nurse-3", "Julien", "Ébauche", "nurse", "", "practice", True),
    ("demo-nurse-4", "Karine", "Brouillon", "nurse", "", "practice", True),
    # Coordinators of the regional platform are often not health professionals: no RPPS.
    ("demo-coordinator-1", "Léo", "Factice", "coordinator", "", "platform", False),
    ("demo-coordinator-2", "Manon", "Simulacre", "coordinator", "", "platform", False),
    ("demo-pharmacist-1", "Nadia", "Postiche", "pharmacist", "", "pharmacy", True),
    ("demo-pharmacist-2", "Olivier", "Chimère", "pharmacist", "", "hospital", True),
    ("demo-physiotherapist-1", "Pauline", "Mirage", "physiotherapist", "", "practice", True),
    ("demo-podiatrist-1", "Quentin", "Songe", "podiatrist", "", "practice", True),
    ("demo-dentist-1", "Rose", "Illusion", "dentist", "", "practice", True),
)  # fmt: skip

PRACTITIONERS = tuple(
    PractitionerSpec(
        username=username,
        given_name=given,
        family_name=family,
        profession=profession,
        organisation=organisation,
        specialty=specialty,
        rpps=synthetic_rpps(index) if has_rpps else "",
    )
    for index, (username, given, family, profession, specialty, organisation, has_rpps) in (
        enumerate(_PEOPLE, start=1)
    )
)

SERVICE_TEAM_NAME = "Soins infirmiers à domicile Démo"
SERVICE_TEAM_ORGANISATION = "home_care"
SERVICE_TEAM_ROLES = ("nurse",)
SERVICE_TEAM_NURSES = ("demo-nurse-1", "demo-nurse-2")


@dataclass(frozen=True)
class StoryTraits:
    """What a story needs set up before it is played."""

    portal: bool = False  # the patient acts in it (a task of role `patient`): portal account
    monitoring: str = ""  # observation profile (see _observations), "" for none
    consent: bool = False  # a remote-monitoring consent on record


# Per pathway, the stories patients are spread over (in turn). `stories.SCRIPTS` plays them.
STORIES: dict[str, tuple[tuple[str, StoryTraits], ...]] = {
    HF: (
        ("enrolment-new", StoryTraits()),
        ("enrolment-under-way", StoryTraits(portal=True, consent=True)),
        ("monitoring", StoryTraits(portal=True, monitoring="hf", consent=True)),
        ("monitoring-overdue-review", StoryTraits(portal=True, monitoring="hf", consent=True)),
        ("weight-alert", StoryTraits(portal=True, monitoring="hf-weight-gain", consent=True)),
        ("renewal-decision", StoryTraits(portal=True, monitoring="hf-low-spo2", consent=True)),
        ("hospitalised", StoryTraits(portal=True, monitoring="hf", consent=True)),
        ("declined", StoryTraits()),
    ),
    RETURN_HOME: (
        ("planning-new", StoryTraits()),
        ("planning-under-way", StoryTraits(portal=True)),
        ("ready-for-discharge", StoryTraits(portal=True)),
        ("first-week", StoryTraits(portal=True)),
        ("home-follow-up", StoryTraits(portal=True)),
        ("physiotherapy", StoryTraits(portal=True)),
        ("readmitted", StoryTraits(portal=True)),
        ("declined", StoryTraits()),
    ),
    T2D: (
        ("inclusion-new", StoryTraits()),
        ("inclusion-under-way", StoryTraits()),
        ("education-overdue", StoryTraits(portal=True)),
        ("follow-up", StoryTraits(portal=True, monitoring="t2d")),
        ("hypoglycaemia-review", StoryTraits(portal=True, monitoring="t2d-hypo")),
        ("annual-review", StoryTraits(portal=True, monitoring="t2d")),
        ("podiatry", StoryTraits(portal=True, monitoring="t2d")),
        ("diabetologist", StoryTraits(portal=True, monitoring="t2d")),
        ("declined", StoryTraits()),
    ),
}


# Patients after the first PATIENT_COUNT, each with a story of its own (numbers follow on):
# together with the stories above they give open alerts of every triage band.
EXTRA_STORIES: tuple[tuple[str, str, StoryTraits], ...] = (
    # resting heart rate 128 /min (2 points): low band
    (HF, "tachycardia", StoryTraits(portal=True, monitoring="hf-tachycardia", consent=True)),
    # +3.2 kg in 3 days (2 or 3 points) and SpO2 87 % (3 points): high band
    (HF, "decompensation", StoryTraits(portal=True, monitoring="hf-decompensation", consent=True)),
)

# Granted to one account each, so that every page can be tried with the demo accounts:
# uploading and publishing pathways (the `coordinators` group), breaking the glass.
PATHWAY_MANAGER = "demo-coordinator-1"
EMERGENCY_GP = "demo-gp-1"
# The record the emergency GP opened outside their care team (break the glass): the
# patient of the decompensation story (followed by the home-nursing team), whose GP is
# another demo GP.
BREAK_GLASS_STORY = "decompensation"
BREAK_GLASS_REASON = (
    "Garde de week-end : appel du patient pour essoufflement, médecin traitant absent "
    "(données fictives)."
)


@dataclass(frozen=True)
class ObservationSpec:
    code: str
    value: str  # decimal text, in `unit`
    unit: str
    minutes_ago: int  # before the run's anchor time
    device: str  # Device.Kind of the device that sent it


@dataclass(frozen=True)
class PatientSpec:
    number: int
    pathway: str
    story: str
    traits: StoryTraits
    family_name: str
    given_names: str
    sex: str
    birth_date: dt.date
    identity_status: str
    ins_nir: str  # with the test OID (patients.identifiers.InsOid.TEST_NIR)
    care_team: tuple[tuple[str, str], ...]  # (role, practitioner username or SERVICE_TEAM)
    observations: tuple[ObservationSpec, ...]

    @property
    def portal_username(self) -> str:
        return f"demo-patient-{self.number:02d}" if self.traits.portal else ""


_FEMALE = ("Adèle", "Berthe", "Colette", "Denise", "Éliane", "Françoise", "Gisèle", "Huguette",
           "Irène", "Josette", "Lucienne", "Marcelle", "Nicole", "Odette", "Paulette",
           "Simone")  # fmt: skip
_MALE = ("André", "Bernard", "Claude", "Daniel", "Émile", "Fernand", "Gérard", "Henri",
         "Jacques", "Lucien", "Marcel", "Norbert", "Pierre", "Raymond", "Serge",
         "Yves")  # fmt: skip
_BIRTH_YEARS = {HF: (1935, 1965), RETURN_HOME: (1930, 1960), T2D: (1945, 1980)}
_IDENTITY_STATUSES = ("qualified", "validated", "recovered", "provisional")


def synthetic_nir(number: int, sex: str, birth_date: dt.date) -> str:
    """Sex, year and month of birth, born in Paris (75 056), order number 9xx, and its key."""
    digits = f"{1 if sex == 'male' else 2}{birth_date:%y%m}75056{900 + number:03d}"
    return digits + nir_key(digits)


def patient_plan() -> list[PatientSpec]:
    rng = random.Random(SEED)  # noqa: S311 - reproducible demo data, not a secret
    specs = []
    for number in range(1, PATIENT_COUNT + 1):
        pathway = PATHWAY_KEYS[(number - 1) % len(PATHWAY_KEYS)]
        stories = STORIES[pathway]
        story, traits = stories[((number - 1) // len(PATHWAY_KEYS)) % len(stories)]
        specs.append(_patient(number, pathway, story, traits, rng))
    for number, (pathway, story, traits) in enumerate(EXTRA_STORIES, start=PATIENT_COUNT + 1):
        specs.append(_patient(number, pathway, story, traits, rng))
    return specs


def _patient(
    number: int, pathway: str, story: str, traits: StoryTraits, rng: random.Random
) -> PatientSpec:
    sex = rng.choice(("female", "male"))
    first, last = _BIRTH_YEARS[pathway]
    start = dt.date(first, 1, 1)
    birth_date = start + dt.timedelta(days=rng.randrange((dt.date(last, 12, 31) - start).days))
    return PatientSpec(
        number=number,
        pathway=pathway,
        story=story,
        traits=traits,
        family_name=f"Synthétique {number:02d}",
        given_names=rng.choice(_FEMALE if sex == "female" else _MALE),
        sex=sex,
        birth_date=birth_date,
        identity_status=rng.choices(_IDENTITY_STATUSES, weights=(5, 2, 2, 1))[0],
        ins_nir=synthetic_nir(number, sex, birth_date),
        care_team=_care_team(pathway, number),
        observations=_observations(traits.monitoring, rng),
    )


def _care_team(pathway: str, number: int) -> tuple[tuple[str, str], ...]:
    """Every role of the pathway but `patient` (played through the portal account). Roles
    with no profession of their own go to a plausible one: the hospital physician of a
    return home is a cardiologist of the demo hospital, the supplier of the telemonitoring
    devices is the community pharmacy."""
    gp = f"demo-gp-{number % 3 + 1}"
    cardiologist = f"demo-cardiologist-{number % 2 + 1}"
    # Every other patient has the home-nursing service team as nurse (tasks offered to the
    # team); the others a nurse of their own (tasks owned at once).
    nurse = SERVICE_TEAM if number % 2 else f"demo-nurse-{(number // 2) % 2 + 3}"
    coordinators = [f"demo-coordinator-{number % 2 + 1}"]
    if number % 5 == 0:  # both coordinators: their tasks are offered, unclaimed
        coordinators.append(f"demo-coordinator-{(number + 1) % 2 + 1}")
    team: list[tuple[str, str]] = [("gp", gp), ("nurse", nurse)]
    team += [("coordinator", c) for c in coordinators]
    if pathway == HF:
        team += [("cardiologist", cardiologist), ("device_supplier", "demo-pharmacist-1")]
    elif pathway == RETURN_HOME:
        team += [
            ("hospital_physician", cardiologist),
            ("hospital_pharmacist", "demo-pharmacist-2"),
            ("pharmacist", "demo-pharmacist-1"),
            ("physiotherapist", "demo-physiotherapist-1"),
        ]
    else:
        team += [
            ("diabetologist", "demo-diabetologist-1"),
            ("ophthalmologist", "demo-ophthalmologist-1"),
            ("dentist", "demo-dentist-1"),
            ("podiatrist", "demo-podiatrist-1"),
        ]
    return tuple(team)


DAY = 24 * 60
DAYS_OF_READINGS = 14


def _observations(profile: str, rng: random.Random) -> tuple[ObservationSpec, ...]:
    """Two weeks of device readings, most recent last.

    hf: a morning weight, SpO2 and heart rate each day; hf-weight-gain ends with +3.2 kg over
    three days (+2.8 kg over the last two, the least `rise` sees), hf-low-spo2 with a SpO2 of
    87 % (two of the alerts of hf-telemonitoring), hf-decompensation with both,
    hf-tachycardia with a resting heart rate of 128 /min.
    t2d: fasting capillary glucose in g/L each morning (French meters), after lunch every
    other day; t2d-hypo ends with 0.48 g/L (level 2 hypoglycaemia).
    """
    readings: list[ObservationSpec] = []
    if profile.startswith("hf"):
        weight = rng.uniform(62.0, 98.0)
        gain_profiles = ("hf-weight-gain", "hf-decompensation")
        gain = {2: 0.4, 1: 1.6, 0: 3.2} if profile in gain_profiles else {}
        for day in range(DAYS_OF_READINGS - 1, -1, -1):
            at = day * DAY + rng.randrange(60, 180)
            weight += rng.uniform(-0.3, 0.3)
            low = profile in ("hf-low-spo2", "hf-decompensation") and day == 0
            spo2 = 87 if low else rng.randint(93, 98)
            heart_rate = rng.randint(58, 86)
            if profile == "hf-tachycardia" and day == 0:
                heart_rate = 128
            readings += [
                ObservationSpec(WEIGHT, f"{weight + gain.get(day, 0.0):.1f}", "kg", at, "scale"),
                ObservationSpec(SPO2, str(spo2), "%", at - 2, "pulse_oximeter"),
                ObservationSpec(HEART_RATE, str(heart_rate), "/min", at - 2, "pulse_oximeter"),
            ]
    elif profile.startswith("t2d"):
        for day in range(DAYS_OF_READINGS - 1, -1, -1):
            fasting = rng.uniform(0.92, 1.40)
            if profile == "t2d-hypo" and day == 0:
                fasting = 0.48
            morning = day * DAY + rng.randrange(60, 180)
            readings.append(
                ObservationSpec(GLUCOSE, f"{fasting:.2f}", "g/L", morning, "glucometer")
            )
            if day % 2 == 0 and day > 0:
                after_lunch = f"{rng.uniform(1.20, 1.75):.2f}"
                readings.append(
                    ObservationSpec(GLUCOSE, after_lunch, "g/L", morning - 6 * 60, "glucometer")
                )
    return tuple(readings)
