"""The door's bounds, through POST /api/v1/audit-events: timestamps and ids that would mislead."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import URLPattern, get_resolver

from audit.events.fields import RESERVED_IDS
from audit.models import AuditEvent
from tests.factories import wire_event

URL = "/api/v1/audit-events"


@pytest.fixture
def post(api_client, ingest_key):
    def _post(events):
        return api_client.generic("POST", URL, data=json.dumps(events), content_type="application/json",
                                  HTTP_AUTHORIZATION=f"Bearer {ingest_key}")

    return _post


def _at(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("timestamp", "message"),
    [
        ("9999-12-31T23:59:59Z", "is in the future"),
        (timedelta(minutes=10), "is in the future"),  # from now, when the test runs (not when it was collected)
        ("2000-01-01T00:00:00+14:00", "older than 3650 days"),
        ("0001-01-01T00:00:00Z", "older than 3650 days"),
    ],
)
def test_an_implausible_timestamp_is_invalid_with_a_clear_receipt(post, org, timestamp, message):
    timestamp = _at(timestamp) if isinstance(timestamp, timedelta) else timestamp
    response = post([wire_event(id="odd", timestamp=timestamp), wire_event(id="fine")])
    assert response.status_code == 207
    receipt = response.json()["receipts"][0]
    assert receipt["status"] == "invalid" and message in receipt["errors"]["timestamp"]
    assert list(AuditEvent.objects.filter(org=org).values_list("event_id", flat=True)) == ["fine"]


def test_a_clock_a_little_ahead_is_allowed(post, org):
    assert post([wire_event(id="ahead", timestamp=_at(timedelta(minutes=4)))]).status_code == 202


def test_the_bounds_are_settings(post, org, settings):
    settings.LENS_MAX_CLOCK_SKEW_SECONDS, settings.LENS_MAX_EVENT_AGE_DAYS = 0, 1
    response = post([wire_event(id="ahead", timestamp=_at(timedelta(seconds=30))),
                     wire_event(id="old", timestamp=_at(-timedelta(days=2))),
                     wire_event(id="now", timestamp=_at(-timedelta(hours=1)))])
    assert [r["status"] for r in response.json()["receipts"]] == ["invalid", "invalid", "accepted"]
    assert "0 s of clock skew" in response.json()["receipts"][0]["errors"]["timestamp"]


@pytest.mark.parametrize("event_id", sorted(RESERVED_IDS))
def test_ids_that_would_not_lead_to_their_own_url_are_refused(post, org, event_id):
    response = post([wire_event(id=event_id)])
    assert response.status_code == 400
    assert "is reserved" in response.json()["receipts"][0]["errors"]["id"]
    assert not AuditEvent.objects.filter(org=org).exists()


@pytest.mark.parametrize("trace_id", [".", ".."])
def test_dot_segment_trace_ids_are_refused(post, org, trace_id):
    response = post([wire_event(trace_id=trace_id)])
    assert response.status_code == 400 and "is reserved" in response.json()["receipts"][0]["errors"]["trace_id"]


def test_dotted_ids_that_are_not_dot_segments_are_fine(post, org):
    assert post([wire_event(id="...", trace_id="../../events/evt-1"), wire_event(id="a..b")]).status_code == 202


def test_every_sub_path_of_the_events_api_is_a_reserved_id():
    """A new route under /api/v1/audit-events/ must reserve its name, or it shadows an event."""
    api = next(p for p in get_resolver().url_patterns if str(p.pattern) == "api/v1/")
    literal = {
        str(p.pattern).removeprefix("audit-events/")
        for p in api.url_patterns
        if isinstance(p, URLPattern) and str(p.pattern).startswith("audit-events/") and "<" not in str(p.pattern)
    }
    assert literal and literal <= RESERVED_IDS


# --- reading bodies: orjson where it reads exactly what json reads, json for the rest -------

from audit.ingest.door import BodyError, parse_body  # noqa: E402


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson"])
def test_integers_beyond_64_bits_stay_exact(content_type):
    """orjson would read them as floats; such a body is read by the standard library."""
    body = b'{"arguments": {"n": 123456789012345678901234567890, "m": -98765432109876543210}}'
    [item] = parse_body(body, content_type)
    assert item["arguments"] == {"n": 123456789012345678901234567890, "m": -98765432109876543210}
    assert isinstance(item["arguments"]["n"], int)


def test_a_long_digit_run_in_a_string_changes_nothing():
    [item] = parse_body(b'[{"id": "evt-12345678901234567890123", "x": 1.5}]', "application/json")
    assert item == {"id": "evt-12345678901234567890123", "x": 1.5}


@pytest.mark.parametrize("body, message", [
    (b'[{"a": NaN}]', "NaN is not valid JSON"),
    (b'[{"a": Infinity}]', "Infinity is not valid JSON"),
    (b'[{"a": 1,}]', "malformed JSON in body"),
    (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
])
def test_what_orjson_refuses_gets_the_standard_library_s_answer(body, message):
    with pytest.raises(BodyError, match=message):
        parse_body(body, "application/json")


def test_a_lone_surrogate_is_read_so_validation_can_name_it():
    [item] = parse_body(b'{"actor": "\\ud800"}', "application/json")
    assert item == {"actor": "\ud800"}


def test_fast_and_standard_reads_agree_on_a_realistic_body():
    from audit.events import demo
    from audit.ingest import door

    body = json.dumps(list(demo.demo_events(count=200, seed=5, days=1)), ensure_ascii=False).encode()
    assert door._orjson_reads_exactly(body)
    assert parse_body(body, "application/json") == json.loads(body)
