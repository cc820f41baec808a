"""The write half of a transition in one statement, on PostgreSQL.

A transition writes up to four things: cancel the left state's timers, update the instance,
append the history entry, schedule the new state's timers. Through the ORM that is four round
trips; here it is one statement of data-modifying CTEs, which PostgreSQL runs on one snapshot
(the cancelling UPDATE does not see the timers inserted beside it, which is what we want).

`instances.instance_move` uses this on PostgreSQL and the ORM elsewhere; the whole engine test suite
runs on both, so the two paths are held to the same behaviour.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.db.models import Model

from core.sql import column, kept_cursor, statement, table
from workflows.models import HistoryEntry, PathwayInstance, Timer

# Tests switch this off to run the ORM path on PostgreSQL and compare the two.
ENABLED = True


@statement
def _statement(schedules: bool) -> str:
    """The statement, with or without the INSERT of new timers: most states schedule none, and
    leaving that part out spares PostgreSQL a function scan and Python encoding the timers.
    Only quoted names from the models' metadata go into the text."""

    def names(model: type[Model], *fields: str) -> list[str]:
        return [column(model, name) for name in fields]

    timer, instance, history = table(Timer), table(PathwayInstance), table(HistoryEntry)
    t_instance, t_state, t_event, t_due, t_status, t_created, t_resolved, t_note = names(
        Timer, "instance", "state", "event", "due_at", "status", "created_at", "resolved_at", "note"
    )
    i_id, i_state, i_revision, i_updated, i_status, i_ended = names(
        PathwayInstance, "pk", "state", "revision", "updated_at", "status", "ended_at"
    )
    h_columns = ", ".join(
        names(
            HistoryEntry,
            *("instance", "revision", "kind", "event", "from_state", "to_state", "actor"),
            *("actor_roles", "payload", "occurred_at"),
        )
    )
    scheduled = (
        f"""
        , scheduled AS (
            INSERT INTO {timer} ({t_instance}, {t_state}, {t_event}, {t_due}, {t_status},
                                 {t_created}, {t_note})
            SELECT %(id)s, %(state)s, t.event, t.due_at, 'scheduled', %(now)s, ''
            FROM jsonb_to_recordset(%(timers)s::jsonb) AS t(event text, due_at timestamptz)
            RETURNING 1
        )"""
        if schedules
        else ""
    )
    # Unconditionally cancelled: a timer kept by a version migration may belong to a state
    # that declares none itself. Pathway timers (state '') outlive the state.
    return f"""
    WITH cancelled AS (
        UPDATE {timer} SET {t_status} = 'cancelled', {t_resolved} = %(now)s,
            {t_note} = 'left the state'
        WHERE {t_instance} = %(id)s AND {t_status} = 'scheduled' AND {t_state} <> ''
        RETURNING 1
    ), moved AS (
        UPDATE {instance}
        SET {i_state} = %(state)s, {i_revision} = %(revision)s, {i_updated} = %(now)s,
            {i_status} = %(status)s, {i_ended} = %(ended_at)s
        WHERE {i_id} = %(id)s
        RETURNING {i_id}
    ){scheduled}
    INSERT INTO {history} ({h_columns})
    SELECT {i_id}, %(revision)s, %(kind)s, %(event)s, %(from_state)s, %(state)s, %(actor)s,
           %(actor_roles)s::jsonb, %(payload)s::jsonb, %(now)s
    FROM moved
    RETURNING {column(HistoryEntry, "pk")}
    """


def write_move(
    *,
    instance: PathwayInstance,
    timers: list[tuple[str, dt.datetime]],
    kind: str,
    event: str,
    from_state: str,
    actor_id: str,
    actor_roles_json: str,
    payload_json: str,
    now: dt.datetime,
) -> int:
    """Write the move already applied to `instance` (state, revision, status, ended_at):
    cancel its scheduled timers, schedule `timers`, append the history entry (`actor_roles_json`
    and `payload_json` are already JSON text), and return the new entry's id. The caller holds
    the instance's row lock."""
    params: dict[str, Any] = {
        "id": instance.pk,
        "now": now,
        "state": instance.state,
        "revision": instance.revision,
        "status": instance.status,
        "ended_at": instance.ended_at,
        "kind": kind,
        "event": event,
        "from_state": from_state,
        "actor": actor_id,
        "actor_roles": actor_roles_json,
        "payload": payload_json,
    }
    if timers:
        # One JSON text rather than two arrays: psycopg dumps arrays element by element in
        # Python, which cost more than the rest of the statement's parameters together.
        params["timers"] = json.dumps(
            [{"event": event_name, "due_at": due.isoformat()} for event_name, due in timers]
        )
    with kept_cursor(prepared=True) as cursor:
        cursor.execute(_statement(bool(timers)), params, prepare=True)
        row = cursor.fetchone()
    if row is None:  # the instance row vanished under our lock: impossible short of corruption
        raise RuntimeError(f"pathway instance {instance.pk} could not be updated")
    return int(row[0])
