"""Hostile bodies through the real ingest endpoint: each a clear 4xx naming the
problem, and nothing half-stored (a batch with good items stores exactly those)."""

import json

import pytest
from django.test import override_settings

from audit.models import AuditEvent, IngestConflict, Organization, TraceSummary
from tests.factories import wire_event

URL = "/api/v1/audit-events"
OVERFLOW_SENTINEL = 1.2345e300  # sent as the literal 1e309, which JSON parsers read as infinity


@pytest.fixture
def post(api_client, ingest_key):
    def _post(body, content_type="application/json"):
        if not isinstance(body, (bytes, str)):
            # json.dumps cannot write 1e309; a sentinel float stands in for it.
            body = json.dumps(body).replace(json.dumps(OVERFLOW_SENTINEL), "1e309")
        return api_client.generic("POST", URL, data=body, content_type=content_type,
                                  HTTP_AUTHORIZATION=f"Bearer {ingest_key}")

    return _post


def assert_nothing_stored(org):
    assert AuditEvent.objects.filter(org=org).count() == 0
    assert TraceSummary.objects.filter(org=org).count() == 0
    assert IngestConflict.objects.filter(org=org).count() == 0
    assert Organization.objects.get(pk=org.pk).chain_seq == 0


def _nested(depth):
    value = {}
    for _ in range(depth):
        value = {"a": value}
    return value


GOOD = json.dumps(wire_event(id="good-1"))

# (name, body, content type, expected status, words the message must hold)
UNREADABLE_BODIES = [
    ("truncated object", GOOD[: len(GOOD) // 2], "application/json", 400, "malformed JSON"),
    ("truncated array", "[" + GOOD + ", {", "application/json", 400, "malformed JSON"),
    ("truncated ndjson line", GOOD + "\n" + GOOD[:30], "application/x-ndjson", 400, "line 2"),
    ("empty body", "", "application/json", 400, "malformed JSON"),
    ("latin-1 bytes", GOOD.replace("alice", "al\u00efce").encode("latin-1"), "application/json", 400, "UTF-8"),
    ("invalid utf-8 start", b"\xff\xfe" + GOOD.encode(), "application/json", 400, "UTF-8"),
    ("utf-16 body", GOOD.encode("utf-16"), "application/json", 400, "UTF-8"),
    ("raw NUL byte", GOOD[:10].encode() + b"\x00" + GOOD[10:].encode(), "application/json", 400, "malformed JSON"),
    ("NaN literal", GOOD.replace('"duration_ms": 212', '"duration_ms": NaN'), "application/json", 400, "NaN"),
    ("Infinity literal", GOOD.replace('"duration_ms": 212', '"duration_ms": -Infinity'), "application/json", 400,
     "Infinity"),
    ("integer of 5000 digits", GOOD.replace('"duration_ms": 212', '"duration_ms": ' + "9" * 5000),
     "application/json", 400, "malformed JSON"),
    ("body nested 100000 deep", "[" * 100_000 + "]" * 100_000, "application/json", 400, "nested too deeply"),
    ("a string", '"hello"', "application/json", 400, "not a string"),
    ("a number", "42", "application/json", 400, "not a number"),
    ("null", "null", "application/json", 400, "not null"),
    ("empty array", "[]", "application/json", 400, "empty batch"),
    ("blank ndjson", "\n\n", "application/x-ndjson", 400, "empty batch"),
    ("text/plain", GOOD, "text/plain", 400, "Content-Type"),
    ("form encoded", "id=1", "application/x-www-form-urlencoded", 400, "Content-Type"),
    ("xml", "<event/>", "application/xml", 400, "Content-Type"),
    ("100k-item array", json.dumps([{}] * 100_000), "application/json", 400, "over the limit of 5000"),
]


@pytest.mark.parametrize("name, body, content_type, status, message", UNREADABLE_BODIES,
                         ids=[case[0] for case in UNREADABLE_BODIES])
def test_unreadable_body_is_a_clear_4xx_and_stores_nothing(post, org, name, body, content_type, status, message):
    response = post(body, content_type=content_type)
    assert response.status_code == status
    assert message in response.json()["detail"]
    assert_nothing_stored(org)


def test_body_over_the_byte_limit_is_413_and_stores_nothing(post, org):
    with override_settings(LENS_MAX_BODY_BYTES=64 * 1024):
        response = post([wire_event(reason="x" * 1000) for _ in range(100)])
    assert response.status_code == 413
    assert "over the limit of 65536 bytes" in response.json()["detail"]
    assert_nothing_stored(org)


HUGE = "A" * 1_000_000

# (name, event overrides, field named in the error, words the error must hold)
BAD_EVENTS = [
    # huge strings
    ("huge trace_id", {"trace_id": HUGE}, "trace_id", "at most 128 characters"),
    ("huge actor", {"actor": HUGE}, "actor", "at most 254 characters"),
    ("huge reason", {"reason": HUGE}, "reason", "at most 10000 characters"),
    ("huge error", {"error": HUGE}, "error", "at most 100000 characters"),
    ("huge argument", {"arguments": {"blob": HUGE}}, "event", "the limit is 262144"),
    # deep nesting and big collections inside an event
    ("arguments nested 100 deep", {"arguments": _nested(100)}, "arguments.a.a.a", "nested deeper than 32"),
    ("rule conditions nested 100 deep", {"rule": {"id": "r", "conditions": _nested(100)}}, "rule.conditions",
     "nested deeper than 32"),
    ("100k-item argument list", {"arguments": {"items": ["x"] * 100_000}}, "event", "the limit is 262144"),
    ("100k metadata keys", {"metadata": {f"k{i}": "v" for i in range(100_000)}}, "metadata", "at most 64 keys"),
    # NUL bytes and control characters
    ("NUL in trace_id", {"trace_id": "t\x00"}, "trace_id", "NUL"),
    ("NUL in argument value", {"arguments": {"q": "a\x00b"}}, "arguments.q", "NUL"),
    ("NUL in argument key", {"arguments": {"a\x00": 1}}, "arguments key", "NUL"),
    ("NUL in metadata value", {"metadata": {"env": "prod\x00"}}, "metadata.env", "NUL"),
    ("NUL in reason", {"reason": "because\x00"}, "reason", "NUL"),
    ("newline in actor", {"actor": "alice\nbob"}, "actor", "control characters"),
    ("lone surrogate", {"reason": "\ud800"}, "reason", "lone surrogates"),
    # numbers out of range
    ("negative duration", {"duration_ms": -1}, "duration_ms", "between 0 and"),
    ("duration 1e309 (inf)", {"duration_ms": OVERFLOW_SENTINEL}, "duration_ms", "between 0 and"),
    ("duration over 1e12", {"duration_ms": 1e13}, "duration_ms", "between 0 and"),
    ("status code 99999", {"status_code": 99999}, "status_code", "between 100 and 599"),
    ("status code negative", {"status_code": -200}, "status_code", "between 100 and 599"),
    ("status code 2**70", {"status_code": 2**70}, "status_code", "between 100 and 599"),
    ("status code fraction", {"status_code": 200.5}, "status_code", "an integer"),
    ("year 99999", {"timestamp": "99999-01-01T00:00:00Z"}, "timestamp", "RFC 3339"),
    ("month 13", {"timestamp": "2026-13-01T00:00:00Z"}, "timestamp", "not a real date"),
    ("zone +25:00", {"timestamp": "2026-11-23T09:00:00+25:00"}, "timestamp", "out-of-range zone"),
    ("no zone", {"timestamp": "2026-11-23T09:00:00"}, "timestamp", "with a zone"),
    # path-like and script-like values where the format forbids them
    ("path-like id", {"id": "../../etc/passwd"}, "id", "must match"),
    ("absolute path id", {"id": "/etc/passwd"}, "id", "must match"),
    ("script-like id", {"id": "<script>alert(1)</script>"}, "id", "must match"),
    ("script-like slug", {"slug": "<img src=x onerror=alert(1)>"}, "slug", "must match"),
    ("path-like slug", {"slug": "../github"}, "slug", "must match"),
    ("url-encoded path slug", {"slug": "..%2fetc"}, "slug", "must match"),
    ("script-like decision", {"decision": "<script>"}, "decision", "must be one of"),
    ("sql-like outcome", {"outcome": "success' OR 1=1 --"}, "outcome", "must be one of"),
    # unknown fields
    ("unknown top-level field", {"extra": 1}, "event", 'unknown fields: "extra"'),
    ("unknown __proto__ field", {"__proto__": {"admin": True}}, "event", '"__proto__"'),
    ("unknown server field", {"server": {"name": "gh", "version": "1", "admin": True}}, "server",
     "unknown fields: admin"),
    # a field required for tools/call
    ("tools/call without tool", {"tool": None}, "tool", "required when method is tools/call"),
]

# Every field of SPEC §1 with a value of the wrong type.
WRONG_TYPES = [
    ("id", 5, "must be a string"),
    ("timestamp", 1700000000, "must be an RFC 3339 string"),
    ("trace_id", ["t"], "must be a string"),
    ("actor", {"name": "alice"}, "must be a string"),
    ("slug", 1, "must be a string"),
    ("method", True, "must be a string"),
    ("tool", 1, "must be a string"),
    ("arguments", ["a"], "must be an object or null"),
    ("decision", 1, "must be one of"),
    ("rule", "r-1", "must be an object or null"),
    ("reason", 1, "must be a string"),
    ("metadata", ["env"], "must be a flat object"),
    ("duration_ms", "212", "must be a number"),
    ("outcome", False, "must be one of"),
    ("status_code", "200", "must be an integer"),
    ("error", {"message": "x"}, "must be a string"),
    ("server", "github", "must be an object or null"),
]
BAD_EVENTS += [(f"{field} of wrong type", {field: value}, field, message) for field, value, message in WRONG_TYPES]
BAD_EVENTS += [
    ("nested metadata", {"metadata": {"env": {"a": 1}}}, "metadata.env", "string, number or boolean"),
    ("rule index as string", {"rule": {"id": "r", "index": "0"}}, "rule.index", "an integer"),
    ("rule index as bool", {"rule": {"id": "r", "index": True}}, "rule.index", "an integer"),
    ("server name as number", {"server": {"name": 1}}, "server.name", "must be a string"),
    ("required field missing", {"trace_id": None}, "trace_id", "is required"),
    ("empty method", {"method": ""}, "method", "must not be empty"),
]


def test_every_wire_field_has_a_wrong_type_case():
    from audit.events.fields import WIRE_NAMES as WIRE_FIELDS

    assert {field for field, _, _ in WRONG_TYPES} == set(WIRE_FIELDS)


@pytest.mark.parametrize("name, overrides, field, message", BAD_EVENTS, ids=[case[0] for case in BAD_EVENTS])
def test_bad_event_is_rejected_by_name_and_the_good_ones_in_its_batch_are_stored(post, org, name, overrides,
                                                                                  field, message):
    bad = wire_event(id="bad-1")
    for key, value in overrides.items():
        if value is None:
            bad.pop(key, None)
        else:
            bad[key] = value
    alone = post(bad)
    assert alone.status_code == 400
    receipt = alone.json()["receipts"][0]
    assert receipt["status"] == "invalid"
    # The error is keyed by the field (or the path inside it) and says what is wrong.
    assert any(key.startswith(field) and message in text for key, text in receipt["errors"].items()), receipt
    assert_nothing_stored(org)

    batch = post([wire_event(id="good-1", trace_id="t-good"), bad, wire_event(id="good-2", trace_id="t-good")])
    assert batch.status_code == 207
    assert [r["status"] for r in batch.json()["receipts"]] == ["accepted", "invalid", "accepted"]
    assert sorted(AuditEvent.objects.filter(org=org).values_list("event_id", flat=True)) == ["good-1", "good-2"]
    assert TraceSummary.objects.get(org=org).calls == 2
    assert Organization.objects.get(pk=org.pk).chain_seq == 2


# Values the format allows are data, not instructions: stored byte for byte, inert.
INERT_VALUES = [
    ("path-like trace_id", {"trace_id": "../../../../etc/passwd"}),
    ("windows path tool", {"tool": "..\\..\\windows\\system32"}),
    ("script-like actor", {"actor": "<script>alert(document.cookie)</script>"}),
    ("script-like reason", {"reason": "\"><img src=x onerror=alert(1)>"}),
    ("template-like arguments", {"arguments": {"q": "{{ settings.SECRET_KEY }}", "r": "{% debug %}"}}),
    ("sql-like metadata", {"metadata": {"team": "x'); DROP TABLE audit_auditevent; --"}}),
    ("big integer argument", {"arguments": {"n": 2**63 - 1, "neg": -(2**63)}}),
    ("unicode everywhere", {"actor": "ålice@例え.jp", "arguments": {"emoji": "🛡️", "rtl": "\u202eevil"}}),
]


@pytest.mark.parametrize("name, overrides", INERT_VALUES, ids=[case[0] for case in INERT_VALUES])
def test_values_the_format_allows_are_stored_verbatim(post, org, name, overrides):
    event = wire_event(id="inert-1", **overrides)
    response = post(event)
    assert response.status_code == 202, response.json()
    stored = AuditEvent.objects.get(org=org, event_id="inert-1")
    for key, value in overrides.items():
        assert getattr(stored, key) == value
