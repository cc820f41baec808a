from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from django.core.management import call_command
from django.test import override_settings
from django.utils import translation

CATALOGUE = Path(__file__).resolve().parents[2] / "locale" / "fr" / "LC_MESSAGES" / "django.po"


def test_every_string_of_the_french_catalogue_is_translated_and_none_is_a_guess():
    text = CATALOGUE.read_text(encoding="utf-8")
    entries = text.split("\n\n")[1:]  # the first one is the header

    # An empty msgstr not continued on the next line.
    untranslated = [e for e in entries if re.search(r'^msgstr(\[\d\])? ""(\n(?!")|$)', e, re.M)]

    assert "fuzzy" not in text
    assert untranslated == []


def test_the_compiled_french_catalogue_is_the_one_served():
    with translation.override("fr"):
        assert translation.gettext("Unclaimed tasks of my teams") == (
            "Tâches de mes équipes à prendre"
        )


SOURCES = ("api", "config", "coordination", "patients", "web", "workflows")


def _msgids(po: str) -> set[str]:
    """The msgids of the live (not obsolete) entries of a catalogue."""
    ids = set()
    for entry in po.split("\n\n"):
        lines = [line for line in entry.splitlines() if not line.startswith("#")]
        match = re.search(r'^msgid ((?:".*"\n?)+)', "\n".join(lines), re.M)
        if match:
            ids.add("".join(re.findall(r'"((?:[^"\\]|\\.)*)"', match.group(1))))
    return ids - {""}


def test_the_french_catalogue_holds_every_string_of_the_code(tmp_path):
    """makemessages run afresh on a copy of the sources finds no string the catalogue lacks
    (the catalogue is not stale), and the catalogue keeps none the code no longer has."""
    root = CATALOGUE.parents[3]
    for name in SOURCES:
        shutil.copytree(root / name, tmp_path / name, ignore=shutil.ignore_patterns("*.pyc"))
    (tmp_path / "locale").mkdir()
    cwd = Path.cwd()
    try:
        os.chdir(tmp_path)
        with override_settings(LOCALE_PATHS=[tmp_path / "locale"]):
            call_command("makemessages", locale=["fr"], verbosity=0)
    finally:
        os.chdir(cwd)
    fresh = (tmp_path / "locale" / "fr" / "LC_MESSAGES" / "django.po").read_text("utf-8")

    assert _msgids(fresh) - _msgids(CATALOGUE.read_text("utf-8")) == set()
    assert _msgids(CATALOGUE.read_text("utf-8")) - _msgids(fresh) == set()
