from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from audit.events.wire import format_timestamp
from audit.ingest import store
from audit.retention import partitions


def store_at(org, received_at, *events):
    """Ingest wire events as if they had arrived at `received_at` (its day's partition made first)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            partitions.partitions_ensure(cursor, first=received_at.date(), last=received_at.date())
    store.events_store_now(org_id=org.pk, raw_events=list(events), received_at=format_timestamp(received_at))


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def long_ago(now):
    return now - timedelta(days=40)


@pytest.fixture
def lately(now):
    return now - timedelta(days=1)
