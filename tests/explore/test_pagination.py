"""One keyset paginator for the pages and the API, through the real endpoints."""

import pytest

import base64
import os
import struct

from django.conf import settings

from audit.accounts.services import api_key_create
from audit.explore.pagination import _NONCE_BYTES, _PAYLOAD, BadPage, Cursor, _sealer, page_size
from audit.models import AuditEvent
from tests.factories import store_events, wire_event

AUTH = "HTTP_AUTHORIZATION"


@pytest.mark.parametrize("text", ["²", "①", "٣", "0", "501", "-1", "1e2", " 5"])
def test_page_size_is_ascii_digits_in_range(text):
    with pytest.raises(BadPage):
        page_size(text)


@pytest.mark.parametrize("path", ["/api/v1/audit-events", "/api/v1/traces", "/api/v1/access-log"])
@pytest.mark.parametrize("size", ["²", "①"])
def test_a_unicode_digit_page_size_is_a_400_not_a_500(api_client, org, path, size):
    key = api_key_create(org=org, scopes=["read", "admin"], name="reader and admin")[1]
    response = api_client.get(path, {"page_size": size}, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 400 and "page_size" in response.json()["errors"]


def _sealed_cursor(scope, micros):
    """A cursor sealed as Lens seals them, holding a time no datetime can hold."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _sealer(settings.SECRET_KEY).encrypt(nonce, _PAYLOAD.pack(False, micros, 1), scope.encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


@pytest.mark.parametrize("micros", [2**62, -(2**62)])
def test_a_cursor_whose_time_overflows_is_a_400_on_pages_and_api(api_client, read_key, user_client, org, micros):
    """Sealed, so the overflow itself is reached (not refused earlier as a forgery)."""
    events = _sealed_cursor(f"{org.pk}:audit.auditevent", micros)
    api = api_client.get("/api/v1/audit-events", {"cursor": events}, HTTP_AUTHORIZATION=f"Bearer {read_key}")
    assert api.status_code == 400 and "cursor" in api.json()["errors"]
    assert user_client.get("/events/", {"cursor": events}).status_code == 400
    traces = _sealed_cursor(f"{org.pk}:audit.tracesummary", micros)
    assert user_client.get("/traces/", {"cursor": traces}).status_code == 400


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
