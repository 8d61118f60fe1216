"""PostgreSQL: `audit_auditevent` becomes partitioned by day of `received_at`, with its rows.

The table is rebuilt under an exclusive lock: renamed aside, a partitioned table made like
it, a partition per day its rows span (and LENS_PARTITIONS_AHEAD_DAYS ahead, and a default
one), the rows copied, then every constraint, index and statistics object it had re-made
from the catalog — the primary key as (id, received_at), each unique key with
`received_at` added — and the old table dropped. The idempotency of (org, event_id) moves
to `audit_eventkey` (audit/retention/partitions.py). The copy is one INSERT … SELECT: plan
minutes per ten million rows, and the disk for a second copy while it runs.

SQLite keeps its plain table; this migration does nothing there.
"""

from datetime import timedelta

from django.db import migrations
from django.utils import timezone

from audit.retention import partitions as p

OLD = "audit_auditevent_unpartitioned"
AHEAD_DAYS = 7


def _catalog(cursor, table):
    cursor.execute(
        "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass", [table]
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = %s AND i.indexname NOT IN "
        "(SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
        [table, table],
    )
    indexes = cursor.fetchall()
    cursor.execute(
        "SELECT stxname, pg_get_statisticsobjdef(oid) FROM pg_statistic_ext WHERE stxrelid = %s::regclass", [table]
    )
    statistics = cursor.fetchall()
    return constraints, indexes, statistics


def _set_aside(cursor, table, constraints, indexes, statistics):
    """Rename the table aside and free its objects' names for the new one."""
    cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    cursor.execute(f"ALTER TABLE {table} RENAME TO {OLD}")
    for name, _ in statistics:
        cursor.execute(f"DROP STATISTICS {name}")
    for name, _ in indexes:
        cursor.execute(f"DROP INDEX {name}")
    for name, kind, _ in constraints:
        if kind != "n":
            cursor.execute(f'ALTER TABLE {OLD} DROP CONSTRAINT "{name}"')


def _remake(cursor, table, constraints, indexes, statistics, *, partitioned):
    for name, kind, definition in constraints:
        if kind in ("p", "u") and partitioned:
            columns = definition[definition.index("(") + 1 : definition.rindex(")")]
            if "received_at" not in columns:
                definition = f"{definition[: definition.index('(')]}({columns}, received_at)"
        elif kind in ("p", "u"):
            columns = [c.strip() for c in definition[definition.index("(") + 1 : definition.rindex(")")].split(",")]
            columns = [c for c in columns if c != "received_at"]
            definition = f"{definition[: definition.index('(')]}({', '.join(columns)})"
        if kind != "n":
            cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    for _, definition in indexes:
        cursor.execute(definition.replace(f" ON ONLY public.{OLD} ", f" ON public.{table} ").replace(f" ON public.{OLD} ", f" ON public.{table} "))
    for name, definition in statistics:
        cursor.execute(definition.replace(f" FROM {OLD}", f" FROM {table}").replace(f" FROM public.{OLD}", f" FROM public.{table}"))


def _copy_rows(cursor, table):
    cursor.execute(f"INSERT INTO {table} SELECT * FROM {OLD}")
    cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce((SELECT max(id) FROM {table}), 0) + 1, false)")
    cursor.execute(f"DROP TABLE {OLD}")
    cursor.execute(f"ANALYZE {table}")


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        if p.is_partitioned(cursor):
            return
        catalog = _catalog(cursor, p.TABLE)
        _set_aside(cursor, p.TABLE, *catalog)
        cursor.execute(
            f"CREATE TABLE {p.TABLE} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING STORAGE) "
            "PARTITION BY RANGE (received_at)"
        )
        cursor.execute(f"CREATE TABLE {p.DEFAULT_PARTITION} PARTITION OF {p.TABLE} DEFAULT")
        cursor.execute(f"SELECT min(received_at), max(received_at) FROM {OLD}")
        oldest, newest = cursor.fetchone()
        today = timezone.now().date()
        first = oldest.date() if oldest else today
        last = max(newest.date() if newest else today, today) + timedelta(days=AHEAD_DAYS)
        p.partitions_ensure(cursor, first=first, last=last)
        _remake(cursor, p.TABLE, *catalog, partitioned=True)
        cursor.execute(p.KEY_TABLE_SQL)
        _copy_rows(cursor, p.TABLE)


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        if not p.is_partitioned(cursor):
            return
        cursor.execute(p.KEY_TABLE_DROP_SQL)
        catalog = _catalog(cursor, p.TABLE)
        _set_aside(cursor, p.TABLE, *catalog)
        cursor.execute(f"CREATE TABLE {p.TABLE} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING STORAGE)")
        _remake(cursor, p.TABLE, *catalog, partitioned=False)
        _copy_rows(cursor, p.TABLE)


class Migration(migrations.Migration):
    atomic = True
    dependencies = [("audit", "0013_a_retention")]
    operations = [migrations.RunPython(partition, unpartition)]
