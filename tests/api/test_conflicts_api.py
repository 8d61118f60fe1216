"""GET /api/v1/conflicts and /conflicts/: every conflict is visible to its organization."""

import json

import pytest

from audit.accounts import services
from audit.models import AccessRecord
from tests.factories import store_events, wire_event


@pytest.fixture
def conflicted(api_client, org, other_org):
    _, key = services.api_key_create(org=org, scopes=["ingest"])
    first = wire_event(id="evt-1", reason="first")
    for event in (first, {**first, "reason": "second"}, {**first, "reason": "third"}):
        api_client.generic("POST", "/api/v1/audit-events", data=json.dumps(event), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {key}")
    _, theirs = services.api_key_create(org=other_org, scopes=["ingest"])
    their_first = wire_event(id="evt-1", reason="globex")
    for event in (their_first, {**their_first, "reason": "globex secret"}):
        api_client.generic("POST", "/api/v1/audit-events", data=json.dumps(event), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {theirs}")


def test_conflicts_are_listed_newest_first_paginated_and_recorded(get, conflicted, org):
    body = get("/api/v1/conflicts", {"page_size": 1}).json()
    assert [c["event"]["reason"] for c in body["results"]] == ["third"]
    assert body["results"][0]["event_id"] == "evt-1" and body["results"][0]["in_receipt"] is True
    rest = get(body["next"].split("testserver")[1]).json()
    assert [c["event"]["reason"] for c in rest["results"]] == ["second"] and rest["next"] is None
    assert AccessRecord.objects.filter(org=org, action="conflict-list").count() == 2


def test_another_organizations_conflicts_never_show(get, conflicted):
    assert "globex" not in get("/api/v1/conflicts").content.decode()


def test_conflicts_found_by_a_worker_show_too(get, org):
    event = wire_event(id="late")
    store_events(org, event)
    store_events(org, {**event, "reason": "stored around the request path"})
    assert [c["in_receipt"] for c in get("/api/v1/conflicts").json()["results"]] == [False]


def test_conflicts_need_the_read_scope(get, org, ingest_key):
    assert get("/api/v1/conflicts", key=ingest_key).status_code == 403
    assert get("/api/v1/conflicts", key=None).status_code == 401


def test_the_conflicts_page_is_for_admins(client, conflicted, org, viewer):
    admin = services.user_create(org=org, username="boss", password="boss-pass-123", role="admin")
    client.force_login(viewer)
    assert client.get("/conflicts/").status_code == 403
    client.force_login(admin)
    page = client.get("/conflicts/").content.decode()
    assert page.count('data-event-id="evt-1"') == 2 and "third" in page and "globex" not in page
    assert 'href="/conflicts/"' in page  # the admin's navigation leads there
    assert client.get("/conflicts/?cursor=made-up").status_code == 400
