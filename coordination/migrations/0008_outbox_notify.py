"""Wake the outbox relays on PostgreSQL: a statement-level trigger on the outbox table sends
NOTIFY parcours_outbox. PostgreSQL delivers a notification when (and only if) the
transaction commits, and folds identical ones of a transaction into one, so a relay LISTENing
on the channel wakes once per committed change instead of waiting for its next poll.

SQLite (the embedded default) has no notifications: there the relay polls.
"""

from __future__ import annotations

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

FORWARD = """
CREATE OR REPLACE FUNCTION coordination_outbox_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('parcours_outbox', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER coordination_outbox_notify
    AFTER INSERT ON coordination_outboxevent
    FOR EACH STATEMENT EXECUTE FUNCTION coordination_outbox_notify();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS coordination_outbox_notify ON coordination_outboxevent;
DROP FUNCTION IF EXISTS coordination_outbox_notify();
"""


def forward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("coordination", "0007_webhooks")]
    operations = [migrations.RunPython(forward, backward)]
