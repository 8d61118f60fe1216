"""Day partitions on PostgreSQL: made ahead by the task, and a day's rows that the default
partition caught meanwhile move into the day's partition when it is made."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from audit.events.wire import format_timestamp
from audit.ingest import store
from audit.ingest.store import stored_content_hashes
from audit.integrity.verification import chain_verify
from audit.retention import partitions
from audit.retention.tasks import apply_retention
from tests.factories import wire_event

pytestmark = pytest.mark.postgres


def _rows_in(cursor, table):
    cursor.execute(f"SELECT count(*) FROM {table}")
    return cursor.fetchone()[0]


def test_the_default_partition_hands_a_day_its_rows_when_the_day_is_made(org, settings):
    day = (timezone.now() - timedelta(days=400)).date()
    store.events_store_now(
        org_id=org.pk, raw_events=[wire_event(id="stray-1"), wire_event(id="stray-2")],
        received_at=format_timestamp(partitions.day_start(day) + timedelta(hours=3)),
    )
    with connection.cursor() as cursor:
        assert partitions.partition_name(day) not in partitions.partitions_list(cursor)
        assert _rows_in(cursor, partitions.DEFAULT_PARTITION) == 2
        assert partitions.partitions_ensure(cursor, first=day, last=day) == [partitions.partition_name(day)]
        assert _rows_in(cursor, partitions.DEFAULT_PARTITION) == 0
        assert _rows_in(cursor, partitions.partition_name(day)) == 2
    assert set(stored_content_hashes(org_id=org.pk, event_ids=["stray-1", "stray-2"])) == {"stray-1", "stray-2"}
    assert chain_verify(org=org).ok


def test_the_task_makes_the_coming_days(db, settings):
    settings.LENS_PARTITIONS_AHEAD_DAYS = 12
    apply_retention()
    with connection.cursor() as cursor:
        names = partitions.partitions_list(cursor)
    today = timezone.now().date()
    assert all(partitions.partition_name(today + timedelta(days=n)) in names for n in range(-1, 13))
