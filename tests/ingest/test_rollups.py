"""The count rollup: kept by the ingest transaction, exact, never counting a batch twice."""

from datetime import UTC, datetime

import pytest
from django.db.models import Sum

from audit.ingest import store
from audit.ingest.door import validate_event
from audit.ingest.models import EventMarginal, EventRollup
from audit.ingest.rollups import DAY, HOUR, MINUTE, marginal_dimensions, rollups_rebuild
from tests.factories import store_events, wire_event

RECEIVED = "2026-11-23T09:30:00.000000Z"


def _rollup(org, grain=MINUTE):
    """(start, decision, actor, tool, rule_id) -> (count, duration_sum, duration_max) at one grain."""
    return {
        (row.start, row.decision, row.actor, row.tool, row.rule_id): (row.count, row.duration_sum, row.duration_max)
        for row in EventRollup.objects.filter(org=org, grain=grain)
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
    hour, day = datetime(2026, 11, 23, 9, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC)
    assert _rollup(org, HOUR) == {
        (hour, "allow", "alice@company.com", "list_issues", "r-1"): (2, 400.0, 300.0),
        (hour, "deny", "alice@company.com", "list_issues", "r-1"): (1, 0.0, None),
        (hour, "allow", None, None, None): (1, 212.0, 212.0),
    }
    assert {key[0] for key in _rollup(org, DAY)} == {day}


def test_redelivered_batch_adds_nothing(org):
    batch = [validate_event(wire_event(), max_bytes=1 << 20)[0] for _ in range(20)]
    store.events_ingest(org_id=org.pk, events=batch[:15], received_at=RECEIVED)
    store.events_ingest(org_id=org.pk, events=batch, received_at=RECEIVED)  # 15 duplicates, 5 new
    store.events_ingest(org_id=org.pk, events=batch, received_at=RECEIVED)
    for grain in (MINUTE, HOUR, DAY):
        assert EventRollup.objects.filter(org=org, grain=grain).aggregate(n=Sum("count"))["n"] == 20
        for dimension in marginal_dimensions(grain):  # each marginal counts every event once
            marginal = EventMarginal.objects.filter(org=org, grain=grain, dimension=dimension)
            assert marginal.aggregate(n=Sum("count"))["n"] == 20


def test_marginals_count_each_value_of_one_dimension(org):
    store_events(org, wire_event(actor="a", tool="t1", decision="deny", outcome="denied", duration_ms=10),
                 wire_event(actor="a", tool="t2", duration_ms=30), wire_event(actor=None, tool="t1", rule=None, duration_ms=5))
    rows = EventMarginal.objects.filter(org=org, grain=DAY)
    assert set(rows.filter(dimension="actor").values_list("value", "decision", "count", "duration_sum")) == {
        ("a", "allow", 1, 30.0), ("a", "deny", 1, 10.0), (None, "allow", 1, 5.0)}
    assert set(rows.filter(dimension="").values_list("value", "decision", "count")) == {(None, "allow", 2), (None, "deny", 1)}


def test_later_batches_add_to_the_same_row(org):
    for _ in range(3):
        store_events(org, wire_event(timestamp="2026-11-23T09:15:10Z", duration_ms=50))
    store_events(org, wire_event(timestamp="2026-11-23T09:15:20Z", duration_ms=80))
    (row,) = EventRollup.objects.filter(org=org, grain=MINUTE)
    assert (row.count, row.duration_count, row.duration_sum, row.duration_max) == (4, 4, 230.0, 80.0)


def test_rebuild_recounts_whole_days_from_the_events(org, other_org):
    store_events(org, *[wire_event(timestamp=f"2026-11-{d:02d}T09:00:30Z") for d in range(20, 26)])
    store_events(other_org, wire_event(timestamp="2026-11-23T09:05:30Z"))
    before = {grain: _rollup(org, grain) for grain in (MINUTE, HOUR, DAY)}
    EventRollup.objects.filter(org=org).update(count=99)  # what a deletion of events would leave wrong
    rollups_rebuild(org=org, since=datetime(2026, 11, 22, 23, 59, tzinfo=UTC), until=datetime(2026, 11, 23, 0, 1, tzinfo=UTC))
    for grain in (MINUTE, HOUR, DAY):
        counts = sorted((key[0].day, value[0]) for key, value in _rollup(org, grain).items())
        assert counts == [(d, 1 if d in (22, 23) else 99) for d in range(20, 26)]
    marginals = sorted(EventMarginal.objects.filter(org=org).values_list("grain", "start", "key", "count"))
    EventMarginal.objects.filter(org=org).update(count=99)
    rollups_rebuild(org=org)
    assert {grain: _rollup(org, grain) for grain in (MINUTE, HOUR, DAY)} == before
    assert sorted(EventMarginal.objects.filter(org=org).values_list("grain", "start", "key", "count")) == marginals
    assert [row.count for row in EventRollup.objects.filter(org=other_org)] == [1, 1, 1]


@pytest.mark.postgres
def test_rollup_minutes_are_utc_whatever_the_session_zone(org):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'Asia/Kolkata'")  # +05:30: a zone not on whole hours
        store.events_store_now(org_id=org.pk, raw_events=[wire_event(timestamp="2026-11-23T09:15:02Z")])
        cursor.execute("SELECT grain, to_char(start AT TIME ZONE 'UTC', 'DD HH24:MI') FROM audit_eventrollup ORDER BY 1")
        starts = cursor.fetchall()
        cursor.execute("SET TIME ZONE 'UTC'")
    assert starts == [(MINUTE, "23 09:15"), (HOUR, "23 09:00"), (DAY, "23 00:00")]
