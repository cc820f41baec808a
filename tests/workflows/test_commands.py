"""`validate_pathway` and `load_pathway`: what they print, their exit codes, what they write."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from workflows.definition import validate_source
from workflows.models import PathwayDefinition

ROOT = Path(__file__).resolve().parents[2]

VALID = """\
key: demo-pathway
version: 1
title: Demo pathway
roles: [nurse, gp]
initial: intake
states:
  intake:
    on_enter:
      - task: {code: call-patient, title: Call the patient, role: nurse, due: P3D}
    on:
      tasks_completed: closed
      stop: {to: closed, roles: [gp]}
  closed:
    final: true
"""

# Two mistakes: version as text (line 2) and an undeclared role (line 9).
BROKEN = VALID.replace("version: 1", "version: one").replace("role: nurse", "role: surgeon")

OTHER = VALID.replace("key: demo-pathway", "key: other-pathway")


def as_json(text: str, indent: int | None = None) -> str:
    return json.dumps(validate_source(text, filename="pathway.yaml").document, indent=indent)


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def run_validate_pathway(*files: Path | str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    return subprocess.run(  # noqa: PLW1510 - the exit code is what the tests assert
        [sys.executable, "manage.py", "validate_pathway", *map(str, files)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def call(command: str, *args: str) -> tuple[int, str, str]:
    """Run a command in-process; (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(command, *args, stdout=out, stderr=err)
    except SystemExit as exc:
        code = exc.code
        assert isinstance(code, int)
        return code, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def broken_lines(path: Path) -> list[str]:
    return [
        f"{path}: version: expected a whole number, got text (line 2)",
        f"{path}: states.intake.on_enter.0.task.role: "
        "role 'surgeon' is not declared in 'roles' (declared: gp, nurse) (line 9)",
    ]


def definitions() -> list[tuple[str, int, str, str]]:
    return list(
        PathwayDefinition.objects.order_by("key", "version").values_list(
            "key", "version", "status", "title"
        )
    )


# --- validate_pathway, as a process --------------------------------------------------------------


def test_validate_pathway_exits_0_silently_for_a_valid_file(tmp_path):
    path = write(tmp_path, "demo.yaml", VALID)

    completed = run_validate_pathway(path)

    assert (completed.returncode, completed.stdout, completed.stderr) == (0, "", "")


# A SpO2 alert in `intake` only: `review` leaves the measurement unwatched (a warning).
UNWATCHED = """\
key: unwatched-pathway
version: 1
title: Unwatched
roles: [nurse]
initial: intake
states:
  intake:
    alerts:
      - name: low-spo2
        when: "observation.code == '59408-5' && observation.value < 90.0"
        event: low
    on: {low: review}
  review:
    on: {done: closed}
  closed: {final: true}
"""


def test_validate_pathway_prints_warnings_and_exits_0_when_there_are_only_warnings(tmp_path):
    path = write(tmp_path, "unwatched.yaml", UNWATCHED)

    completed = run_validate_pathway(path)

    assert completed.returncode == 0
    assert completed.stdout.splitlines() == [
        f"{path}: warning: states.review: measurement 59408-5 monitored by this pathway but no "
        "alert watches it in this state: add a pathway alert under 'monitoring' or an alert "
        "here, or suspend the pathway alert with a reason (line 13)"
    ]


def test_the_shipped_pathways_validate_without_problems_or_warnings():
    library = sorted(str(p) for p in (ROOT / "workflows" / "library").glob("*.yaml"))

    assert call("validate_pathway", *library) == (0, "", "")


def test_validate_pathway_exits_1_with_one_line_per_problem_for_a_broken_file(tmp_path):
    path = write(tmp_path, "broken.yaml", BROKEN)

    completed = run_validate_pathway(path)

    assert completed.returncode == 1
    assert completed.stdout.splitlines() == broken_lines(path)
    assert completed.stderr == ""


def test_validate_pathway_reports_only_the_broken_files_among_several(tmp_path):
    good_yaml = write(tmp_path, "good.yaml", VALID)
    broken = write(tmp_path, "broken.yaml", BROKEN)
    good_json = write(tmp_path, "good.json", as_json(OTHER))
    missing = tmp_path / "missing.yaml"

    completed = run_validate_pathway(good_yaml, broken, good_json, missing)

    assert completed.returncode == 1
    assert completed.stdout.splitlines() == [
        *broken_lines(broken),
        f"{missing}: (file): no such file",
    ]
    assert completed.stderr == ""


def test_validate_pathway_exits_0_for_several_valid_files(tmp_path):
    first = write(tmp_path, "first.yaml", VALID)
    second = write(tmp_path, "second.yaml", OTHER)

    completed = run_validate_pathway(first, second)

    assert (completed.returncode, completed.stdout, completed.stderr) == (0, "", "")


# --- validate_pathway, in-process ---------------------------------------------------------------


def test_validate_pathway_prints_nothing_for_a_valid_file(tmp_path):
    path = write(tmp_path, "demo.yaml", VALID)

    result = call("validate_pathway", str(path))

    assert result == (0, "", "")


def test_validate_pathway_prints_file_location_and_message_for_each_problem(tmp_path):
    path = write(tmp_path, "broken.yaml", BROKEN)

    code, out, err = call("validate_pathway", str(path))

    assert (code, err) == (1, "")
    assert out.splitlines() == broken_lines(path)


def test_validate_pathway_reports_malformed_yaml_at_its_line_and_column(tmp_path):
    path = write(tmp_path, "malformed.yaml", VALID.replace("roles: [nurse, gp]", "roles: [nurse"))

    result = call("validate_pathway", str(path))

    assert result == (
        1,
        f"{path}: line 5, column 8: malformed YAML: a list in [...] is not closed by ']'\n",
        "",
    )


def test_validate_pathway_reports_a_missing_file(tmp_path):
    path = tmp_path / "nowhere.yaml"

    result = call("validate_pathway", str(path))

    assert result == (1, f"{path}: (file): no such file\n", "")


def test_validate_pathway_reports_a_directory(tmp_path):
    result = call("validate_pathway", str(tmp_path))

    assert result == (1, f"{tmp_path}: (file): is a directory, not a pathway file\n", "")


def test_validate_pathway_reports_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(VALID.replace("Demo pathway", "Démo").encode("latin-1"))
    offset = VALID.index("Demo pathway") + 1

    result = call("validate_pathway", str(path))

    assert result == (
        1,
        f"{path}: (file): not UTF-8 text: invalid continuation byte at byte {offset}\n",
        "",
    )


# --- load_pathway ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_load_pathway_publishes_a_valid_file(tmp_path):
    path = write(tmp_path, "demo.yaml", VALID)

    result = call("load_pathway", str(path))

    assert result == (0, f"{path}: demo-pathway@1 published\n", "")
    assert definitions() == [("demo-pathway", 1, "active", "Demo pathway")]
    definition = PathwayDefinition.objects.get()
    assert definition.source == VALID
    assert definition.source_format == "yaml"
    assert definition.created_by == "cli:load_pathway"
    assert definition.published_at is not None


@pytest.mark.django_db
def test_load_pathway_with_draft_stores_without_activating(tmp_path):
    path = write(tmp_path, "demo.yaml", VALID)

    result = call("load_pathway", "--draft", str(path))

    assert result == (0, f"{path}: demo-pathway@1 stored as draft\n", "")
    assert definitions() == [("demo-pathway", 1, "draft", "Demo pathway")]
    assert PathwayDefinition.objects.get().published_at is None


@pytest.mark.django_db
def test_loading_the_same_file_again_is_a_no_op(tmp_path):
    path = write(tmp_path, "demo.yaml", VALID)
    call("load_pathway", str(path))
    before = PathwayDefinition.objects.get()

    result = call("load_pathway", str(path))

    assert result == (0, f"{path}: demo-pathway@1 already published\n", "")
    after = PathwayDefinition.objects.get()
    assert (after.pk, after.status, after.published_at, after.checksum) == (
        before.pk,
        "active",
        before.published_at,
        before.checksum,
    )


@pytest.mark.django_db
def test_loading_the_same_document_reformatted_as_json_is_a_no_op(tmp_path):
    call("load_pathway", str(write(tmp_path, "demo.yaml", VALID)))
    path = write(tmp_path, "demo.json", as_json(VALID, indent=4))

    result = call("load_pathway", str(path))

    assert result == (0, f"{path}: demo-pathway@1 already published\n", "")
    assert PathwayDefinition.objects.get().source == VALID


@pytest.mark.django_db
def test_loading_changed_content_under_a_published_version_is_refused_and_writes_nothing(
    tmp_path,
):
    call("load_pathway", str(write(tmp_path, "demo.yaml", VALID)))
    before = PathwayDefinition.objects.get()
    other = write(tmp_path, "other.yaml", OTHER)
    changed = write(tmp_path, "changed.yaml", VALID.replace("Demo pathway", "Renamed pathway"))

    code, out, err = call("load_pathway", str(other), str(changed))

    # Only the last line is asserted: the command has already printed "other-pathway@1
    # published" for the first file by the time the conflict rolls everything back.
    assert (code, err) == (1, "nothing loaded\n")
    assert out.splitlines()[-1] == (
        f"{changed}: (document): demo-pathway@1 is already active with different content; "
        "published versions are immutable, use a new version"
    )
    assert definitions() == [("demo-pathway", 1, "active", "Demo pathway")]
    after = PathwayDefinition.objects.get()
    assert (after.source, after.checksum) == (before.source, before.checksum)


@pytest.mark.django_db
def test_load_pathway_with_one_broken_file_loads_nothing(tmp_path):
    first = write(tmp_path, "first.yaml", VALID)
    broken = write(tmp_path, "broken.yaml", BROKEN)
    last = write(tmp_path, "last.yaml", OTHER)

    result = call("load_pathway", str(first), str(broken), str(last))

    assert result == (1, "\n".join(broken_lines(broken)) + "\n", "nothing loaded\n")
    assert definitions() == []


@pytest.mark.django_db
def test_load_pathway_with_a_missing_file_loads_nothing(tmp_path):
    good = write(tmp_path, "good.yaml", VALID)
    missing = tmp_path / "missing.yaml"

    result = call("load_pathway", str(good), str(missing))

    assert result == (1, f"{missing}: (file): no such file\n", "nothing loaded\n")
    assert definitions() == []
