"""Exact counts at any scale: the rollup of events by minute, hour and day
(audit.ingest.models.EventRollup), and its one-dimension marginals (EventMarginal).

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
from audit.ingest.models import EventMarginal, EventRollup

_TABLE = EventRollup._meta.db_table
_MARGINALS = EventMarginal._meta.db_table
_EVENTS = AuditEvent._meta.db_table
MINUTE, HOUR, DAY = 60, 3600, 86400
GRAINS = (DAY, HOUR, MINUTE)  # coarsest first
# The dimensions a marginal is kept for ("" is all events); every row also keeps the decision.
MARGINAL_DIMENSIONS = ("", "slug", "actor", "tool", "method", "outcome", "rule_id")


def marginal_dimensions(grain: int) -> tuple:
    """The marginals kept at `grain`. By the minute, only all events': a busy minute holds
    about one row per event and value, so the others would outgrow the events (the
    rollup's minute rows answer the minutes at a window's edges instead)."""
    return MARGINAL_DIMENSIONS if grain != MINUTE else ("",)


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
        "marginal_digest": "md5(json_build_array(dimension, value, decision)::text)",
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
        "marginal_digest": "json_array(dimension, value, decision)",
        # SQLite's two-argument max() is NULL when either is; a duration may be missing.
        "max": "max(coalesce(r.duration_max, excluded.duration_max), coalesce(excluded.duration_max, r.duration_max))",
    },
}


def _add_on_conflict(key: str) -> str:
    """An existing period's row (one unique index: org, grain, start, `key`) adds the new counts."""
    return (
        f"ON CONFLICT (org_id, grain, start, {key}) DO UPDATE SET "
        "count = r.count + excluded.count, "
        "duration_count = r.duration_count + excluded.duration_count, "
        "duration_sum = r.duration_sum + excluded.duration_sum, "
        f"duration_max = {_VENDOR[connection.vendor]['max']} "
    )


def _upsert_sql(where: str, grain: int) -> str:
    sql = _VENDOR[connection.vendor]
    start = sql["start"][grain]
    return (
        f"INSERT INTO {_TABLE} AS r ({_COLUMNS}) "
        f"SELECT org_id, {grain}, {start}, {sql['digest']}, decision, slug, actor, tool, method, outcome, "
        f"{sql['rule_id']}, count(*), count(duration_ms), coalesce(sum(duration_ms), 0), max(duration_ms) "
        f"FROM {_EVENTS} WHERE {where} "
        f"GROUP BY org_id, {start}, decision, slug, actor, tool, method, outcome, {sql['rule_id']} "
        + _add_on_conflict("dimensions")
    )


def _marginal_upsert_sql(where: str, grain: int) -> str:
    """The same events counted once per marginal dimension: each event joined with the list
    of dimensions, grouped by (period, dimension, its value, decision)."""
    sql = _VENDOR[connection.vendor]
    kept = marginal_dimensions(grain)
    dimensions = " UNION ALL ".join(f"SELECT '{name}' AS dimension" for name in kept)
    cases = " ".join(f"WHEN '{name}' THEN {sql['rule_id'] if name == 'rule_id' else name}" for name in kept if name)
    value = f"CASE d.dimension {cases} END" if cases else "CAST(NULL AS TEXT)"
    return (
        f"INSERT INTO {_MARGINALS} AS r (org_id, grain, start, dimension, value, decision, key, "
        "count, duration_count, duration_sum, duration_max) "
        f"SELECT org_id, {grain}, start, dimension, value, decision, {sql['marginal_digest']}, "
        "count(*), count(duration_ms), coalesce(sum(duration_ms), 0), max(duration_ms) "
        f"FROM (SELECT org_id, {sql['start'][grain]} AS start, d.dimension, {value} AS value, decision, duration_ms "
        f"FROM {_EVENTS} CROSS JOIN ({dimensions}) AS d WHERE {where}) AS m "
        "GROUP BY org_id, start, dimension, value, decision "
        + _add_on_conflict("key")
    )


def _count(cursor, where: str, params: list) -> None:
    for grain in GRAINS:
        cursor.execute(_upsert_sql(where, grain), params)
        cursor.execute(_marginal_upsert_sql(where, grain), params)


def rollups_add(*, org_id: int, seq_after: int) -> None:
    """Count the batch just stored, at every grain, in the rollup and its marginals: the
    organization's events past `seq_after` (the chain head before the batch). Call inside
    the transaction that stored them."""
    with connection.cursor() as cursor:
        _count(cursor, "org_id = %s AND seq > %s", [org_id, seq_after])


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
    span = {}
    where, params = ["org_id = %s"], [org_id]
    if since is not None:
        start = span["start__gte"] = period_floor(since, DAY)
        where.append("timestamp >= %s")
        params.append(adapt(start))
    if until is not None:
        end = span["start__lt"] = period_floor(until, DAY) + timedelta(days=1)
        where.append("timestamp < %s")
        params.append(adapt(end))
    with transaction.atomic():
        lock_org_chain(org_id)
        EventRollup.objects.filter(org_id=org_id, **span).delete()
        EventMarginal.objects.filter(org_id=org_id, **span).delete()
        with connection.cursor() as cursor:
            _count(cursor, " AND ".join(where), params)
