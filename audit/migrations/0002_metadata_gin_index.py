from django.db import migrations

INDEX = "audit_event_metadata_gin"


def create_index(apps, schema_editor):
    # jsonb_path_ops serves `metadata @> {...}` (the metadata filter) on PostgreSQL.
    # SQLite has no GIN; its metadata filter uses JSON_EXTRACT on the indexed rows.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON audit_auditevent USING gin (metadata jsonb_path_ops)"
        )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [migrations.RunPython(create_index, drop_index)]
