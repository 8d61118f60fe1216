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


# docs/integrity.md's worked example, under both rules.
_EXAMPLE = {
    "id": "evt-1", "timestamp": "2026-11-23T09:15:02.412000Z", "trace_id": "trace-7f3a", "actor": "alice@company.com",
    "slug": "github-prod", "method": "tools/call", "tool": "list_issues", "arguments": {"repo": "acme/igris"},
    "decision": "allow", "rule": {"id": "r-1", "policy": "github-guardrails", "index": 0, "tool": "list_*",
                                  "action": "allow", "conditions": {}},
    "reason": None, "metadata": {"feature": "issue-triage", "env": "production"}, "duration_ms": 212.0,
    "outcome": "success", "status_code": 200, "error": None, "server": None,
    "received_at": "2026-11-23T09:15:02.530118Z", "seq": 1,
}
_V2_COMMITMENT = "38104adef2a8106a22bf6d7bde96c41ea2f405aff920464137dbe810d150f953"


def test_rule_v1_is_unchanged_for_events_without_a_commitment():
    for record in (_EXAMPLE, {**_EXAMPLE, "arguments_sha256": None, "arguments_removed": False}):
        assert chain.next_chain_hash(chain.GENESIS_HASH, record) == (
            "0ebfd6d6da2e86d4a5c14c5b8abc9a8891e450488a1a414d45bf646c18690f2d"
        )


def test_rule_v2_chains_the_commitment_so_arguments_can_go_but_not_change():
    assert chain.arguments_commitment({"repo": "acme/igris"}) == _V2_COMMITMENT
    v2 = {**_EXAMPLE, "arguments_sha256": _V2_COMMITMENT, "arguments_removed": False}
    expected = "102af0d1befaad9c80fd7b57a01917b4b7aacb1054a4fc6cda23fd2c730b0e39"
    assert chain.next_chain_hash(chain.GENESIS_HASH, v2) == expected
    removed = {**v2, "arguments": None, "arguments_removed": True}
    assert chain.next_chain_hash(chain.GENESIS_HASH, removed) == expected
    changed = {**v2, "arguments": {"repo": "acme/other"}}  # the stored commitment does not cover for them
    assert chain.next_chain_hash(chain.GENESIS_HASH, changed) != expected
    assert chain.next_chain_hash(chain.GENESIS_HASH, {**v2, "arguments_sha256": None}) != expected  # not a downgrade


def test_new_events_are_stored_under_rule_v2(org):
    [event] = store_events(org, wire_event(arguments={"repo": "acme/igris"}))
    assert event.arguments_sha256 == _V2_COMMITMENT and event.arguments_removed is False
    assert event_wire(event)["arguments_sha256"] == _V2_COMMITMENT
