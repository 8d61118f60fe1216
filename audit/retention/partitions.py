"""The time-partitioned events table on PostgreSQL (SPEC §11; docs/retention.md).

`audit_auditevent` is partitioned by RANGE (`received_at`), one partition per UTC day
(`audit_auditevent_p20261207` holds [2026-12-07, 2026-12-08)), plus a DEFAULT partition
that catches a row for which no day partition exists yet (beat was down), so ingest never
fails for want of one. Days are made ahead of time (LENS_PARTITIONS_AHEAD_DAYS) by the
beat task and by the migration. Why days: retention removes a whole day at a time by
dropping its table, so no expired row is ever DELETEd one by one (unless organizations
sharing a day keep their events for different lengths), and the day is also the
granularity of `--keep` (events go once their whole day of arrival is past it).

The primary key is (id, received_at) and the unique keys carry `received_at`, as
PostgreSQL requires of a partitioned table; `(org, event_id)` stays unique across the
whole table through `audit_eventkey`, a narrow unpartitioned table a statement trigger
fills from every INSERT or COPY (its primary key refuses a second row for an id) and
empties on DELETE and TRUNCATE. Ingest's duplicate lookup reads it (one probe per id
instead of one per partition). SQLite (the embedded default) keeps one plain table.
"""

from datetime import UTC, date, datetime, timedelta

TABLE = "audit_auditevent"
KEY_TABLE = "audit_eventkey"
DEFAULT_PARTITION = f"{TABLE}_default"
_PREFIX = f"{TABLE}_p"

# The narrow idempotency table and the triggers that keep it (partitioned tables allow
# statement triggers with transition tables on the root: one set-based statement per COPY).
KEY_TABLE_SQL = f"""
CREATE TABLE {KEY_TABLE} (
    org_id bigint NOT NULL,
    event_id varchar(64) NOT NULL,
    content_hash varchar(64) NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, event_id)
);
CREATE INDEX {KEY_TABLE}_received ON {KEY_TABLE} (received_at);
CREATE FUNCTION {KEY_TABLE}_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {KEY_TABLE} (org_id, event_id, content_hash, received_at)
    SELECT org_id, event_id, content_hash, received_at FROM inserted;
    RETURN NULL;
END $$;
CREATE FUNCTION {KEY_TABLE}_drop() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {KEY_TABLE} k USING removed r WHERE k.org_id = r.org_id AND k.event_id = r.event_id;
    RETURN NULL;
END $$;
CREATE FUNCTION {KEY_TABLE}_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE {KEY_TABLE};
    RETURN NULL;
END $$;
CREATE TRIGGER {KEY_TABLE}_add AFTER INSERT ON {TABLE} REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION {KEY_TABLE}_add();
CREATE TRIGGER {KEY_TABLE}_drop AFTER DELETE ON {TABLE} REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION {KEY_TABLE}_drop();
CREATE TRIGGER {KEY_TABLE}_truncate AFTER TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION {KEY_TABLE}_truncate();
"""
KEY_TABLE_DROP_SQL = f"""
DROP TRIGGER IF EXISTS {KEY_TABLE}_add ON {TABLE};
DROP TRIGGER IF EXISTS {KEY_TABLE}_drop ON {TABLE};
DROP TRIGGER IF EXISTS {KEY_TABLE}_truncate ON {TABLE};
DROP FUNCTION IF EXISTS {KEY_TABLE}_add();
DROP FUNCTION IF EXISTS {KEY_TABLE}_drop();
DROP FUNCTION IF EXISTS {KEY_TABLE}_truncate();
DROP TABLE IF EXISTS {KEY_TABLE};
"""


def partition_name(day: date) -> str:
    return f"{_PREFIX}{day:%Y%m%d}"


def day_of(name: str) -> date | None:
    """The day a partition holds, from its name; None for the default partition."""
    if not name.startswith(_PREFIX):
        return None
    return datetime.strptime(name[len(_PREFIX):], "%Y%m%d").date()


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def is_partitioned(cursor) -> bool:
    cursor.execute("SELECT 1 FROM pg_partitioned_table WHERE partrelid = %s::regclass", [TABLE])
    return cursor.fetchone() is not None


def partitions_list(cursor) -> list[str]:
    """The names of the table's partitions (days oldest first, the default last)."""
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
        [TABLE],
    )
    names = [row[0] for row in cursor.fetchall()]
    return sorted(name for name in names if day_of(name)) + [name for name in names if not day_of(name)]


def partition_create(cursor, day: date) -> bool:
    """Make the partition of `day` if missing (True when made). Rows of that day that the
    default partition caught meanwhile are moved into it, in the same transaction."""
    name = partition_name(day)
    cursor.execute("SELECT to_regclass(%s)", [name])
    if cursor.fetchone()[0] is not None:
        return False
    lower, upper = day_start(day), day_start(day + timedelta(days=1))
    cursor.execute(f"SELECT 1 FROM {DEFAULT_PARTITION} WHERE received_at >= %s AND received_at < %s LIMIT 1", [lower, upper])
    if cursor.fetchone() is None:
        cursor.execute(f"CREATE TABLE {name} PARTITION OF {TABLE} FOR VALUES FROM (%s) TO (%s)", [lower, upper])
        return True
    # PostgreSQL refuses a partition whose rows sit in the default one: move them first.
    # The parent's statement triggers do not fire for statements on the partitions
    # themselves, so the rows' idempotency keys stay as they are.
    cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {DEFAULT_PARTITION}")
    cursor.execute(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS)")
    cursor.execute(
        f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE received_at >= %s AND received_at < %s RETURNING *) "
        f"INSERT INTO {name} SELECT * FROM moved",
        [lower, upper],
    )
    cursor.execute(f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)", [lower, upper])
    cursor.execute(f"ALTER TABLE {TABLE} ATTACH PARTITION {DEFAULT_PARTITION} DEFAULT")
    return True


def partitions_ensure(cursor, *, first: date, last: date) -> list[str]:
    """Make every day's partition from `first` to `last` (inclusive); the names made."""
    made, day = [], first
    while day <= last:
        if partition_create(cursor, day):
            made.append(partition_name(day))
        day += timedelta(days=1)
    return made


def partition_drop(cursor, name: str) -> None:
    """Detach and drop a day's partition, and the idempotency keys of its rows (a DROP
    fires no DELETE trigger)."""
    day = day_of(name)
    # Deferred foreign-key checks of rows written earlier in this transaction would block the
    # DROP ("pending trigger events"): run them now.
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {name}")
    cursor.execute(f"DROP TABLE {name}")
    cursor.execute(
        f"DELETE FROM {KEY_TABLE} WHERE received_at >= %s AND received_at < %s",
        [day_start(day), day_start(day + timedelta(days=1))],
    )


def partitions_maintain(*, ahead_days: int) -> list[str]:
    """Make the day partitions from yesterday to `ahead_days` ahead (PostgreSQL; a no-op on
    SQLite or an unpartitioned table). The periodic task calls it; the names made."""
    from django.db import connection, transaction  # noqa: PLC0415 (the migration imports this module too)
    from django.utils import timezone  # noqa: PLC0415

    if connection.vendor != "postgresql":
        return []
    today = timezone.now().date()
    with transaction.atomic(), connection.cursor() as cursor:
        if not is_partitioned(cursor):
            return []
        return partitions_ensure(cursor, first=today - timedelta(days=1), last=today + timedelta(days=ahead_days))
