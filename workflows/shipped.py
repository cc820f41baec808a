"""The pathways shipped with Parcours, in workflows/library/."""

from __future__ import annotations

from pathlib import Path

LIBRARY_DIR = Path(__file__).resolve().parent / "library"


def library_files() -> list[Path]:
    return sorted([*LIBRARY_DIR.glob("*.yaml"), *LIBRARY_DIR.glob("*.json")])
