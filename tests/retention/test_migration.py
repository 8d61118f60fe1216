"""The partitioning migration on PostgreSQL, from today's schema with data: events stored by
the code before it (hash rule v1) are all there afterwards, partitioned by day, still verify,
still count as duplicates, and new events (rule v2) chain on after them."""

from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from audit.events.fields import SENDER_FIELDS, TIME
from audit.events.search_text import event_search_text
from audit.events.wire import format_timestamp
from audit.explore import counts
from audit.ingest.door import validate_event
from audit.integrity import chain
from audit.integrity.verification import chain_verify
from audit.models import AuditEvent, Organization
from audit.retention import partitions
from audit.retention.services import duration_parse, retention_apply, retention_set
from tests.factories import store_events, wire_event

BEFORE = [("audit", "0011_ingest_claims")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


def _store_v1(apps, *, slug, days):
    """Events as the code before the migration stored them: hash rule v1, the old columns."""
    Org, Event = apps.get_model("audit", "Organization"), apps.get_model("audit", "AuditEvent")
    org = Org.objects.create(slug=slug, name=slug)
    head, seq = chain.GENESIS_HASH, 0
    for day in days:
        received = format_timestamp(timezone.now() - timedelta(days=day))
        for n in range(3):
            event, errors = validate_event(wire_event(id=f"{slug}-{day}-{n}"), max_bytes=1 << 20)
            assert not errors
            seq += 1
            head = chain.next_chain_hash(head, {**event, "received_at": received, "seq": seq})
            columns = {f.storage: datetime.fromisoformat(event[f.name]) if f.kind == TIME else event[f.name] for f in SENDER_FIELDS}
            Event.objects.create(
                org=org, received_at=datetime.fromisoformat(received), content_hash=chain.content_hash(event), seq=seq,
                chain_hash=head, search_text=event_search_text(event), **columns,
            )
    Org.objects.filter(pk=org.pk).update(chain_seq=seq, chain_hash=head)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_migration_partitions_existing_events_and_they_still_verify():
    executor = _migrate(BEFORE)
    _store_v1(executor.loader.project_state(BEFORE).apps, slug="mig", days=(45, 2, 0))
    latest = _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    assert latest is not None

    org = Organization.objects.get(slug="mig")
    with connection.cursor() as cursor:
        assert partitions.is_partitioned(cursor)
        names = partitions.partitions_list(cursor)
        cursor.execute("SELECT count(*) FROM audit_eventkey")
        assert cursor.fetchone()[0] == 9
        cursor.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'audit_auditevent_pkey'")
        assert cursor.fetchone()[0] == "PRIMARY KEY (id, received_at)"
    today = timezone.now().date()
    for day in (45, 2, 0):
        assert partitions.partition_name(today - timedelta(days=day)) in names
    assert partitions.partition_name(today + timedelta(days=7)) in names and names[-1] == partitions.DEFAULT_PARTITION
    assert AuditEvent.objects.filter(org=org).count() == 9
    # Counted by the migrations too: the rollup and its marginals answer for the events stored before them.
    scope = counts.count_scope(org=org)
    assert counts.event_totals(org=org).total == 9 and all(part.marginal for part in scope.parts)
    assert {row.value: row.count for row in counts.event_top(org=org, by="actor").results} == {"alice@company.com": 9}
    assert not AuditEvent.objects.filter(org=org).exclude(arguments_sha256=None).exists()  # all rule v1
    assert chain_verify(org=org).ok

    # Idempotency is still global: a resend of an old id, whatever day it arrives, is known.
    from audit.ingest.store import stored_content_hashes

    assert set(stored_content_hashes(org_id=org.pk, event_ids=["mig-45-0", "nope"])) == {"mig-45-0"}
    store_events(org, wire_event(id="after-1"), wire_event(id="after-2"))
    assert AuditEvent.objects.get(event_id="after-2").arguments_sha256 is not None  # rule v2 from now on
    assert chain_verify(org=org).verified_through == 11

    # Retention over the migrated chain: the old day goes whole; v1 arguments cannot go and are kept.
    retention_set(org=org, keep=duration_parse("30d"), keep_arguments=duration_parse("1d"))
    plan = retention_apply()[0]
    assert (plan.events, plan.arguments, plan.arguments_v1) == (3, 0, 3)
    assert plan.partitions == [partitions.partition_name(today - timedelta(days=45))]
    assert chain_verify(org=org).ok
