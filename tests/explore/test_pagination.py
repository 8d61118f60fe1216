"""One keyset paginator for the pages and the API, through the real endpoints."""

import pytest

import base64
import struct

from audit.explore.pagination import BadPage, Cursor, page_size
from audit.models import AuditEvent
from tests.factories import store_events, wire_event

AUTH = "HTTP_AUTHORIZATION"


@pytest.mark.parametrize("text", ["²", "①", "٣", "0", "501", "-1", "1e2", " 5"])
def test_page_size_is_ascii_digits_in_range(text):
    with pytest.raises(BadPage):
        page_size(text)


@pytest.mark.parametrize("path", ["/api/v1/audit-events", "/api/v1/traces"])
@pytest.mark.parametrize("size", ["²", "①"])
def test_a_unicode_digit_page_size_is_a_400_not_a_500(api_client, read_key, path, size):
    response = api_client.get(path, {"page_size": size}, HTTP_AUTHORIZATION=f"Bearer {read_key}")
    assert response.status_code == 400 and "page_size" in response.json()["errors"]


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_a_cursor_whose_time_overflows_is_a_400_on_pages_and_api(api_client, read_key, user_client, moment):
    import base64

    cursor = base64.urlsafe_b64encode(f"n|{moment}|1".encode()).decode().rstrip("=")
    api = api_client.get("/api/v1/audit-events", {"cursor": cursor}, HTTP_AUTHORIZATION=f"Bearer {read_key}")
    assert api.status_code == 400 and "cursor" in api.json()["errors"]
    for page in ("/events/", "/traces/"):
        assert user_client.get(page, {"cursor": cursor}).status_code == 400


def test_the_pages_and_the_api_walk_the_same_cursors(api_client, read_key, user_client, org):
    store_events(org, *(wire_event(id=f"p{n:02d}") for n in range(7)))
    first = api_client.get("/api/v1/audit-events", {"page_size": 3}, HTTP_AUTHORIZATION=f"Bearer {read_key}").json()
    cursor = first["next"].split("cursor=")[1].split("&")[0]
    assert Cursor.decode(cursor, scope=f"{org.pk}:audit.auditevent").backwards is False
    page = user_client.get("/events/", {"cursor": cursor}).content.decode()
    assert 'data-event-id="p03"' in page and 'data-event-id="p04"' not in page  # older than the API's first page


def _next_cursor(api_client, key, path="/api/v1/audit-events"):
    body = api_client.get(path, {"page_size": 1}, **{AUTH: f"Bearer {key}"}).json()
    return body["next"].split("cursor=")[1].split("&")[0]


def test_a_cursor_reveals_nothing_of_other_organizations(api_client, read_key, other_read_key, org, other_org):
    """Before, a rival's cursor carried the global row id: it moved by acme's volume."""
    store_events(other_org, wire_event(id="g1"), wire_event(id="g2"))
    before = _next_cursor(api_client, other_read_key)
    store_events(org, *(wire_event(id=f"a{n}") for n in range(50)))
    after = _next_cursor(api_client, other_read_key)
    assert before != after  # a fresh nonce every time: equal positions do not even look equal
    row_id = AuditEvent.objects.get(org=other_org, event_id="g2").pk
    for cursor in (before, after):
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        assert struct.pack(">q", row_id) not in raw
        assert b"2026" not in raw and len(cursor) <= 64


def test_a_cursor_works_only_for_its_organization_and_list(api_client, read_key, other_read_key, org, other_org):
    store_events(org, *(wire_event(id=f"a{n}", trace_id=f"t{n}") for n in range(3)))
    store_events(other_org, *(wire_event(id=f"g{n}") for n in range(3)))
    ours = _next_cursor(api_client, read_key)
    assert api_client.get("/api/v1/audit-events", {"cursor": ours}, **{AUTH: f"Bearer {read_key}"}).status_code == 200
    theirs = api_client.get("/api/v1/audit-events", {"cursor": ours}, **{AUTH: f"Bearer {other_read_key}"})
    assert theirs.status_code == 400 and "cursor" in theirs.json()["errors"]
    other_list = api_client.get("/api/v1/traces", {"cursor": ours}, **{AUTH: f"Bearer {read_key}"})
    assert other_list.status_code == 400


def test_a_tampered_cursor_is_a_400(api_client, read_key, org):
    store_events(org, *(wire_event(id=f"a{n}") for n in range(3)))
    cursor = _next_cursor(api_client, read_key)
    flipped = cursor[:20] + ("A" if cursor[20] != "A" else "B") + cursor[21:]
    response = api_client.get("/api/v1/audit-events", {"cursor": flipped}, **{AUTH: f"Bearer {read_key}"})
    assert response.status_code == 400
