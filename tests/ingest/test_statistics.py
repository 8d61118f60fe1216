"""Planner statistics after a bulk load: the worker analyzes what changed past the threshold."""

import time

import pytest
from django.db import connection

from audit.ingest import outbox, statistics
from audit.ingest.models import PendingBatch
from tests.ingest.test_events_ingest import RECEIVED, clean_batch

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _last_analyze(table):
    with connection.cursor() as cursor:
        cursor.execute("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = %s", [table])
        return cursor.fetchone()[0]


def _flush_stats():
    # A backend reports its table counts at most once a second, when idle: ask for it now.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")


def _analyzed():
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, last_analyze FROM pg_stat_user_tables WHERE relname LIKE 'audit_auditevent%%'")
        return dict(cursor.fetchall())


def _partition_of_received(received_at):
    """The partition of audit_auditevent that holds rows received at that time (a day's, or the default)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM audit_auditevent WHERE received_at = %s LIMIT 1", [received_at])
        return cursor.fetchone()[0]


def test_a_stored_batch_past_the_threshold_gets_its_tables_analyzed(org, monkeypatch):
    """The rows are in a day's partition of the events table: that partition is analyzed, and
    so are the count rollup and its marginals the batch added to."""
    monkeypatch.setattr(statistics, "CHANGED_ROWS", 2)  # the batch's 30 events fold into a few count rows
    monkeypatch.setattr(statistics, "CHANGED_SHARE", 0.0)
    counts = ("audit_eventrollup", "audit_eventmarginal")
    before = {**_analyzed(), **{table: _last_analyze(table) for table in counts}}
    batch = PendingBatch.objects.create(org=org, events=clean_batch(30), received_at=RECEIVED)
    _flush_stats()
    outbox.pending_batch_ingest(batch_id=batch.pk)
    partition = _partition_of_received(RECEIVED)
    deadline = time.monotonic() + 10

    def unchanged():
        return [table for table in (partition, *counts) if _last_analyze(table) == before.get(table)]

    while unchanged() and time.monotonic() < deadline:
        _flush_stats()
        time.sleep(0.2)
        statistics.statistics_refresh()  # the counts may reach pg_stat a moment after the commit
    assert unchanged() == []
    _flush_stats()
    time.sleep(0.5)
    assert partition not in statistics.statistics_stale_tables()  # counted afresh from there


def test_below_the_threshold_nothing_is_analyzed(org, monkeypatch):
    monkeypatch.setattr(statistics, "CHANGED_ROWS", 10**9)
    batch = PendingBatch.objects.create(org=org, events=clean_batch(5), received_at=RECEIVED)
    outbox.pending_batch_ingest(batch_id=batch.pk)
    assert statistics.statistics_stale_tables() == []
    assert statistics.statistics_refresh() == []


def test_another_worker_analyzing_means_this_one_skips(org, monkeypatch):
    monkeypatch.setattr(statistics, "statistics_stale_tables", lambda: ["audit_auditevent"])
    import psycopg

    settings = connection.settings_dict
    other = psycopg.connect(host=settings["HOST"], port=settings["PORT"] or 5432, user=settings["USER"], password=settings.get("PASSWORD") or None,
                            dbname=settings["NAME"], autocommit=True)
    try:
        other.execute("SELECT pg_advisory_lock(%s, %s)", list(statistics._LOCK))
        assert statistics.statistics_refresh() == []
        other.execute("SELECT pg_advisory_unlock(%s, %s)", list(statistics._LOCK))
        assert statistics.statistics_refresh() == ["audit_auditevent"]
    finally:
        other.close()
