from audit.integrity import chain
from audit.models import AuditEvent
from audit.events.wire import event_wire
from tests.factories import store_events, wire_event


def test_stored_events_recompute_to_their_chain_hashes(org):
    store_events(
        org,
        wire_event(metadata={"ticket": 4711, "ratio": 0.1, "big": 1e16, "ok": True}, duration_ms=0),
        wire_event(arguments={"nested": {"list": [1, 2.5, "ü", None]}}, actor=None),
        wire_event(timestamp="2026-11-23T10:15:02.123456789+02:00"),
    )
    previous = chain.GENESIS_HASH
    for seq, event in enumerate(AuditEvent.objects.filter(org=org).order_by("seq"), start=1):
        assert event.seq == seq
        previous = chain.next_chain_hash(previous, event_wire(event))
        assert previous == event.chain_hash
    org.refresh_from_db()
    assert (org.chain_seq, org.chain_hash) == (3, previous)


def test_received_at_in_any_rfc3339_form_still_verifies(org):
    from audit.ingest import store
    from audit.ingest.door import validate_event

    event, _ = validate_event(wire_event(), max_bytes=1 << 20)
    store.events_ingest(org_id=org.pk, events=[event], received_at="2026-11-23T11:00:00+01:00")
    stored = AuditEvent.objects.get(org=org)
    assert chain.next_chain_hash(chain.GENESIS_HASH, event_wire(stored)) == stored.chain_hash
