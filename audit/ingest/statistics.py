"""Planner statistics kept fresh by ingest itself (PostgreSQL).

A bulk load writes rows faster than autovacuum looks (once a minute, and not at all where
it is off): until the tables are analyzed the planner believes they are empty, and the
event and trace lists, which it would serve from an index, are planned as scans of the
whole organization (bench/REPORT.md and docs/scaling.md measured plans going bad). After
each stored batch the worker checks the tables' change counters, and the first worker to
see a table changed by more than CHANGED_ROWS + CHANGED_SHARE of its rows since its last
analyze runs ANALYZE on it (sampled: ~30k rows, some 100 ms at a million). The counts are
PostgreSQL's own (pg_stat_user_tables), so every worker and autovacuum see the same.
The events table is partitioned by day of arrival (audit/retention/partitions.py): its rows,
and so its counters, are in the partitions, and a stale partition is analyzed on its own
(the planner reads each partition's statistics for the scans it keeps).
"""

import logging

from django.db import DatabaseError, connection, transaction

from audit.events.models import AuditEvent
from audit.ingest.models import EventMarginal, EventRollup, TraceSummary

logger = logging.getLogger(__name__)

TABLES = tuple(model._meta.db_table for model in (AuditEvent, TraceSummary, EventRollup, EventMarginal))
CHANGED_ROWS = 10_000
CHANGED_SHARE = 0.2
# Namespace and key of the advisory lock that lets one worker at a time analyze.
_LOCK = (0x4C454E53, -1)


def statistics_stale_tables() -> list[str]:
    """The ingest tables changed past the threshold since their last analyze."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE (relname = ANY(%s) OR relid IN "
            "(SELECT inhrelid FROM pg_inherits WHERE inhparent IN (SELECT oid FROM pg_class WHERE relname = ANY(%s)))) "
            "AND n_mod_since_analyze > %s + %s * greatest(n_live_tup - n_mod_since_analyze, 0) ORDER BY relname",
            [list(TABLES), list(TABLES), CHANGED_ROWS, CHANGED_SHARE],
        )
        return [row[0] for row in cursor.fetchall()]


def statistics_refresh() -> list[str]:
    """ANALYZE the stale ingest tables, unless another worker is at it; the tables analyzed.

    Only an optimization: a failure is logged, never raised (the batch is stored already).
    """
    try:
        stale = statistics_stale_tables()
        if not stale:
            return []
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", list(_LOCK))
            if not cursor.fetchone()[0]:
                return []
            for table in stale:
                cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
        return stale
    except DatabaseError:
        logger.warning("could not refresh planner statistics", exc_info=True)
        return []
