"""Everything a user reads is in their language: every main page, rendered for the demo's
nurse, GP, pathway coordinator and a portal patient, in French and in English, shows no code
of the shipped pathways where the pathway gives a title (states, events, roles, alerts,
tasks), no actor label (`user:1`), no arrow written as `->`, no title of the shipped
pathways in the other language and no date written the ISO way; and a refusal and a broken
upload's problems read in the user's language.

The demo is loaded once for the module (it takes several seconds), inside a transaction
rolled back after the module's last test, as in tests/coordination/test_seed_demo.py.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.utils import translation

from coordination.models import AlertRecord, CarePathway, Task
from directory.models import CareTeamMember
from patients.measurements import MEASUREMENTS
from workflows.definition import compile_document
from workflows.definition.compiled import CompiledDefinition, localized
from workflows.definition.parsing import parse_source
from workflows.models import HistoryEntry
from workflows.shipped import library_files

pytestmark = pytest.mark.slow

PASSWORD = "demo-password-for-language-tests"
NURSE, GP, COORDINATOR = "demo-nurse-1", "demo-gp-1", "demo-coordinator-1"
LANGUAGES = ("fr", "en")

# Documents the upload page refuses: one with problems of shape (jsonschema), of meaning and
# a condition that does not parse; one whose YAML does not parse.
BROKEN_SHAPE = """\
key: broken-language-test
version: one
title: {fr: Cassé, en: Broken}
roles: [gp]
initial: start
states:
  start:
    final: maybe
    alerts:
      - {name: high, when: "observation.value >", event: later}
      - {name: low, when: "observation.value < 1", event: sooner}
    on:
      go: nowhere
  done: {final: true}
"""
BROKEN_YAML = "key: broken\nstates: [unclosed\n"
# What jsonschema, PyYAML and the CEL parser write themselves, in English.
RAW_ENGLISH_PROBLEMS = (
    "is not of type",
    "is not valid under",
    "Additional properties",
    "is a required property",
    "malformed YAML",
    "while parsing",
    "expected ',' or ']'",
    "not a valid",
    "is not handled by",
    "does not parse",
    "expected the",
    "Syntax error",
    "stops before",
)


# --- what must not be read -----------------------------------------------------------------


def _plain(node: Any) -> Iterator[str]:
    """Every text of a document given in one form for all languages (a reference's title, a
    publisher), which a page may show as it is."""
    if isinstance(node, Mapping):
        if set(node) == {"fr", "en"}:
            return
        for value in node.values():
            yield from _plain(value)
    elif isinstance(node, list):
        for value in node:
            yield from _plain(value)
    elif isinstance(node, str) and " " in node:
        yield node


def _texts(node: Any) -> Iterator[Mapping[str, str]]:
    """Every {fr, en} text of a document."""
    if isinstance(node, Mapping):
        if set(node) == {"fr", "en"} and all(isinstance(v, str) for v in node.values()):
            yield node
            return
        for value in node.values():
            yield from _texts(value)
    elif isinstance(node, list):
        for value in node:
            yield from _texts(value)


@dataclass(frozen=True)
class Shipped:
    documents: tuple[Mapping[str, Any], ...]
    definitions: tuple[CompiledDefinition, ...]

    def titles(self, language: str) -> set[str]:
        return {t[language] for d in self.documents for t in _texts(d)}

    def readable(self, language: str) -> list[str]:
        """What a page in `language` may show of the pathways' texts, longest first."""
        texts = self.titles(language) | {t for d in self.documents for t in _plain(d)}
        return sorted(texts, key=len, reverse=True)

    def words(self, language: str) -> set[str]:
        return {w for text in self.titles(language) for w in re.findall(r"[\w'-]+", text)}

    def codes(self) -> set[str]:
        """Codes of states, events, roles, alerts and tasks that have a title."""
        codes: set[str] = set()
        for d in self.definitions:
            codes |= set(d.roles)
            for state in d.states.values():
                codes.add(state.name)
                codes |= set(state.transitions)
                codes |= {t.code for t in state.tasks} | {t.event for t in state.timers}
                codes |= {a.name for a in d.alerts_in(state)} | {a.name for a in state.alerts}
                codes |= {a.event for a in state.alerts if a.event}
            codes |= {a.name for a in d.monitoring.alerts} | {e.key for e in d.monitoring.expects}
            codes |= {a.event for a in d.monitoring.alerts if a.event}
            codes |= {t.event for t in d.timers}
        return codes

    def forbidden_codes(self, language: str) -> set[str]:
        """Codes no page may show in `language`: every code made of several words
        (`weight-gain`, `device_supplier`, `tasks_completed`), and a one-word code (`nurse`,
        `enrolment`) unless it is a word of the pathways' own texts in that language (French
        `patient`, English `monitoring`)."""
        words = self.words(language)
        return {c for c in self.codes() if re.search(r"[_-]", c) or c == "gp" or c not in words}


def _shipped() -> Shipped:
    documents = []
    for path in library_files():
        parsed = parse_source(path.read_text(encoding="utf-8"), "yaml")
        documents.append(parsed.document)
    return Shipped(tuple(documents), tuple(compile_document(d) for d in documents))


SHIPPED = _shipped()


def page_text(body: str) -> str:
    """What a reader sees: the page without its scripts, styles and tags."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S | re.I)
    body = re.sub(r"<[^>]+>", " ", body)
    return re.sub(r"\s+", " ", html.unescape(body))


def misreadings(text: str, language: str) -> list[str]:
    """What a page in `language` shows that it should not, once the pathways' own texts in
    that language are set aside (a title may contain a code's word or the other language's
    title: "Inclusion and initial assessment", a French guideline's name)."""
    for own in SHIPPED.readable(language):
        text = text.replace(own, " ")
    found = []
    for code in sorted(SHIPPED.forbidden_codes(language)):
        if re.search(rf"(?<![\w-]){re.escape(code)}(?![\w-])", text):
            found.append(f"code {code!r}")
    found += [f"actor {m!r}" for m in sorted(set(re.findall(r"\buser:\d+", text)))]
    if " -> " in text:
        found.append("an arrow written ' -> '")
    found += [f"ISO date {m!r}" for m in re.findall(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d", text)]
    if language == "fr":  # a measurement's English name (the API's `display`) on a French page
        with translation.override("fr"):
            english = {m.display for m in MEASUREMENTS.values() if m.display != m.label}
        found += [f"measurement {d!r}" for d in sorted(english) if d in text]
    other = "en" if language == "fr" else "fr"
    for title in sorted(SHIPPED.titles(other) - SHIPPED.titles(language)):
        if len(title) >= 4 and re.search(rf"(?<!\w){re.escape(title)}(?!\w)", text):
            found.append(f"{other} title {title!r}")
    return found


# --- the demo --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    with django_db_blocker.unblock(), transaction.atomic():
        call_command("seed_demo", stdout=io.StringIO())
        for user in get_user_model().objects.filter(username__startswith="demo-"):
            user.set_password(PASSWORD)
            user.save()
        yield
        transaction.set_rollback(True)


@pytest.fixture
def seeded(demo: None, db: None) -> None:
    return None


def login(username: str, language: str) -> Client:
    """The user logged in through the login form, having chosen `language`."""
    client = Client()
    client.post("/i18n/setlang/", {"language": language, "next": "/login/"})
    response = client.post("/login/", {"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.content[:300]
    return client


def read(client: Client, url: str, status: int = 200, **post: Any) -> str:
    response = client.post(url, post, follow=True) if post else client.get(url)
    assert response.status_code == status, (url, response.status_code)
    return page_text(response.content.decode())


def _moved_pathways() -> list[tuple[str, CarePathway]]:
    """One pathway of each shipped key that has moved on past its first step (a timeline
    with transitions and events), with a practitioner of its care team."""
    chosen: dict[str, tuple[str, CarePathway]] = {}
    moved = HistoryEntry.objects.exclude(from_state__isnull=True).exclude(from_state="")
    for pathway in CarePathway.objects.filter(instance__in=moved.values("instance")).select_related(
        "instance__definition", "patient"
    ):
        member = (
            CareTeamMember.objects.filter(
                care_team__patient=pathway.patient_id, active=True, practitioner__isnull=False
            )
            .select_related("practitioner__user")
            .first()
        )
        if member is not None and member.practitioner is not None:
            key = pathway.instance.definition.key  # type: ignore[union-attr]
            chosen.setdefault(key, (member.practitioner.user.username, pathway))
    return list(chosen.values())


def care_team_pages() -> list[tuple[str, str]]:
    """(user, url) of every main care-team page, with the demo's data."""
    pathways = _moved_pathways()
    assert len(pathways) == len(SHIPPED.definitions)
    pages = [(NURSE, "/worklist/"), (NURSE, "/alerts/"), (NURSE, "/triage/"), (GP, "/worklist/")]
    pages += [(user, f"/patients/{p.patient_id}/") for user, p in pathways]
    alert = AlertRecord.objects.filter(
        task__isnull=False, task__offered_role="nurse", name="weight-gain"
    ).first()
    assert alert is not None
    assert alert.task_id is not None
    pages += [(NURSE, f"/tasks/{alert.task_id}/"), (NURSE, f"/patients/{alert.patient_id}/")]
    for user, pathway in pathways:
        done = Task.objects.filter(status="completed", care_pathway=pathway).first()
        if done is not None:
            pages.append((user, f"/tasks/{done.pk}/"))
    pages += [(COORDINATOR, "/pathways/")]
    pages += [(COORDINATOR, f"/pathways/{d.key}/{d.version}/") for d in SHIPPED.definitions]
    pages += [(COORDINATOR, "/pathways/upload/")]
    return pages


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_care_team_page_reads_in_the_users_language(seeded: None, language: str):
    pages = care_team_pages()
    clients = {user: login(user, language) for user in {user for user, _ in pages}}

    problems = {
        f"{user} {url}": found
        for user, url in pages
        if (found := misreadings(read(clients[user], url), language))
    }

    assert problems == {}, "\n".join(f"{page}: {found}" for page, found in problems.items())


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_portal_reads_in_the_patients_language(seeded: None, language: str):
    patient = (
        CarePathway.objects.filter(patient__user__isnull=False, instance__status="active")
        .select_related("patient__user")
        .first()
    )
    assert patient is not None
    assert patient.patient.user is not None

    text = read(login(patient.patient.user.username, language), "/portal/")

    assert misreadings(text, language) == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_not_found_page_reads_in_the_users_language(seeded: None, language: str):
    text = read(login(NURSE, language), "/patients/999999999/", status=404)

    assert misreadings(text, language) == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_refusal_on_a_task_page_reads_in_the_users_language(seeded: None, language: str):
    task = next(
        t
        for t in Task.objects.filter(
            status="ready", owner__isnull=True, offered_role="nurse", care_pathway__isnull=False
        ).order_by("pk")
        if CareTeamMember.objects.filter(
            care_team__patient=t.patient_id, role="gp", active=True, practitioner__isnull=False
        ).exists()
    )
    gp = CareTeamMember.objects.filter(
        care_team__patient=task.patient_id, role="gp", active=True, practitioner__isnull=False
    ).first()
    assert gp is not None
    assert gp.practitioner is not None

    text = read(
        login(gp.practitioner.user.username, language),
        f"/tasks/{task.pk}/act/",
        action="start",
        version=str(task.version),
    )

    expected = {
        "fr": "Non effectué : seul le responsable de la tâche peut faire cela",
        "en": "Not done: only the task's owner may do this",
    }[language]
    assert expected in text
    assert misreadings(text, language) == []
    task.refresh_from_db()
    assert (task.status, task.owner_id) == ("ready", None)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("source", [BROKEN_SHAPE, BROKEN_YAML], ids=["shape", "yaml"])
def test_a_broken_upload_explains_its_problems_in_the_users_language(
    seeded: None, language: str, source: str
):
    client = login(COORDINATOR, language)

    response = client.post("/pathways/upload/", {"source": source})

    assert response.status_code == 400
    body = response.content.decode()
    # Without the uploaded document itself, quoted line by line and kept in the form.
    body = re.sub(r"<td><code>.*?</code>|<textarea\b.*?</textarea>", " ", body, flags=re.S)
    text = page_text(body)
    assert ("problème" if language == "fr" else "problem") in text
    if language == "fr":
        english = [p for p in RAW_ENGLISH_PROBLEMS if p in text]
        assert english == [], text
    assert misreadings(text, language) == []


def test_shipped_pathways_carry_every_title_in_both_languages():
    untitled = []
    for document, definition in zip(SHIPPED.documents, SHIPPED.definitions, strict=True):
        for name, spec in document["states"].items():
            title = (spec or {}).get("title")
            if not isinstance(title, Mapping) or set(title) != {"fr", "en"}:
                untitled.append(f"{definition.key}: state {name}")
        for state in definition.states.values():
            for task in state.tasks:
                if not isinstance(task.title, Mapping):
                    untitled.append(f"{definition.key}: task {task.code}")
        for alert in definition.monitoring.alerts:
            if not isinstance(alert.title, Mapping):
                untitled.append(f"{definition.key}: alert {alert.name}")

    assert untitled == []
    assert localized(SHIPPED.definitions[0].title, "fr") != localized(
        SHIPPED.definitions[0].title, "en"
    )
