"""The package layout holds: no module imports another module's private names.

The layer contracts (which package may import which, no cycles) are import-linter's, run in
CI; this checks what import-linter cannot see: `from x import _name` across modules."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = (
    "core",
    "workflows",
    "patients",
    "live",
    "directory",
    "coordination",
    "api",
    "web",
    "config",
)


def _private_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.module is None or node.level:
            continue
        if node.module.split(".")[0] not in APPS:
            continue
        for alias in node.names:
            if alias.name.startswith("_") and not alias.name.startswith("__"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.module}.{alias.name}")
    return found


def test_no_module_imports_another_modules_private_names():
    sources = [p for app in APPS for p in (ROOT / app).rglob("*.py") if "migrations" not in p.parts]
    assert len(sources) > 100  # the apps were found
    offenders = [hit for path in sources for hit in _private_imports(path)]
    assert offenders == []


def test_the_check_sees_a_private_import():
    probe = ROOT / "core" / "_layout_probe.py"
    probe.write_text("from core.sql.reads import _layout\nfrom core.sql import table\n")
    try:
        assert _private_imports(probe) == ["core/_layout_probe.py:1 core.sql.reads._layout"]
    finally:
        probe.unlink()
