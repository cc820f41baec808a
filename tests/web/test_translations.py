from __future__ import annotations

import re
from pathlib import Path

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
