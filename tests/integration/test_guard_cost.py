"""A real server (uvicorn, a browser-like session logged in through the login form): a guard
at the limits of what validation accepts, fired again and again with the largest payload
allowed, answers promptly and does not hold up the other requests of the process; a payload
past the bounds is a 400 and changes nothing. (Before the limits, one nested guard over a
350-item list blocked every request of its process for 18 s.)"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import pytest
from django.contrib.auth.models import Permission

from coordination.services import care_pathway_start
from tests.coordination.conftest import Scene
from tests.integration.conftest import AsgiServer
from tests.integration.processes import log_in
from tests.workflows.test_expression_cost import ISSUE_GUARD, WORST_DATA, WORST_EXPRESSIONS
from workflows.actors import Actor
from workflows.definition.expressions import GUARD_SCOPE, check_expression
from workflows.models import HistoryEntry, PathwayDefinition, PathwayInstance
from workflows.services import definition_publish

PASSWORD = "synthetic-guard-cost-pass"  # a throwaway account of a throwaway database
WORST_GUARD = WORST_EXPRESSIONS["concatenated lists"]
LARGEST_PAYLOAD = WORST_DATA["texts"]

GUARDED = f"""
key: guard-cost
version: 1
title: Guard cost
roles: [gp]
initial: open
states:
  open:
    on:
      check: {{to: checked, roles: [gp], guard: {json.dumps(WORST_GUARD)}}}
  checked:
    on:
      check: {{to: open, roles: [gp], guard: {json.dumps(WORST_GUARD)}}}
      stop: {{to: closed, roles: [gp]}}
  closed: {{final: true}}
"""


@pytest.mark.slow
def test_the_costliest_guard_allowed_does_not_stall_a_real_server(
    postgres_servers, scene: Scene, asgi_servers: Callable[..., AsgiServer]
):
    assert check_expression(WORST_GUARD, GUARD_SCOPE) == []
    definition_publish(source=GUARDED, actor=Actor(id="test"), fmt="yaml")
    pathway = care_pathway_start(patient=scene.patient, key="guard-cost", user=scene.gp.user)
    scene.gp.user.set_password(PASSWORD)
    scene.gp.user.save(update_fields=["password"])
    server = asgi_servers(relay=False)
    gp = log_in(server.http, scene.gp.user.username, PASSWORD)
    events = f"{server.http}/api/v1/pathways/{pathway.pk}/events/"
    reader = log_in(server.http, scene.gp.user.username, PASSWORD)
    waits: list[tuple[int, float]] = []
    done = threading.Event()

    def read_meanwhile() -> None:
        while not done.is_set():
            started = time.monotonic()
            read = reader.get(f"{server.http}/api/v1/pathways/{pathway.pk}/", timeout=30)
            waits.append((read.status_code, time.monotonic() - started))

    probe = threading.Thread(target=read_meanwhile)
    probe.start()
    answers = []
    try:
        for _ in range(10):
            started = time.monotonic()
            response = gp.post(
                events, json={"event": "check", "payload": LARGEST_PAYLOAD}, timeout=30
            )
            answers.append((response.status_code, time.monotonic() - started))
    finally:
        done.set()
        probe.join()

    assert [status for status, _ in answers] == [200] * 10
    # Each answer includes its transaction and the audit record; the guard is a small part.
    assert max(took for _, took in answers) < 2.0, answers
    assert waits
    assert {status for status, _ in waits} == {200}
    assert max(took for _, took in waits) < 2.0, waits

    assert pathway.instance_id is not None
    instance = PathwayInstance.objects.get(pk=pathway.instance_id)
    before = (instance.revision, HistoryEntry.objects.filter(instance=instance).count())
    too_deep = {"a": json.loads("[" * 11 + "]" * 11)}
    refused = gp.post(events, json={"event": "check", "payload": too_deep}, timeout=30)

    assert refused.status_code == 400
    assert refused.json()["errors"] == [
        {
            "field": "payload",
            "message": "payload.a[0][0][0][0][0][0][0][0][0]: nested more than 10 levels deep "
            "in payload",
        }
    ]
    instance.refresh_from_db()
    assert (instance.revision, HistoryEntry.objects.filter(instance=instance).count()) == before


@pytest.mark.slow
def test_a_real_server_refuses_the_nested_guard_of_the_issue_at_upload(
    postgres_servers, scene: Scene, asgi_servers: Callable[..., AsgiServer]
):
    scene.gp.user.set_password(PASSWORD)
    scene.gp.user.save(update_fields=["password"])
    scene.gp.user.user_permissions.add(Permission.objects.get(codename="add_pathwaydefinition"))
    server = asgi_servers(relay=False)
    gp = log_in(server.http, scene.gp.user.username, PASSWORD)
    nested = GUARDED.replace(json.dumps(WORST_GUARD), json.dumps(ISSUE_GUARD), 1)

    response = gp.post(
        f"{server.http}/api/v1/pathway-definitions/",
        data=nested.encode(),
        headers={"Content-Type": "application/yaml"},
        timeout=30,
    )

    assert response.status_code == 400
    assert [(e["field"], e["message"]) for e in response.json()["errors"]] == [
        (
            "states.open.on.check.guard",
            "all() inside all(): comprehensions cannot be nested (the inner one would run once "
            "per item of the outer one)",
        ),
        (
            "states.open.on.check.guard",
            "inside all(), only 'x' and constants may be used: 'payload' would be copied once "
            "per item",
        ),
    ]
    assert not PathwayDefinition.objects.filter(key="guard-cost").exists()
