"""The write half of a transition in one statement, on PostgreSQL.

A transition writes up to four things: cancel the left state's timers, update the instance,
append the history entry, schedule the new state's timers. Through the ORM that is four round
trips; here it is one statement of data-modifying CTEs, which PostgreSQL runs on one snapshot
(the cancelling UPDATE does not see the timers inserted beside it, which is what we want).

`instances._move` uses this on PostgreSQL and the ORM elsewhere; the whole engine test suite
runs on both, so the two paths are held to the same behaviour.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from workflows.models import HistoryEntry, PathwayInstance, Timer
from workflows.postgres import prepared_cursor

# Tests switch this off to run the ORM path on PostgreSQL and compare the two.
ENABLED = True
_SQL: dict[bool, str] = {}


def _statement(schedules: bool) -> str:
    """The statement, with or without the INSERT of new timers: most states schedule none, and
    leaving that part out spares PostgreSQL a function scan and Python encoding the timers."""
    sql = _SQL.get(schedules)
    if sql is None:
        timer = Timer._meta.db_table
        instance = PathwayInstance._meta.db_table
        history = HistoryEntry._meta.db_table
        scheduled = (
            f"""
            , scheduled AS (
                INSERT INTO {timer} (instance_id, state, event, due_at, status, created_at, note)
                SELECT %(id)s, %(state)s, t.event, t.due_at, 'scheduled', %(now)s, ''
                FROM jsonb_to_recordset(%(timers)s::jsonb) AS t(event text, due_at timestamptz)
                RETURNING 1
            )"""
            if schedules
            else ""
        )
        # Unconditionally cancelled: a timer kept by a version migration may belong to a
        # state that declares none itself. Pathway timers (state '') outlive the state.
        sql = _SQL[schedules] = f"""
        WITH cancelled AS (
            UPDATE {timer} SET status = 'cancelled', resolved_at = %(now)s,
                note = 'left the state'
            WHERE instance_id = %(id)s AND status = 'scheduled' AND state <> ''
            RETURNING 1
        ), moved AS (
            UPDATE {instance}
            SET state = %(state)s, revision = %(revision)s, updated_at = %(now)s,
                status = %(status)s, ended_at = %(ended_at)s
            WHERE id = %(id)s
            RETURNING id
        ){scheduled}
        INSERT INTO {history} (instance_id, revision, kind, event, from_state, to_state, actor,
                               actor_roles, payload, occurred_at)
        SELECT id, %(revision)s, %(kind)s, %(event)s, %(from_state)s, %(state)s, %(actor)s,
               %(actor_roles)s::jsonb, %(payload)s::jsonb, %(now)s
        FROM moved
        RETURNING id
        """
    return sql


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
    with prepared_cursor() as cursor:
        cursor.execute(_statement(bool(timers)), params, prepare=True)
        row = cursor.fetchone()
    if row is None:  # the instance row vanished under our lock: impossible short of corruption
        raise RuntimeError(f"pathway instance {instance.pk} could not be updated")
    return int(row[0])
