"""docs/integration.md, replayed: a platform's first day exactly as the guide shows it, so that
the guide cannot drift from what the server does.

The guide is read block by block, in order:
- ```sh blocks hold `python manage.py ...` commands (run here, in the test database), `curl`
  calls (sent with `requests` to a real uvicorn process) and `NAME=value` assignments;
- the ```http or ```text block after a command is what it answers: the status code, the
  headers shown and every field of the (trimmed) JSON body are asserted;
- an ```http block that starts with a request line is a webhook the platform's receiver
  must get (a local HTTP server here), sent by a real Celery worker after the web process's
  relay queued it; its signature is checked with the guide's own ```python snippet;
- `<!-- keep: NAME=field, ... -->` before an answer keeps values for later calls (`$NAME`):
  a dotted path in the JSON body, `header:Name`, or a label of a command's output.

How answers are compared: an object's fields shown must be there (others may be too); a list
shown is matched item by item against items of the real list; a text ending in `…` only
checks the beginning; a date-time only checks that it is one; an identifier (`id`, `patient`,
`task`...) is checked against the real value when the guide kept it earlier, else only its
type. The guide's example host names are replaced by the servers of the test.

To write a changed answer into the guide, run the test with `GUIDE_RECORD=<file>`: it then
writes every real answer to that file instead of comparing them.
"""

from __future__ import annotations

import http.server
import io
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from celery import Celery
from django.core.management import call_command
from django.db import connection

from tests.integration.conftest import ROOT, AsgiServer, RedisServer, free_port, wait_until

GUIDE = ROOT / "docs" / "integration.md"
EXAMPLE_SERVER = "https://parcours.example.org"
EXAMPLE_RECEIVER = "https://platform.example.org/hooks/parcours"
# Fields holding a row's id: compared with what the guide kept, else only their type.
ID_FIELDS = {
    "id", "patient", "practitioner", "task", "observation", "subscription", "recorded_by",
    "withdrawn_by", "organization", "created_by", "device", "event_id", "alert", "pathway_id",
    "care_pathway", "member_id", "task_id", "instance_id", "version_id",
}  # fmt: skip
# Headers whose value changes with every run: only their presence is checked.
VOLATILE_HEADERS = {"parcours-event-id", "parcours-delivery-id", "parcours-signature", "date"}
LABELLED = r"^([^:\n]+): (\S+)$"  # a line `label: value` of a command's output
DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")


# --- reading the guide -------------------------------------------------------------------


@dataclass
class Expected:
    """An answer shown in the guide: `HTTP/1.1 201 Created` + headers + body, or a
    command's output (`text`), or a request the receiver gets (`request_line`)."""

    line: int
    status: int | None = None
    request_line: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    text: str = ""
    keep: dict[str, str] = field(default_factory=dict)


@dataclass
class Step:
    line: int
    kind: str  # command, curl, assign, python, webhook
    text: str
    stdin: str | None = None
    heredoc_expands: bool = True
    expected: Expected | None = None


FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
KEEP = re.compile(r"<!--\s*keep:\s*(.*?)\s*-->", re.S)


def guide_steps(text: str) -> list[Step]:
    steps: list[Step] = []
    keep: dict[str, str] = {}
    position = 0
    for match in FENCE.finditer(text):
        between = text[position : match.start()]
        for found in KEEP.finditer(between):
            for item in found[1].split(","):
                name, _, path = item.strip().partition("=")
                keep[name.strip()] = path.strip()
        position = match.end()
        language, body = match[1], match[2]
        line = text.count("\n", 0, match.start()) + 1
        if language == "sh":
            steps.extend(_shell_steps(body, line))
        elif language == "python":
            steps.append(Step(line, "python", body))
        elif language in ("http", "text"):
            expected = _expected(language, body, line)
            expected.keep, keep = keep, {}
            if expected.request_line:
                steps.append(Step(line, "webhook", body, expected=expected))
                continue
            callers = [s for s in steps if s.kind in ("command", "curl")]
            assert callers, f"line {line}: an answer before any call"
            assert callers[-1].expected is None, f"line {line}: a second answer to one call"
            callers[-1].expected = expected
        assert not keep or language in ("sh", "python", ""), f"line {line}: keep on no answer"
    return steps


def _shell_steps(body: str, line: int) -> list[Step]:
    steps: list[Step] = []
    lines = body.split("\n")
    index = 0
    while index < len(lines):
        start = index
        logical = lines[index]
        while logical.endswith("\\"):
            index += 1
            logical = logical[:-1] + " " + lines[index].strip()
        index += 1
        stripped = logical.strip()
        if not stripped or stripped.startswith("#"):
            continue
        stdin, expands = None, True
        heredoc = re.search(r"<<\s*('?)(\w+)\1\s*$", stripped)
        if heredoc:
            stripped = stripped[: heredoc.start()].strip()
            expands = heredoc[1] == ""
            end = lines.index(heredoc[2], index)
            stdin = "\n".join(lines[index:end])
            index = end + 1
        if stripped.startswith("python manage.py "):
            kind = "command"
        elif stripped.startswith("curl "):
            kind = "curl"
        elif re.match(r"^[A-Z_]+=", stripped):
            kind = "assign"
        else:
            raise AssertionError(
                f"line {line + start + 1}: not a step the test can run: {stripped}"
            )
        steps.append(Step(line + start + 1, kind, stripped, stdin, expands))
    return steps


def _expected(language: str, body: str, line: int) -> Expected:
    if language == "text":
        return Expected(line, text=body)
    head, _, payload = body.partition("\n\n")
    first, *header_lines = head.split("\n")
    expected = Expected(line)
    status = re.match(r"^HTTP/1\.1 (\d{3})\b", first)
    if status:
        expected.status = int(status[1])
    else:
        assert re.match(r"^[A-Z]+ /\S* HTTP/1\.1$", first), f"line {line}: {first!r}"
        expected.request_line = first
    for header in header_lines:
        name, _, value = header.partition(":")
        expected.headers[name.strip()] = value.strip()
    if payload.strip():
        expected.body = json.loads(payload)
    return expected


# --- running it ----------------------------------------------------------------------------


def expand(text: str, variables: dict[str, str]) -> str:
    """`$NAME` and `${NAME}` replaced as a shell would, except inside single quotes."""
    out, quoted = [], False
    index = 0
    while index < len(text):
        char = text[index]
        if char == "'":
            quoted = not quoted
        elif char == "$" and not quoted:
            found = re.match(r"\$(?:\{(\w+)\}|(\w+))", text[index:])
            if found:
                name = found[1] or found[2]
                assert name in variables, f"${name} is used before the guide sets it"
                out.append(variables[name])
                index += found.end()
                continue
        out.append(char)
        index += 1
    return "".join(out)


@dataclass
class Answer:
    status: int
    headers: Mapping[str, str]  # case-insensitive
    body: Any
    text: str


def run_curl(step: Step, variables: dict[str, str], replace: dict[str, str]) -> Answer:
    words = shlex.split(expand(step.text, variables))[1:]
    method, url, headers, data, auth = None, "", {}, [], None
    form = True
    index = 0
    while index < len(words):
        word = words[index]
        value = words[index + 1] if index + 1 < len(words) else ""
        if word in ("-s", "-i", "--silent", "--show-error", "-S"):
            index += 1
            continue
        if word == "-X":
            method = value
        elif word == "-H":
            name, _, header = value.partition(":")
            headers[name.strip()] = header.strip()
        elif word in ("-d", "--data"):
            if value == "@-":
                assert step.stdin is not None, f"line {step.line}: -d @- without a here-document"
                stdin = expand(step.stdin, variables) if step.heredoc_expands else step.stdin
                value = stdin
            data.append(value)
        elif word == "--data-urlencode":
            name, _, raw = value.partition("=")
            data.append(f"{name}={urllib.parse.quote(raw, safe='')}")
        elif word == "-u":
            user, _, password = value.partition(":")
            auth = (user, password)
        elif word.startswith("-"):
            raise AssertionError(f"line {step.line}: curl option {word} is not understood here")
        else:
            url = word
            index += 1
            continue
        index += 2
    body = "&".join(data) if data else None
    if body is not None and "Content-Type" not in headers and form:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    for example, real in replace.items():
        url = url.replace(example, real)
        body = body.replace(example, real) if body is not None else None
    response = requests.request(
        method or ("POST" if body is not None else "GET"),
        url,
        headers=headers,
        data=body.encode() if body is not None else None,
        auth=auth,
        timeout=30,
        allow_redirects=False,
    )
    try:
        parsed = response.json()
    except ValueError:
        parsed = None
    return Answer(response.status_code, response.headers, parsed, response.text)


def run_command(step: Step) -> str:
    words = shlex.split(step.text)[2:]  # python manage.py
    arguments = [
        str(ROOT / word) if word.startswith("workflows/library/") else word for word in words[1:]
    ]
    out = io.StringIO()
    call_command(words[0], *arguments, stdout=out)
    return out.getvalue()


class Comparison:
    """The guide's answers against the real ones; `kept` maps the guide's example values of
    the kept identifiers to the real ones, `hosts` its example addresses to the test's."""

    def __init__(self, hosts: dict[str, str]) -> None:
        self.kept: dict[str, str] = {}
        self.hosts = hosts

    def real(self, shown: Any) -> Any:
        key = str(shown)
        if len(key) >= 3 and key in self.kept:
            real = self.kept[key]
            return int(real) if isinstance(shown, int) else real
        if isinstance(shown, str):
            for example, real in self.hosts.items():
                shown = shown.replace(example, real)
            for example, real in sorted(self.kept.items(), key=lambda kv: -len(kv[0])):
                if len(example) >= 3:
                    shown = re.sub(rf"(?<![\w-]){re.escape(example)}(?![\w-])", real, shown)
        return shown

    def check(self, shown: Any, actual: Any, where: str, key: str = "") -> None:
        if isinstance(shown, dict):
            assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
            for name, value in shown.items():
                assert name in actual, f"{where}: no field {name!r} in {sorted(actual)}"
                self.check(value, actual[name], f"{where}.{name}", name)
        elif isinstance(shown, list):
            assert isinstance(actual, list), f"{where}: expected a list, got {actual!r}"
            for index, item in enumerate(shown):
                errors = []
                for candidate in actual:
                    try:
                        self.check(item, candidate, f"{where}.{index}", key)
                    except AssertionError as error:
                        errors.append(str(error))
                    else:
                        break
                else:
                    raise AssertionError(f"{where}.{index}: no item matches; {errors[:3]}")
        elif isinstance(shown, str) and shown.endswith("…"):
            assert isinstance(actual, str), f"{where}: expected text, got {actual!r}"
            prefix = self.real(shown[:-1])
            assert actual.startswith(prefix), f"{where}: {actual!r} does not start {prefix!r}"
        elif isinstance(shown, str) and DATETIME.match(shown):
            assert isinstance(actual, str), f"{where}: expected a date-time, got {actual!r}"
            assert DATETIME.match(actual), f"{where}: expected a date-time, got {actual!r}"
        elif key in ID_FIELDS and isinstance(shown, int) and not isinstance(shown, bool):
            if str(shown) in self.kept:
                assert actual == self.real(shown), f"{where}: {actual!r} != {self.real(shown)!r}"
            else:
                assert isinstance(actual, int), f"{where}: expected an id, got {actual!r}"
        else:
            expected = self.real(shown)
            assert actual == expected, f"{where}: {actual!r} != {expected!r}"

    def keep(self, path: str, shown: Any, actual: Any) -> str:
        for part in path.split("."):
            index: Any = int(part) if part.isdigit() else part
            shown, actual = shown[index], actual[index]
        self.kept[str(shown)] = str(actual)
        return str(actual)


# --- the receiver and the worker -----------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """The platform's webhook endpoint: answers 204 to every POST and keeps it."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        received = self.received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                received.append(Received(self.path, dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/parcours"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.stop()


def database_url() -> str:
    params = connection.get_connection_params()
    user, password = params.get("user", ""), params.get("password") or ""
    auth = f"{user}:{password}@" if password else f"{user}@"
    host, port = params.get("host") or "127.0.0.1", params.get("port") or 5432
    return f"postgres://{auth}{host}:{port}/{connection.settings_dict['NAME']}"


@dataclass
class Worker:
    """A Celery worker on a queue of its own, with the private Redis as its broker: the
    job sending due webhook deliveries is queued to it as beat would."""

    process: subprocess.Popen[bytes]
    queue: str
    sender: Celery
    log: Path

    def send_webhooks(self) -> None:
        self.sender.send_task("coordination.webhooks_send", queue=self.queue)


@pytest.fixture
def worker(redis_server: RedisServer, tmp_path: Path) -> Iterator[Worker]:
    queue = f"guide-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_server.url,
        "CELERY_BROKER_URL": redis_server.url,
        "CELERY_QUEUE": queue,
        "PARCOURS_VAR_DIR": str(tmp_path / "var"),
        "WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",  # the receiver is on 127.0.0.1
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config.celery", "worker",
                "--pool", "solo", "--queues", queue, "--without-gossip", "--without-mingle",
                "--without-heartbeat", "--loglevel", "INFO",
            ],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    yield Worker(process, queue, Celery(broker=redis_server.url), log)
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def wait_for_webhook(
    step: Step, receiver: Receiver, worker: Worker, comparison: Comparison
) -> Received:
    expected = step.expected
    assert expected is not None
    method, path, _ = expected.request_line.split(" ")
    event_type = expected.headers.get("Parcours-Event-Type", "")
    found: list[Received] = []

    def arrived() -> bool:
        for delivery in receiver.received:
            if delivery.headers.get("Parcours-Event-Type") == event_type:
                found.append(delivery)
                return True
        worker.send_webhooks()
        time.sleep(0.5)
        return False

    try:
        wait_until(arrived, 120, f"the {event_type} webhook (guide line {step.line})")
    except AssertionError:
        raise AssertionError(worker.log.read_text(errors="replace")[-3000:]) from None
    delivery = found[0]
    assert method == "POST"
    assert delivery.path == path, f"line {step.line}: sent to {delivery.path}"
    check_headers(expected, delivery.headers, comparison, f"line {step.line}")
    if expected.body is not None:
        comparison.check(expected.body, json.loads(delivery.body), f"line {step.line}")
    return delivery


def check_headers(
    expected: Expected, actual: Mapping[str, str], comparison: Comparison, where: str
) -> None:
    lower = {name.lower(): value for name, value in actual.items()}
    for name, value in expected.headers.items():
        assert name.lower() in lower, f"{where}: no header {name} in {sorted(actual)}"
        if name.lower() in VOLATILE_HEADERS:
            continue
        if value.endswith("…"):
            assert lower[name.lower()].startswith(comparison.real(value[:-1])), f"{where}: {name}"
        else:
            assert lower[name.lower()] == comparison.real(value), (
                f"{where}: {name}: {lower[name.lower()]!r} != {comparison.real(value)!r}"
            )


# --- the tests -----------------------------------------------------------------------------


def test_every_block_of_the_guide_is_one_the_replay_understands():
    steps = guide_steps(GUIDE.read_text(encoding="utf-8"))
    defined = {"PARCOURS"}

    for step in steps:
        if step.kind == "curl":
            assert step.expected is not None, f"line {step.line}: a call without its answer"
            assert step.expected.status is not None, f"line {step.line}: no status line"
            expand(step.text, dict.fromkeys(defined, "x"))  # every $NAME set before
        if step.kind == "assign":
            defined.add(step.text.partition("=")[0])
        if step.expected is not None:
            defined.update(step.expected.keep)

    kinds = [step.kind for step in steps]
    assert kinds.count("command") >= 2
    assert kinds.count("curl") >= 15
    assert kinds.count("webhook") >= 1
    assert "python" in kinds  # the signature check, run on the webhook received


@pytest.mark.slow
def test_a_platform_s_first_day_runs_as_the_guide_shows_it(
    asgi_servers: Callable[..., AsgiServer], receiver: Receiver, worker: Worker
):
    server = asgi_servers(env={"WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true"})
    steps = guide_steps(GUIDE.read_text(encoding="utf-8"))
    variables = {"PARCOURS": server.http}
    replace = {EXAMPLE_SERVER: server.http, EXAMPLE_RECEIVER: receiver.url}
    comparison = Comparison(replace)
    namespace: dict[str, Any] = {}
    checked = 0

    for step in steps:
        where = f"docs/integration.md line {step.line}"
        if step.kind == "assign":
            name, _, value = step.text.partition("=")
            if name not in variables:
                variables[name] = expand(value.strip().strip('"'), variables)
            continue
        if step.kind == "python":
            exec(step.text, namespace)  # the guide's own snippet
            continue
        if step.kind == "webhook":
            delivery = wait_for_webhook(step, receiver, worker, comparison)
            if os.environ.get("GUIDE_RECORD"):
                with open(os.environ["GUIDE_RECORD"], "a", encoding="utf-8") as record:
                    record.write(f"--- webhook {delivery.headers}\n{delivery.body.decode()}\n")
            assert namespace["verify"](
                variables["WEBHOOK_SECRET"], delivery.headers["Parcours-Signature"], delivery.body
            ), f"{where}: the guide's verify() refuses the signature"
            assert not namespace["verify"]("not-the-secret", delivery.headers[
                "Parcours-Signature"], delivery.body)  # fmt: skip
            checked += 1
            continue
        expected = step.expected
        assert expected is not None, f"{where}: no answer shown"
        if step.kind == "command":
            output = run_command(step).replace(f"{ROOT}/", "")
            shown = dict(re.findall(LABELLED, expected.text, re.M))
            printed = dict(re.findall(LABELLED, output, re.M))
            assert list(printed) == list(shown), f"{where}: printed {output}"
            for text in expected.text.split("\n"):
                assert re.match(LABELLED, text) or text in output, f"{where}: {output}"
            for name, path in expected.keep.items():
                variables[name] = printed[path]
                comparison.kept[shown[path]] = printed[path]
            checked += 1
            continue
        answer = run_curl(step, variables, replace)
        if os.environ.get("GUIDE_RECORD"):  # to write the guide's answers from real ones
            with open(os.environ["GUIDE_RECORD"], "a", encoding="utf-8") as record:
                record.write(f"--- line {step.line}: {answer.status} {answer.headers}\n")
                record.write(json.dumps(answer.body, indent=1, ensure_ascii=False) + "\n")
        recording = bool(os.environ.get("GUIDE_RECORD"))
        assert recording or answer.status == expected.status, (
            f"{where}: {answer.status} {answer.text}"
        )
        # What the guide keeps first: the values kept stand for the real ones from here on.
        for name, path in expected.keep.items():
            if path.startswith("header:"):
                header = path.removeprefix("header:")
                variables[name] = answer.headers[header]
                comparison.kept[expected.headers[header]] = answer.headers[header]
            else:
                variables[name] = comparison.keep(path, expected.body, answer.body)
        if not recording:
            check_headers(expected, answer.headers, comparison, where)
            if expected.body is not None:
                comparison.check(expected.body, answer.body, where)
        checked += 1

    assert checked == len([s for s in steps if s.kind in ("command", "curl", "webhook")])
