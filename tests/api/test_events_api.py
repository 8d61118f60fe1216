"""GET /api/v1/audit-events and /api/v1/audit-events/<id> (SPEC §3)."""

import csv
import io
import json

import pytest

from audit.api.throttling import ReadThrottle
from tests.factories import store_events, wire_event

URL = "/api/v1/audit-events"


@pytest.fixture
def stored(org, other_org):
    store_events(
        org,
        wire_event(id="evt-1", trace_id="trace-7f3a", timestamp="2026-11-23T09:15:02.412Z",
                   metadata={"feature": "issue-triage", "env": "production", "ticket": 4711}),
        wire_event(id="evt-2", trace_id="trace-7f3a", timestamp="2026-11-23T09:15:03.020Z", slug="slack-prod",
                   tool="post_message", arguments={"channel": "#triage", "text": "=HYPERLINK(\"x\")"}, rule=None,
                   metadata={"feature": "issue-triage"}, duration_ms=95),
        wire_event(id="evt-3", trace_id="trace-9b1c", timestamp="2026-11-23T09:20:00Z", actor="bob@company.com",
                   tool="delete_repo", decision="deny", outcome="denied", status_code=403,
                   reason="no rule matched: denied by default", error="=cmd|' /C calc'!A0",
                   server={"name": "github-mcp", "version": "1.2.0"}),
    )
    store_events(other_org, wire_event(id="evt-9", trace_id="trace-7f3a", timestamp="2026-11-23T10:00:00Z"))


def ids(response):
    return [event["id"] for event in response.json()["results"]]


def test_list_is_newest_first_in_wire_format(stored, get):
    response = get(URL)
    assert response.status_code == 200
    body = response.json()
    assert ids(response) == ["evt-3", "evt-2", "evt-1"]
    assert body["next"] is None and body["previous"] is None
    first = body["results"][2]
    assert first["timestamp"] == "2026-11-23T09:15:02.412000Z"
    assert first["metadata"] == {"feature": "issue-triage", "env": "production", "ticket": 4711}
    assert first["rule"]["policy"] == "github-guardrails"
    assert set(first) >= {"id", "trace_id", "received_at", "seq", "chain_hash"}
    assert "Link" not in response


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"decision": ["deny", "alert"]}, ["evt-3"]),
        ({"slug": ["slack-prod", "github-prod"], "trace_id": "trace-7f3a"}, ["evt-2", "evt-1"]),
        ({"metadata.ticket": "4711"}, ["evt-1"]),
        ({"metadata.feature": "issue-triage", "metadata.env": "production"}, ["evt-3", "evt-1"]),
        ({"since": "2026-11-23T09:15:03Z", "until": "2026-11-23T10:20:00+01:00"}, ["evt-3", "evt-2"]),
        ({"q": "BOB"}, ["evt-3"]),
        ({"actor": "nobody"}, []),
    ],
)
def test_list_filters(stored, get, params, expected):
    response = get(URL, params)
    assert response.status_code == 200
    assert ids(response) == expected


@pytest.mark.parametrize(
    "params, parameter",
    [
        ({"decision": "maybe"}, "decision"),
        ({"since": "last tuesday"}, "since"),
        ({"metadata.": "x"}, "metadata."),
        ({"metadata.<key>": "production"}, "metadata.<key>"),  # the docs' placeholder, sent as a name
        ({"metadata": "production"}, "metadata"),  # the pairs form wants <key>=<value>
        ({"decison": "deny"}, "decison"),  # a typo is an error, never silently ignored
        ({"format": "xml"}, "format"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "501"}, "page_size"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(stored, get, params, parameter):
    response = get(URL, params)
    assert response.status_code == 400
    body = response.json()
    assert list(body["errors"]) == [parameter]
    assert parameter in body["detail"]


def test_csv_page(stored, get):
    response = get(URL, {"format": "csv", "trace_id": "trace-7f3a"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["id"] for row in rows] == ["evt-2", "evt-1"]
    # Nested fields are JSON text in their cell; null is an empty cell; formulas are defused.
    assert json.loads(rows[1]["metadata"]) == {"feature": "issue-triage", "env": "production", "ticket": 4711}
    assert json.loads(rows[0]["arguments"]) == {"channel": "#triage", "text": '=HYPERLINK("x")'}
    assert rows[0]["rule"] == "" and rows[0]["duration_ms"] == "95.0"


def test_ndjson_page(stored, get):
    response = get(URL, {"format": "ndjson", "decision": "deny"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    lines = response.content.decode().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["evt-3"]
    assert json.loads(lines[0])["error"] == "=cmd|' /C calc'!A0"  # NDJSON is exact
    assert json.loads(lines[0])["server"] == {"name": "github-mcp", "version": "1.2.0"}


def test_csv_and_ndjson_pages_link_the_next_page(stored, get):
    response = get(URL, {"format": "ndjson", "page_size": "2"})
    assert len(response.content.decode().splitlines()) == 2
    link = response["Link"]
    assert link.startswith("<http://testserver/api/v1/audit-events?") and link.endswith('>; rel="next"')
    next_url = link[1 : link.index(">")]
    rest = get(next_url)
    assert rest.status_code == 200
    assert [json.loads(line)["id"] for line in rest.content.decode().splitlines()] == ["evt-1"]
    assert 'rel="prev"' in rest["Link"] and 'rel="next"' not in rest["Link"]


def test_detail(stored, get):
    response = get(f"{URL}/evt-3")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "evt-3" and body["decision"] == "deny" and body["status_code"] == 403
    assert body["reason"] == "no rule matched: denied by default"


def test_detail_of_missing_or_malformed_id_is_404(stored, get):
    assert get(f"{URL}/nope").status_code == 404
    assert get(f"{URL}/has%20space").status_code == 404
    assert get(f"{URL}/{'x' * 65}").status_code == 404


def test_detail_rejects_query_parameters(stored, get):
    response = get(f"{URL}/evt-3", {"decision": "deny"})
    assert response.status_code == 400 and list(response.json()["errors"]) == ["decision"]


# --- auth and organizations ---------------------------------------------------------------


@pytest.mark.parametrize("path", [URL, f"{URL}/evt-1", f"{URL}/export"])
def test_reads_need_a_key_or_session(stored, get, path):
    assert get(path, key=None).status_code == 401
    assert get(path, key="lens_nope_secret").status_code == 401


@pytest.mark.parametrize("path", [URL, f"{URL}/evt-1", f"{URL}/export"])
def test_ingest_only_key_cannot_read(stored, get, ingest_key, path):
    response = get(path, key=ingest_key)
    assert response.status_code == 403
    assert "read" in response.json()["detail"]


def test_logged_in_session_reads_its_organization(stored, api_client, viewer):
    api_client.force_login(viewer)
    assert ids(api_client.get(URL)) == ["evt-3", "evt-2", "evt-1"]
    assert api_client.get(f"{URL}/evt-2").json()["slug"] == "slack-prod"


def test_other_organization_sees_only_its_own(stored, get, other_read_key):
    response = get(URL, key=other_read_key)
    assert ids(response) == ["evt-9"]
    assert get(URL, {"trace_id": "trace-7f3a"}, key=other_read_key).json()["results"][0]["id"] == "evt-9"


def test_another_organizations_event_is_404_never_403(stored, get, other_read_key):
    assert get(f"{URL}/evt-1", key=other_read_key).status_code == 404
    assert get(f"{URL}/evt-9").status_code == 404
    assert get(f"{URL}/evt-9", key=other_read_key).status_code == 200


def test_reads_are_rate_limited_per_key(stored, get, other_read_key, monkeypatch):
    monkeypatch.setattr(ReadThrottle, "rate", "2/min", raising=False)
    assert get(URL).status_code == 200
    assert get(f"{URL}/evt-1").status_code == 200
    limited = get(URL)
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    assert get(URL, key=other_read_key).status_code == 200  # another key has its own budget


# --- query counts -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "csv", "ndjson"])
def test_list_query_count_does_not_grow_with_the_page(org, warm, django_assert_num_queries, fmt):
    store_events(org, *[wire_event() for _ in range(40)])
    with django_assert_num_queries(3):  # the key, the page, the access record
        response = warm(URL, {"format": fmt, "page_size": "30", "metadata.env": "production"})
    assert response.status_code == 200


def test_detail_query_count(stored, warm, django_assert_num_queries):
    with django_assert_num_queries(3):  # the key, the event, the access record
        assert warm(f"{URL}/evt-1").status_code == 200


# --- the pagination walk -----------------------------------------------------------------


def walk(get, params):
    """Every page from the first by following `next`; returns the pages' ids."""
    pages, url, query = [], URL, params
    while url:
        body = get(url, query).json()
        pages.append([event["id"] for event in body["results"]])
        url, query = body["next"], None
        yield pages[-1]


def test_walk_sees_each_older_event_once_while_events_arrive(org, get, ingest_key, api_client):
    # 120 events over 30 distinct timestamps: ties are broken by arrival, never by luck.
    older = [
        wire_event(id=f"old-{n:03d}", timestamp=f"2026-11-23T09:00:{n // 4:02d}Z", trace_id=f"t-{n % 7}")
        for n in range(120)
    ]
    store_events(org, *older)
    seen, arrivals = [], 0

    def ingest(events):
        response = api_client.post(URL, data=json.dumps(events), content_type="application/json",
                                   HTTP_AUTHORIZATION=f"Bearer {ingest_key}")
        assert response.status_code == 202

    for page in walk(get, {"page_size": "25"}):
        seen.extend(page)
        # Between fetches: newer events, events tied with ones already seen, and late older ones.
        ingest([
            wire_event(id=f"new-{arrivals}", timestamp="2026-11-23T10:00:00Z"),
            wire_event(id=f"tie-{arrivals}", timestamp=f"2026-11-23T09:00:{29 - arrivals:02d}Z"),
            wire_event(id=f"late-{arrivals}", timestamp="2026-11-23T08:00:00Z"),
        ])
        arrivals += 1

    assert len(seen) == len(set(seen)), "an event was seen twice"
    assert sorted(event_id for event_id in seen if event_id.startswith("old-")) == sorted(e["id"] for e in older)
    assert not [event_id for event_id in seen if event_id.startswith(("new-", "tie-"))]  # already behind the cursor
    # Late events older than the cursor are still ahead of it, so the walk reaches them.
    assert [event_id for event_id in seen if event_id.startswith("late-")] == [f"late-{n}" for n in range(3, -1, -1)]


def test_previous_links_walk_back_to_the_first_page(org, get):
    store_events(org, *[wire_event(id=f"e-{n:02d}", timestamp=f"2026-11-23T09:00:{n // 3:02d}Z") for n in range(23)])
    forward = list(walk(get, {"page_size": "5"}))
    assert [len(page) for page in forward] == [5, 5, 5, 5, 3]
    url, backward = get(URL, {"page_size": "5"}).json()["next"], []
    # Go to the last page, then follow `previous` to the top.
    body = get(url).json()
    while body["next"]:
        body = get(body["next"]).json()
    backward.append([event["id"] for event in body["results"]])
    while body["previous"]:
        body = get(body["previous"]).json()
        backward.append([event["id"] for event in body["results"]])
    assert backward[::-1] == forward
    assert body["next"] is not None


def test_cursor_keeps_filters_and_page_size(org, get):
    store_events(org, *[wire_event(decision="deny" if n % 2 else "allow") for n in range(9)])
    first = get(URL, {"decision": "deny", "page_size": "3"}).json()
    second = get(first["next"]).json()
    assert len(first["results"]) == 3 and len(second["results"]) == 1
    assert {event["decision"] for event in first["results"] + second["results"]} == {"deny"}


def test_ingest_still_posts_to_the_same_url(ingest_key, api_client, org, get):
    response = api_client.post(URL, data=json.dumps(wire_event(id="via-post")), content_type="application/json",
                               HTTP_AUTHORIZATION=f"Bearer {ingest_key}")
    assert response.status_code == 202  # receipts and statuses are tested in tests/ingest
    assert get(f"{URL}/via-post").json()["id"] == "via-post"
