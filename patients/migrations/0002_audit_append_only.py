"""Make the audit trail append-only on PostgreSQL: UPDATE and DELETE on patients_auditevent
raise.

SQLite (the embedded default) has no equivalent that survives test-database flushes, so
there the rule rests on the services being the only writers, and `verify_audit` detects a
changed record by its hash.
"""

from __future__ import annotations

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

FORWARD = """
CREATE OR REPLACE FUNCTION patients_audit_append_only() RETURNS trigger AS $$
BEGIN
    -- Message built by concatenation: a literal percent sign would be taken for a
    -- query placeholder by the driver.
    RAISE EXCEPTION USING
        MESSAGE = 'patients_auditevent is append-only (' || TG_OP || ' refused)',
        ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER patients_audit_append_only
    BEFORE UPDATE OR DELETE ON patients_auditevent
    FOR EACH ROW EXECUTE FUNCTION patients_audit_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS patients_audit_append_only ON patients_auditevent;
DROP FUNCTION IF EXISTS patients_audit_append_only();
"""


def forward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("patients", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
