"""Exact counts at any scale: the rollup of events by minute, hour and day (audit.ingest.models.EventRollup).

The ingest service adds each stored batch in its own transaction with a set-based
`INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE` per grain over the rows it has just
written (found as the organization's events past the old chain head), never a
read-modify-write, so a redelivered batch, whose events are duplicates and never
stored again, adds nothing. `rollups_rebuild` recomputes a span of days from the
events (the migration for existing data; retention after it deletes events).
"""

from datetime import UTC, datetime, timedelta

from django.db import connection, transaction

from audit.events.models import AuditEvent
from audit.ingest.models import EventRollup

_TABLE = EventRollup._meta.db_table
_EVENTS = AuditEvent._meta.db_table
MINUTE, HOUR, DAY = 60, 3600, 86400
GRAINS = (DAY, HOUR, MINUTE)  # coarsest first
_COLUMNS = (
    "org_id, grain, start, dimensions, decision, slug, actor, tool, method, outcome, rule_id, "
    "count, duration_count, duration_sum, duration_max"
)
# Per vendor: a period's start (UTC) at each grain, the rule's id, the dimensions' digest.
_VENDOR = {
    "postgresql": {
        "start": {grain: f"date_trunc('{unit}', timestamp, 'UTC')" for grain, unit in ((MINUTE, "minute"), (HOUR, "hour"), (DAY, "day"))},
        "rule_id": "rule->>'id'",
        "digest": "md5(json_build_array(decision, slug, actor, tool, method, outcome, rule->>'id')::text)",
        "max": "GREATEST(r.duration_max, excluded.duration_max)",
    },
    "sqlite": {
        "start": {
            MINUTE: "strftime('%%Y-%%m-%%d %%H:%%M:00', timestamp)",
            HOUR: "strftime('%%Y-%%m-%%d %%H:00:00', timestamp)",
            DAY: "strftime('%%Y-%%m-%%d 00:00:00', timestamp)",
        },
        "rule_id": "json_extract(rule, '$.id')",
        "digest": "json_array(decision, slug, actor, tool, method, outcome, json_extract(rule, '$.id'))",
        # SQLite's two-argument max() is NULL when either is; a duration may be missing.
        "max": "max(coalesce(r.duration_max, excluded.duration_max), coalesce(excluded.duration_max, r.duration_max))",
    },
}


def _upsert_sql(where: str, grain: int) -> str:
    sql = _VENDOR[connection.vendor]
    start = sql["start"][grain]
    return (
        f"INSERT INTO {_TABLE} AS r ({_COLUMNS}) "
        f"SELECT org_id, {grain}, {start}, {sql['digest']}, decision, slug, actor, tool, method, outcome, "
        f"{sql['rule_id']}, count(*), count(duration_ms), coalesce(sum(duration_ms), 0), max(duration_ms) "
        f"FROM {_EVENTS} WHERE {where} "
        f"GROUP BY org_id, {start}, decision, slug, actor, tool, method, outcome, {sql['rule_id']} "
        "ON CONFLICT (org_id, grain, start, dimensions) DO UPDATE SET "
        "count = r.count + excluded.count, "
        "duration_count = r.duration_count + excluded.duration_count, "
        "duration_sum = r.duration_sum + excluded.duration_sum, "
        f"duration_max = {sql['max']}"
    )


def rollups_add(*, org_id: int, seq_after: int) -> None:
    """Count the batch just stored, at every grain: the organization's events past
    `seq_after` (the chain head before the batch). Call inside the transaction that stored them."""
    with connection.cursor() as cursor:
        for grain in GRAINS:
            cursor.execute(_upsert_sql("org_id = %s AND seq > %s", grain), [org_id, seq_after])


def period_floor(moment: datetime, grain: int) -> datetime:
    """The start of the period of `grain` seconds that holds `moment` (UTC-aligned)."""
    epoch = int(moment.timestamp()) // grain * grain
    return datetime.fromtimestamp(epoch, UTC)


def period_ceil(moment: datetime, grain: int) -> datetime:
    floor = period_floor(moment, grain)
    return floor if floor == moment else floor + timedelta(seconds=grain)


def rollups_rebuild(*, org, since: datetime | None = None, until: datetime | None = None) -> None:
    """Recount the organization's rollup from its events, for the whole UTC days that hold
    `since`..`until` (both inclusive; open ends mean everything).

    Holds the organization's chain lock (as ingest does), so no batch is counted twice
    or missed while the span is replaced.
    """
    from audit.ingest.store import lock_org_chain  # the store imports this module

    org_id = getattr(org, "pk", org)
    adapt = connection.ops.adapt_datetimefield_value
    rows = EventRollup.objects.filter(org_id=org_id)
    where, params = ["org_id = %s"], [org_id]
    if since is not None:
        start = period_floor(since, DAY)
        rows = rows.filter(start__gte=start)
        where.append("timestamp >= %s")
        params.append(adapt(start))
    if until is not None:
        end = period_floor(until, DAY) + timedelta(days=1)
        rows = rows.filter(start__lt=end)
        where.append("timestamp < %s")
        params.append(adapt(end))
    with transaction.atomic():
        lock_org_chain(org_id)
        rows.delete()
        with connection.cursor() as cursor:
            for grain in GRAINS:
                cursor.execute(_upsert_sql(" AND ".join(where), grain), params)
