"""POST /api/v1/audit-events: every receipt status and every HTTP status of SPEC §2."""

import json

import pytest
from django.test import override_settings

from audit.accounts import services

from audit.ingest import store
from audit.models import AuditEvent, IngestConflict, TraceSummary
from tests.factories import wire_event

URL = "/api/v1/audit-events"


@pytest.fixture
def post(api_client, ingest_key):
    def _post(body, content_type="application/json", key=ingest_key):
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
        return api_client.generic("POST", URL, data=body, content_type=content_type, **headers)

    return _post


def stored_ids(org):
    return sorted(AuditEvent.objects.filter(org=org).values_list("event_id", flat=True))


def test_single_object_is_accepted_and_stored_as_sent(post, org):
    event = wire_event(id="evt-1", trace_id="trace-7f3a", timestamp="2026-11-23T09:15:02.412Z")
    response = post(event)
    assert response.status_code == 202
    assert response.json()["receipts"] == [{"index": 0, "id": "evt-1", "status": "accepted"}]
    stored = AuditEvent.objects.get(org=org, event_id="evt-1")
    assert stored.trace_id == "trace-7f3a"
    assert stored.metadata == {"feature": "issue-triage", "env": "production"}
    assert stored.rule["policy"] == "github-guardrails"
    assert stored.timestamp.isoformat() == "2026-11-23T09:15:02.412000+00:00"


def test_array_across_connections_builds_one_trace_summary(post, org):
    response = post(
        [
            wire_event(id="evt-1", trace_id="trace-7f3a", slug="github-prod", duration_ms=212),
            wire_event(id="evt-2", trace_id="trace-7f3a", slug="slack-prod", tool="post_message", decision="deny",
                       outcome="denied", status_code=403, duration_ms=95, actor=None),
        ]
    )
    assert response.status_code == 202
    summary = TraceSummary.objects.get(org=org, trace_id="trace-7f3a")
    assert (summary.calls, summary.deny_count, summary.error_count) == (2, 1, 1)
    assert summary.total_duration_ms == 307
    assert summary.slugs == ["github-prod", "slack-prod"]
    assert summary.actors == [None, "alice@company.com"]


def test_trace_summary_grows_across_batches(post, org):
    post(wire_event(id="a", trace_id="t", timestamp="2026-11-23T09:00:01Z", slug="github-prod"))
    post(wire_event(id="b", trace_id="t", timestamp="2026-11-23T09:00:00Z", slug="jira-cloud", decision="alert"))
    summary = TraceSummary.objects.get(org=org, trace_id="t")
    assert summary.calls == 2 and summary.alert_count == 1
    assert summary.started_at.second == 0 and summary.ended_at.second == 1
    assert summary.slugs == ["github-prod", "jira-cloud"]


def test_ndjson_is_accepted(post, org):
    body = "\n".join(json.dumps(wire_event(id=f"n-{i}")) for i in range(3)) + "\n\n"
    response = post(body, content_type="application/x-ndjson")
    assert response.status_code == 202
    assert stored_ids(org) == ["n-0", "n-1", "n-2"]


def test_event_without_id_gets_a_stable_one(post, org):
    event = wire_event()
    del event["id"]
    first = post(event).json()["receipts"][0]
    again = post(event).json()["receipts"][0]
    assert first["status"] == "accepted" and first["id"].startswith("lens-")
    assert again == {**first, "status": "duplicate"}
    assert AuditEvent.objects.filter(org=org).count() == 1


def test_batch_with_one_invalid_item_stores_the_rest(post, org):
    response = post([wire_event(id="ok-1"), wire_event(id="bad", decision="maybe"), wire_event(id="ok-2")])
    assert response.status_code == 207
    body = response.json()
    assert (body["accepted"], body["invalid"]) == (2, 1)
    assert body["receipts"][1]["status"] == "invalid"
    assert "decision" in body["receipts"][1]["errors"]
    assert stored_ids(org) == ["ok-1", "ok-2"]


def test_resent_event_is_a_duplicate_and_stored_once(post, org):
    event = wire_event(id="evt-1")
    assert post(event).status_code == 202
    response = post(event)
    assert response.status_code == 202
    assert response.json()["receipts"][0]["status"] == "duplicate"
    assert AuditEvent.objects.filter(org=org).count() == 1


def test_duplicate_inside_one_batch_is_stored_once(post, org):
    event = wire_event(id="evt-1")
    response = post([event, event])
    assert [r["status"] for r in response.json()["receipts"]] == ["accepted", "duplicate"]
    assert AuditEvent.objects.filter(org=org).count() == 1


def test_same_id_other_content_is_a_conflict_and_never_overwrites(post, org):
    post(wire_event(id="evt-1", tool="list_issues"))
    response = post([wire_event(id="evt-1", tool="delete_repo"), wire_event(id="evt-2")])
    assert response.status_code == 207
    receipt = response.json()["receipts"][0]
    assert receipt["status"] == "conflict" and "different content" in receipt["errors"]["id"]
    assert AuditEvent.objects.get(org=org, event_id="evt-1").tool == "list_issues"


def test_only_conflicts_is_400(post):
    post(wire_event(id="evt-1"))
    response = post(wire_event(id="evt-1", actor="mallory"))
    assert response.status_code == 400
    assert response.json()["conflict"] == 1


def test_conflict_found_by_the_worker_is_recorded_not_stored(org):
    first = store.events_ingest(org_id=org.pk, events=[_clean(id="evt-1")], received_at="2026-11-23T09:00:00.000000Z")
    late = store.events_ingest(
        org_id=org.pk, events=[_clean(id="evt-1", actor="mallory")], received_at="2026-11-23T09:00:01.000000Z"
    )
    assert (first.stored, late.stored, late.conflicts) == (1, 0, 1)
    assert AuditEvent.objects.get(org=org, event_id="evt-1").actor == "alice@company.com"
    assert IngestConflict.objects.get(org=org).payload["actor"] == "mallory"


def _clean(**overrides):
    from audit.ingest.door import validate_event

    event, errors = validate_event(wire_event(**overrides), max_bytes=1 << 20)
    assert not errors
    return event


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        ("{not json", "application/json", "malformed JSON"),
        ('[{"id": "a"}', "application/json", "malformed JSON"),
        (b"\xff\xfe{}", "application/json", "not valid UTF-8"),
        ("[]", "application/json", "empty batch"),
        ("\n\n", "application/x-ndjson", "empty batch"),
        ('"just a string"', "application/json", "must be an event object or an array"),
        ("{}", "text/plain", "unsupported Content-Type"),
        ('{"a": NaN}', "application/json", "malformed JSON"),
        ("[" * 100_000, "application/json", "malformed JSON"),
        ('{"ok": 1}\n{broken', "application/x-ndjson", "line 2"),
    ],
)
def test_unreadable_bodies_are_400_naming_the_problem(post, org, body, content_type, message):
    response = post(body, content_type=content_type)
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert AuditEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"surprise": 1}, "event", "unknown fields: \"surprise\""),
        ({"decision": "maybe"}, "decision", "must be one of alert, allow, deny"),
        ({"outcome": "fine"}, "outcome", "must be one of"),
        ({"timestamp": "yesterday"}, "timestamp", "RFC 3339"),
        ({"timestamp": "2026-11-23T09:15:02"}, "timestamp", "with a zone"),
        ({"timestamp": "2026-02-30T09:15:02Z"}, "timestamp", "not a real date"),
        ({"trace_id": None}, "trace_id", "is required"),
        ({"slug": "GitHub Prod"}, "slug", "must match"),
        ({"tool": None}, "tool", "required when method is tools/call"),
        ({"metadata": {"nested": {"a": 1}}}, "metadata.nested", "string, number or boolean"),
        ({"duration_ms": -1}, "duration_ms", "between 0"),
        ({"status_code": "200"}, "status_code", "must be an integer"),
        ({"status_code": 10**30}, "status_code", "between 100 and 599"),
        ({"arguments": [1, 2]}, "arguments", "must be an object"),
        ({"actor": "a\x00b"}, "actor", "NUL"),
        ({"id": "../../etc/passwd"}, "id", "must match"),
        ({"rule": {"index": "first"}}, "rule.index", "integer"),
        ({"server": {"name": "x", "os": "linux"}}, "server", "unknown fields: os"),
    ],
)
def test_invalid_fields_get_a_receipt_naming_the_field(post, org, overrides, field, message):
    response = post([wire_event(id="good"), wire_event(**{"id": "bad", **overrides})])
    assert response.status_code == 207
    receipt = response.json()["receipts"][1]
    assert receipt["status"] == "invalid"
    assert message in receipt["errors"][field], receipt["errors"]
    assert stored_ids(org) == ["good"]


def test_all_invalid_is_400_with_receipts(post):
    response = post([wire_event(decision="x"), "not an object"])
    assert response.status_code == 400
    receipts = response.json()["receipts"]
    assert [r["status"] for r in receipts] == ["invalid", "invalid"]
    assert receipts[1]["errors"] == {"event": "must be an object, not a string"}


@override_settings(LENS_MAX_BODY_BYTES=2000)
def test_oversized_body_is_413(post):
    response = post([wire_event() for _ in range(20)])
    assert response.status_code == 413
    assert "over the limit of 2000 bytes" in response.json()["detail"]
    assert AuditEvent.objects.count() == 0


@override_settings(LENS_MAX_BATCH_EVENTS=3)
def test_batch_over_the_count_limit_is_400(post):
    response = post([wire_event() for _ in range(4)])
    assert response.status_code == 400
    assert "batch of 4 events is over the limit of 3" in response.json()["detail"]


@override_settings(LENS_MAX_EVENT_BYTES=600)
def test_oversized_event_is_invalid_alone(post, org):
    response = post([wire_event(id="small"), wire_event(id="big", arguments={"blob": "x" * 1000})])
    assert response.status_code == 207
    assert "the limit is 600" in response.json()["receipts"][1]["errors"]["event"]
    assert stored_ids(org) == ["small"]


def test_missing_or_bad_key_is_401(post):
    assert post(wire_event(), key=None).status_code == 401
    response = post(wire_event(), key="lens_deadbeef_nope")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


def test_revoked_key_is_401(post, org):
    key, plain = services.api_key_create(org=org, scopes=["ingest"])
    services.api_key_revoke(key=key)
    assert post(wire_event(), key=plain).status_code == 401


def test_read_only_key_cannot_ingest(post, read_key):
    response = post(wire_event(), key=read_key)
    assert response.status_code == 403
    assert "ingest" in response.json()["detail"]


def test_key_decides_the_organization(post, org, other_org):
    _, other_key = services.api_key_create(org=other_org, scopes=["ingest"])
    post(wire_event(id="mine"))
    post(wire_event(id="theirs"), key=other_key)
    assert stored_ids(org) == ["mine"] and stored_ids(other_org) == ["theirs"]


def test_over_the_rate_limit_is_429_with_retry_after(post, monkeypatch):
    from audit.api.throttling import IngestThrottle

    monkeypatch.setattr(IngestThrottle, "THROTTLE_RATES", {"ingest": "2/min"})
    assert post(wire_event()).status_code == 202
    assert post(wire_event()).status_code == 202
    response = post(wire_event())
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0


def test_unreachable_queue_is_503_and_nothing_is_acknowledged(post, org, monkeypatch):
    from audit.ingest.tasks import ingest_events

    def broker_down(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setitem(ingest_events.app.conf, "task_always_eager", False)
    monkeypatch.setattr(ingest_events, "apply_async", broker_down)
    response = post(wire_event())
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "nothing from this request was accepted" in response.json()["detail"]
    assert AuditEvent.objects.count() == 0


def test_ndjson_strings_may_hold_unicode_line_separators(post, org):
    lines = [json.dumps(wire_event(id="sep", arguments={"text": "a\u2028b\u2029c\u0085d"}), ensure_ascii=False), json.dumps(wire_event(id="next"))]
    response = post("\r\n".join(lines).encode(), content_type="application/x-ndjson")
    assert response.status_code == 202, response.json()
    assert AuditEvent.objects.get(org=org, event_id="sep").arguments == {"text": "a\u2028b\u2029c\u0085d"}
    assert stored_ids(org) == ["next", "sep"]


def test_years_before_1000_keep_four_digits_in_storage_and_the_chain(org):
    """The door refuses such dates (LENS_MAX_EVENT_AGE_DAYS), so the rule is checked behind it."""
    from audit.events.wire import event_wire, format_timestamp
    from audit.integrity import chain

    event = {**_clean(id="old"), "timestamp": "0999-01-02T03:04:05.000000Z"}
    store.events_ingest(org_id=org.pk, events=[event], received_at="2026-11-23T09:00:00.000000Z")
    stored = AuditEvent.objects.get(org=org, event_id="old")
    assert event_wire(stored)["timestamp"] == "0999-01-02T03:04:05.000000Z"
    assert format_timestamp(stored.timestamp).startswith("0999-")
    assert chain.next_chain_hash(chain.GENESIS_HASH, event_wire(stored)) == stored.chain_hash
