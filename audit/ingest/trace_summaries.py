"""Set-based upsert of per-trace summaries: one statement per batch (or chunk), never read-modify-write."""

import json
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection

from audit.events.models import AuditEvent, Decision, Outcome
from audit.ingest.models import TraceSummary

_COLUMNS = (
    "org_id, trace_id, started_at, ended_at, calls, deny_count, alert_count, "
    "error_count, total_duration_ms, actors, slugs"
)
_ADD = (
    "calls = t.calls + excluded.calls, "
    "deny_count = t.deny_count + excluded.deny_count, "
    "alert_count = t.alert_count + excluded.alert_count, "
    "error_count = t.error_count + excluded.error_count, "
    "total_duration_ms = t.total_duration_ms + excluded.total_duration_ms, "
)
_SQLITE_UNION = (
    "(SELECT json_group_array(value) FROM (SELECT value FROM json_each(t.{col}) "
    "UNION SELECT value FROM json_each(excluded.{col}) ORDER BY 1))"
)
_SQLITE_SQL = (
    f"INSERT INTO audit_tracesummary AS t ({_COLUMNS}) VALUES {{rows}} "
    "ON CONFLICT (org_id, trace_id) DO UPDATE SET "
    "started_at = MIN(t.started_at, excluded.started_at), "
    "ended_at = MAX(t.ended_at, excluded.ended_at), "
    f"{_ADD}"
    f"actors = {_SQLITE_UNION.format(col='actors')}, "
    f"slugs = {_SQLITE_UNION.format(col='slugs')}"
)
_SQLITE_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
_CHUNK = 500


@dataclass
class _TraceRow:
    started_at: datetime
    ended_at: datetime
    calls: int = 0
    deny_count: int = 0
    alert_count: int = 0
    error_count: int = 0
    total_duration_ms: float = 0.0
    actors: set = field(default_factory=set)
    slugs: set = field(default_factory=set)


def _summarize(events) -> dict[str, _TraceRow]:
    """Fold a batch of AuditEvent objects into one summary row per trace."""
    traces = {}
    for event in events:
        row = traces.get(event.trace_id)
        if row is None:
            row = traces[event.trace_id] = _TraceRow(started_at=event.timestamp, ended_at=event.timestamp)
        row.started_at = min(row.started_at, event.timestamp)
        row.ended_at = max(row.ended_at, event.timestamp)
        row.calls += 1
        row.deny_count += event.decision == Decision.DENY
        row.alert_count += event.decision == Decision.ALERT
        row.error_count += event.outcome != Outcome.SUCCESS
        row.total_duration_ms += event.duration_ms or 0.0
        row.actors.add(event.actor)
        row.slugs.add(event.slug)
    return traces


def _sorted_json(values):
    # None (anonymous) sorts first, as it does in both databases' JSON ordering.
    return json.dumps(sorted(values, key=lambda v: (v is not None, v or "")))


# PostgreSQL folds the batch it has just stored itself: the new rows are the
# organization's events past the old chain head, found on the (org, seq) index.
_POSTGRES_FROM_STORED_SQL = (
    f"INSERT INTO audit_tracesummary AS t ({_COLUMNS}) "
    "SELECT org_id, trace_id, min(timestamp), max(timestamp), count(*), "
    "count(*) FILTER (WHERE decision = 'deny'), count(*) FILTER (WHERE decision = 'alert'), "
    "count(*) FILTER (WHERE outcome <> 'success'), coalesce(sum(duration_ms), 0), "
    "jsonb_agg(DISTINCT coalesce(to_jsonb(actor), 'null'::jsonb) ORDER BY coalesce(to_jsonb(actor), 'null'::jsonb)), "
    "jsonb_agg(DISTINCT to_jsonb(slug) ORDER BY to_jsonb(slug)) "
    "FROM audit_auditevent WHERE org_id = %s AND seq > %s GROUP BY org_id, trace_id "
    "ON CONFLICT (org_id, trace_id) DO UPDATE SET "
    "started_at = LEAST(t.started_at, excluded.started_at), "
    "ended_at = GREATEST(t.ended_at, excluded.ended_at), "
    f"{_ADD}"
    "actors = (SELECT jsonb_agg(DISTINCT v ORDER BY v) FROM jsonb_array_elements(t.actors || excluded.actors) v), "
    "slugs = (SELECT jsonb_agg(DISTINCT v ORDER BY v) FROM jsonb_array_elements(t.slugs || excluded.slugs) v)"
)


def trace_summaries_upsert(*, org_id: int, events=None, seq_after: int | None = None) -> None:
    """Add a just-stored batch to its traces' summaries.

    PostgreSQL aggregates the rows itself, found as the events past `seq_after` (the
    chain head before the batch); SQLite is handed the batch's AuditEvent `events`
    and folds them in Python first.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_POSTGRES_FROM_STORED_SQL, [org_id, seq_after])
        return
    traces = _summarize(events)
    adapt = connection.ops.adapt_datetimefield_value
    params = []
    for trace_id, row in traces.items():
        params.append(
            (
                org_id,
                trace_id,
                adapt(row.started_at),
                adapt(row.ended_at),
                row.calls,
                row.deny_count,
                row.alert_count,
                row.error_count,
                row.total_duration_ms,
                _sorted_json(row.actors),
                _sorted_json(row.slugs),
            )
        )
    with connection.cursor() as cursor:
        for start in range(0, len(params), _CHUNK):
            chunk = params[start : start + _CHUNK]
            cursor.execute(
                _SQLITE_SQL.format(rows=", ".join([_SQLITE_ROW] * len(chunk))),
                [value for row in chunk for value in row],
            )


_POSTGRES_REBUILD_SQL = (
    _POSTGRES_FROM_STORED_SQL.split(" FROM audit_auditevent WHERE")[0]
    + " FROM audit_auditevent WHERE org_id = %s AND trace_id = ANY(%s) GROUP BY org_id, trace_id"
)


def trace_summaries_rebuild(*, org_id: int, trace_ids: list[str]) -> None:
    """Recompute the summaries of `trace_ids` from the events still stored (after retention
    removed some): a trace with none left loses its summary."""
    for start in range(0, len(trace_ids), _CHUNK):
        chunk = trace_ids[start : start + _CHUNK]
        TraceSummary.objects.filter(org_id=org_id, trace_id__in=chunk).delete()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(_POSTGRES_REBUILD_SQL, [org_id, chunk])
            continue
        remaining = list(
            AuditEvent.objects.filter(org_id=org_id, trace_id__in=chunk).only(
                "trace_id", "timestamp", "decision", "outcome", "duration_ms", "actor", "slug"
            )
        )
        if remaining:
            trace_summaries_upsert(org_id=org_id, events=remaining)
