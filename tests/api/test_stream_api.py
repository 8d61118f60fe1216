"""GET /api/v1/audit-events/stream (SPEC §8): SSE of matching events, resumable without gap or repeat.

These drive the stream through Django's test client (its WSGI body, which polls); the
ASGI body under a real server is tested in tests/integration/test_live_tail.py."""

import json

import pytest

from audit.accounts.models import AccessRecord
from tests.factories import store_events, wire_event

URL = "/api/v1/audit-events/stream"


def sse_frames(response, *, until):
    """Parsed SSE frames ({"event", "id", "data"}) of the rest of the stream, which ends after
    its (short, here) lifetime: read to the end, as the test client expects, so that closing
    it does not close the test's database connection."""
    frames = []
    text = b"".join(response.streaming_content).decode()
    for block in text.split("\n\n"):
        frame = {}
        for line in block.split("\n"):
            if line and not line.startswith(":"):
                name, _, value = line.partition(": ")
                frame[name] = value
        if frame:
            frames.append(frame)
    assert until(frames), f"the stream did not deliver: {frames}"
    return frames


def events_of(frames):
    return [json.loads(frame["data"]) for frame in frames if frame.get("event") == "audit-event"]


def test_a_stream_starts_now_and_sends_what_is_stored_after(org, get):
    store_events(org, wire_event(id="old"))
    response = get(URL, {"decision": "deny"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    assert response["Cache-Control"] == "no-cache"
    first = next(iter(response.streaming_content)).decode()
    assert first == "retry: 2000\nid: 1\n\n"
    store_events(org, wire_event(id="new-allow"), wire_event(id="new-deny", decision="deny", outcome="denied"))
    frames = sse_frames(response, until=lambda f: events_of(f))
    (event,) = events_of(frames)
    assert event["id"] == "new-deny" and event["seq"] == 3
    assert [f["id"] for f in frames if f.get("event") == "audit-event"] == ["3"]


def test_resume_with_last_event_id_has_no_gap_and_no_repeat(org, get):
    store_events(org, *[wire_event(id=f"e{n}", decision="deny" if n % 2 else "allow") for n in range(1, 9)])
    response = get(URL, HTTP_LAST_EVENT_ID="3")
    frames = sse_frames(response, until=lambda f: len(events_of(f)) == 5)
    assert [e["id"] for e in events_of(frames)] == ["e4", "e5", "e6", "e7", "e8"]
    # Filtered: only denies; the token moves past the allows too, so a resume rescans nothing.
    response = get(URL, {"decision": "deny"}, HTTP_LAST_EVENT_ID="4")
    frames = sse_frames(response, until=lambda f: any(frame.get("id") == "8" for frame in f))
    assert [e["id"] for e in events_of(frames)] == ["e5", "e7"]
    assert frames[-1] == {"id": "8"}
    response = get(URL, {"decision": "deny"}, HTTP_LAST_EVENT_ID="8")
    store_events(org, wire_event(id="e9", decision="deny", outcome="denied"))
    frames = sse_frames(response, until=lambda f: events_of(f))
    assert [e["id"] for e in events_of(frames)] == ["e9"]


@pytest.mark.parametrize("token", ["x", "-1", "99", "1" * 30])
def test_a_token_not_of_this_stream_is_a_400(org, get, token):
    store_events(org, wire_event())
    response = get(URL, HTTP_LAST_EVENT_ID=token)
    assert response.status_code == 400
    assert "Last-Event-ID" in response.json()["errors"]


def test_bad_filters_are_400s_before_the_stream(org, get):
    response = get(URL, {"q": "actor:"})
    assert response.status_code == 400 and "q" in response.json()["errors"]
    assert get(URL, {"colour": "red"}).status_code == 400


def test_the_stream_is_a_read_scoped_recorded_and_of_one_organization(org, other_org, get, ingest_key, other_read_key):
    assert get(URL, key=None).status_code == 401
    assert get(URL, key=ingest_key).status_code == 403
    response = get(URL, key=other_read_key)
    next(iter(response.streaming_content))
    store_events(org, wire_event(id="mine"))
    store_events(other_org, wire_event(id="theirs"))
    frames = sse_frames(response, until=lambda f: events_of(f))
    assert [e["id"] for e in events_of(frames)] == ["theirs"]
    assert AccessRecord.objects.filter(action="event-stream").count() == 1


def test_a_stream_ends_after_its_lifetime(org, get, settings):
    settings.LENS_STREAM_MAX_SECONDS = 0.05
    body = b"".join(get(URL).streaming_content).decode()
    assert body.startswith("retry: 2000\nid: 0\n\n")


def test_a_stream_ends_when_its_organization_is_gone(org, get):
    response = get(URL)
    chunks = iter(response.streaming_content)
    next(chunks)
    org.delete()
    assert b"".join(chunks) == b""
