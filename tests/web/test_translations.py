"""The French catalogue `locale/fr/LC_MESSAGES/django.po` holds the translations; `make messages`
extracts the strings of the code into it and compiles `django.mo`, which is committed so that a
fresh clone serves French without GNU gettext installed."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import polib
import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import translation

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "locale" / "fr" / "LC_MESSAGES" / "django.po"
COMPILED = CATALOGUE.with_suffix(".mo")
GETTEXT_TOOLS = ("xgettext", "msguniq", "msgmerge", "msgattrib")

# (msgctxt, msgid, msgid_plural): what gettext looks a translation up by.
Key = tuple[str | None, str, str]


def _key(entry: polib.POEntry | polib.MOEntry) -> Key:
    return (entry.msgctxt, entry.msgid, entry.msgid_plural)


def _msgstrs(entry: polib.POEntry | polib.MOEntry) -> list[str]:
    if entry.msgid_plural:
        return [entry.msgstr_plural[n] for n in sorted(entry.msgstr_plural)]
    return [entry.msgstr]


def _translations(entries: list[polib.POEntry] | polib.MOFile) -> dict[Key, list[str]]:
    return {_key(e): _msgstrs(e) for e in entries}


def _messages_ignore() -> list[str]:
    """The paths `make messages` does not search, so that this file checks what it extracts."""
    match = re.search(r"^MESSAGES_IGNORE :?= (.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert match, "the Makefile defines MESSAGES_IGNORE for its messages target"
    return match.group(1).split()


def test_every_string_of_the_french_catalogue_is_translated():
    catalogue = polib.pofile(str(CATALOGUE))

    untranslated = [e.msgid for e in catalogue.untranslated_entries()]

    assert untranslated == []


def test_no_translation_of_the_french_catalogue_is_a_fuzzy_guess():
    catalogue = polib.pofile(str(CATALOGUE))

    fuzzy = [e.msgid for e in catalogue.fuzzy_entries()]

    assert fuzzy == []
    assert not catalogue.metadata_is_fuzzy  # msgfmt would drop the header, plural forms included


def test_the_french_catalogue_keeps_no_obsolete_entry():
    catalogue = polib.pofile(str(CATALOGUE))

    obsolete = [e.msgid for e in catalogue.obsolete_entries()]

    assert obsolete == []


def test_the_committed_compiled_catalogue_is_compiled_from_the_current_one():
    catalogue = polib.pofile(str(CATALOGUE))
    compiled = polib.mofile(str(COMPILED))

    expected = _translations(catalogue.translated_entries())

    assert _translations(compiled) == expected, "django.mo is stale: run `make messages`"
    assert compiled.metadata["Plural-Forms"] == catalogue.metadata["Plural-Forms"]


def test_the_compiled_french_catalogue_is_the_one_served():
    with translation.override("fr"):
        assert translation.gettext("Unclaimed tasks of my teams") == (
            "Tâches de mes équipes à prendre"
        )


@pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in GETTEXT_TOOLS),
    reason="makemessages needs GNU gettext (xgettext, msguniq, msgmerge, msgattrib); "
    "CI installs it",
)
def test_the_french_catalogue_holds_exactly_the_strings_of_the_code(tmp_path, monkeypatch):
    """makemessages run afresh, as `make messages` runs it, on a copy of the sources finds no
    string the catalogue lacks, and the catalogue keeps none the code no longer has."""
    ignore = _messages_ignore()
    extensions = {".py", ".html", ".txt"}  # what makemessages reads for the django domain

    def not_copied(directory: str, names: list[str]) -> set[str]:
        skipped = set(shutil.ignore_patterns(*ignore, ".*", "__pycache__")(directory, names))
        if Path(directory) == ROOT:
            skipped.add("locale")
        return skipped | {
            n for n in names if Path(n).suffix not in extensions and not Path(directory, n).is_dir()
        }

    sources = tmp_path / "sources"
    shutil.copytree(ROOT, sources, ignore=not_copied)
    (sources / "locale").mkdir()
    monkeypatch.chdir(sources)
    with override_settings(LOCALE_PATHS=[sources / "locale"]):
        call_command(
            "makemessages", locale=["fr"], ignore_patterns=ignore, no_obsolete=True, verbosity=0
        )
    fresh = polib.pofile(str(sources / "locale" / "fr" / "LC_MESSAGES" / "django.po"))
    catalogue = polib.pofile(str(CATALOGUE))

    in_code = {_key(e) for e in fresh}
    in_catalogue = {_key(e) for e in catalogue if not e.obsolete}

    assert in_code - in_catalogue == set(), "missing from django.po: run `make messages`"
    assert in_catalogue - in_code == set(), "gone from the code: run `make messages`"
