import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from audit.events.fields import SEARCHED_FIELDS
from audit.events.search_text import event_search_text

INDEX = "audit_event_search_trgm"
BATCH = 2000


def fill_search_text(apps, schema_editor):
    """Events stored before the column existed get their text once, in batches."""
    AuditEvent = apps.get_model("audit", "AuditEvent")
    columns = [field.storage for field in SEARCHED_FIELDS]
    last = 0
    while True:
        rows = list(AuditEvent.objects.filter(pk__gt=last).order_by("pk").values("pk", *columns)[:BATCH])
        if not rows:
            break
        AuditEvent.objects.bulk_update(
            [AuditEvent(pk=row["pk"], search_text=event_search_text(row)) for row in rows], ["search_text"]
        )
        last = rows[-1]["pk"]


# Statistics on the lower-cased columns that field qualifiers compare (no index, so no
# ingest cost; ANALYZE fills them): without them PostgreSQL guesses `lower(tool) LIKE
# 'delete\_%'` at 0.5 % of rows and may sort the whole table instead of walking the time index.
LOWERED = {"actor": "lower(actor)", "tool": "lower(tool)", "method": "lower(method)", "trace": "lower(trace_id)",
           "rule": "lower(rule ->> 'id')", "policy": "lower(rule ->> 'policy')"}


def create_index(apps, schema_editor):
    # pg_trgm's GIN index serves `search_text LIKE '%…%'` (words, phrases, `*`) on PostgreSQL;
    # pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it.
    # SQLite scans the column instead (the embedded default's size).
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON audit_auditevent USING gin (search_text gin_trgm_ops)"
        )
        for name, expression in LOWERED.items():
            schema_editor.execute(
                f"CREATE STATISTICS IF NOT EXISTS audit_event_lower_{name} ON ({expression}) FROM audit_auditevent"
            )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")
        for name in LOWERED:
            schema_editor.execute(f"DROP STATISTICS IF EXISTS audit_event_lower_{name}")


class Migration(migrations.Migration):
    dependencies = [("audit", "0009_policy_access_action"), migrations.swappable_dependency(settings.AUTH_USER_MODEL)]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="search_text",
            field=models.TextField(blank=True, db_default=""),
        ),
        migrations.RunPython(fill_search_text, migrations.RunPython.noop),
        migrations.RunPython(create_index, drop_index),
        migrations.CreateModel(
            name='SavedView',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100)),
                ('query', models.TextField(blank=True)),
                ('shared', models.BooleanField(default=False)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('org', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='saved_views', to='audit.organization')),
                ('owner_key', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, to='audit.apikey')),
                ('owner_user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'indexes': [models.Index(fields=['org', 'name'], name='audit_savedview_org_name')],
                'constraints': [models.CheckConstraint(condition=models.Q(('owner_user__isnull', True), ('owner_key__isnull', True), _connector='XOR'), name='audit_savedview_one_owner')],
            },
        ),
    ]
