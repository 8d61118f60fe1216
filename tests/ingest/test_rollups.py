"""The count rollup: kept by the ingest transaction, exact, never counting a batch twice."""

from datetime import UTC, datetime

import pytest
from django.db.models import Sum

from audit.ingest import store
from audit.ingest.door import validate_event
from audit.ingest.models import EventRollup
from audit.ingest.rollups import rollups_rebuild
from tests.factories import store_events, wire_event

RECEIVED = "2026-11-23T09:30:00.000000Z"


def _rollup(org):
    """(minute, decision, actor, tool, rule_id) -> (count, duration_sum, duration_max)."""
    return {
        (row.minute, row.decision, row.actor, row.tool, row.rule_id): (row.count, row.duration_sum, row.duration_max)
        for row in EventRollup.objects.filter(org=org)
    }


def test_rollup_counts_each_minute_and_combination(org):
    store_events(
        org,
        wire_event(timestamp="2026-11-23T09:15:02Z", duration_ms=100),
        wire_event(timestamp="2026-11-23T09:15:59.999Z", duration_ms=300),
        wire_event(timestamp="2026-11-23T09:16:00Z", decision="deny", outcome="denied", duration_ms=None),
        wire_event(timestamp="2026-11-23T09:16:30Z", actor=None, tool=None, method="tools/list", rule=None),
    )
    minute = lambda m: datetime(2026, 11, 23, 9, m, tzinfo=UTC)  # noqa: E731
    assert _rollup(org) == {
        (minute(15), "allow", "alice@company.com", "list_issues", "r-1"): (2, 400.0, 300.0),
        (minute(16), "deny", "alice@company.com", "list_issues", "r-1"): (1, 0.0, None),
        (minute(16), "allow", None, None, None): (1, 212.0, 212.0),
    }


def test_redelivered_batch_adds_nothing(org):
    batch = [validate_event(wire_event(), max_bytes=1 << 20)[0] for _ in range(20)]
    store.events_ingest(org_id=org.pk, events=batch[:15], received_at=RECEIVED)
    store.events_ingest(org_id=org.pk, events=batch, received_at=RECEIVED)  # 15 duplicates, 5 new
    store.events_ingest(org_id=org.pk, events=batch, received_at=RECEIVED)
    assert EventRollup.objects.filter(org=org).aggregate(n=Sum("count"))["n"] == 20


def test_later_batches_add_to_the_same_row(org):
    for _ in range(3):
        store_events(org, wire_event(timestamp="2026-11-23T09:15:10Z", duration_ms=50))
    store_events(org, wire_event(timestamp="2026-11-23T09:15:20Z", duration_ms=80))
    (row,) = EventRollup.objects.filter(org=org)
    assert (row.count, row.duration_count, row.duration_sum, row.duration_max) == (4, 4, 230.0, 80.0)


def test_rebuild_recounts_a_span_from_the_events(org, other_org):
    store_events(org, *[wire_event(timestamp=f"2026-11-23T09:{m:02d}:30Z") for m in range(10)])
    store_events(other_org, wire_event(timestamp="2026-11-23T09:05:30Z"))
    before = _rollup(org)
    EventRollup.objects.filter(org=org).update(count=99)  # what a deletion of events would leave wrong
    rollups_rebuild(org=org, since=datetime(2026, 11, 23, 9, 3, 10, tzinfo=UTC), until=datetime(2026, 11, 23, 9, 5, 1, tzinfo=UTC))
    counts = sorted((key[0].minute, value[0]) for key, value in _rollup(org).items())
    assert counts == [(m, 1 if 3 <= m <= 5 else 99) for m in range(10)]
    rollups_rebuild(org=org)
    assert _rollup(org) == before
    assert EventRollup.objects.filter(org=other_org).get().count == 1


@pytest.mark.postgres
def test_rollup_minutes_are_utc_whatever_the_session_zone(org):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'Asia/Kolkata'")  # +05:30: a zone not on whole hours
        store.events_store_now(org_id=org.pk, raw_events=[wire_event(timestamp="2026-11-23T09:15:02Z")])
        cursor.execute("SELECT to_char(minute AT TIME ZONE 'UTC', 'HH24:MI') FROM audit_eventrollup")
        minutes = cursor.fetchall()
        cursor.execute("SET TIME ZONE 'UTC'")
    assert minutes == [("09:15",)]
