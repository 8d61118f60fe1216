"""GET /api/v1/traces and /api/v1/traces/<trace_id> (SPEC §3)."""

from urllib.parse import quote

import pytest

from tests.factories import store_events, wire_event

URL = "/api/v1/traces"
ODD_TRACE = "job 42/step #3?a=b&c=é"  # any characters but control characters


@pytest.fixture
def stored(org, other_org):
    store_events(
        org,
        wire_event(id="a1", trace_id="trace-7f3a", timestamp="2026-11-23T09:15:02.412Z", duration_ms=212,
                   metadata={"feature": "issue-triage"}),
        wire_event(id="a2", trace_id="trace-7f3a", timestamp="2026-11-23T09:15:03.020Z", slug="slack-prod",
                   decision="deny", outcome="denied", status_code=403, duration_ms=95, actor=None),
        wire_event(id="b1", trace_id=ODD_TRACE, timestamp="2026-11-23T09:30:00Z", actor="bob@company.com",
                   decision="alert", duration_ms=10, metadata={"feature": "weekly-report"}),
    )
    # Same second, arriving later, listed after a2's earlier-arriving sibling: timestamp, then arrival.
    store_events(org, wire_event(id="a0", trace_id="trace-7f3a", timestamp="2026-11-23T09:15:03.020Z"))
    store_events(other_org, wire_event(id="x1", trace_id="trace-7f3a", timestamp="2026-11-23T11:00:00Z"))


def test_list_one_row_per_trace_latest_start_first(stored, get):
    response = get(URL)
    assert response.status_code == 200
    body = response.json()
    assert [trace["trace_id"] for trace in body["results"]] == [ODD_TRACE, "trace-7f3a"]
    trace = body["results"][1]
    assert trace == {
        "trace_id": "trace-7f3a",
        "started_at": "2026-11-23T09:15:02.412000Z",
        "ended_at": "2026-11-23T09:15:03.020000Z",
        "calls": 3,
        "actors": [None, "alice@company.com"],
        "slugs": ["github-prod", "slack-prod"],
        "decisions": {"allow": 2, "deny": 1, "alert": 0},
        "error_count": 1,
        "total_duration_ms": 519.0,
    }
    assert body["next"] is None and body["previous"] is None


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"actor": "bob@company.com"}, [ODD_TRACE]),
        ({"slug": "slack-prod"}, ["trace-7f3a"]),
        ({"decision": ["deny", "alert"]}, [ODD_TRACE, "trace-7f3a"]),
        ({"decision": "deny", "actor": "alice@company.com"}, []),  # both must hold on one event
        ({"metadata.feature": "issue-triage"}, ["trace-7f3a"]),
        ({"since": "2026-11-23T09:20:00Z"}, [ODD_TRACE]),
        ({"until": "2026-11-23T09:15:02.5Z"}, ["trace-7f3a"]),
        ({"trace_id": ODD_TRACE}, [ODD_TRACE]),
    ],
)
def test_list_filters(stored, get, params, expected):
    response = get(URL, params)
    assert response.status_code == 200
    assert [trace["trace_id"] for trace in response.json()["results"]] == expected


def test_list_bad_filter_is_400(stored, get):
    response = get(URL, {"decision": "perhaps"})
    assert response.status_code == 400 and list(response.json()["errors"]) == ["decision"]
    response = get(URL, {"format": "csv"})  # traces come as JSON only
    assert response.status_code == 400 and list(response.json()["errors"]) == ["format"]
    response = get(URL, {"since": "soon"})
    assert response.status_code == 400 and list(response.json()["errors"]) == ["since"]


def test_list_pages(org, get):
    store_events(org, *[wire_event(trace_id=f"t-{n:02d}", timestamp=f"2026-11-23T09:00:{n:02d}Z") for n in range(7)])
    first = get(URL, {"page_size": "3"}).json()
    second = get(first["next"]).json()
    third = get(second["next"]).json()
    pages = [[t["trace_id"] for t in page["results"]] for page in (first, second, third)]
    assert pages == [["t-06", "t-05", "t-04"], ["t-03", "t-02", "t-01"], ["t-00"]]
    assert third["next"] is None
    assert [t["trace_id"] for t in get(third["previous"]).json()["results"]] == ["t-03", "t-02", "t-01"]


def test_chain_in_order(stored, get):
    response = get(f"{URL}/trace-7f3a")
    assert response.status_code == 200
    body = response.json()
    assert body["trace"]["calls"] == 3
    assert [event["id"] for event in body["events"]] == ["a1", "a2", "a0"]
    assert body["events"][1]["slug"] == "slack-prod"
    assert body["events_truncated"] is False


def test_chain_with_any_characters_in_its_trace_id(stored, get):
    response = get(f"{URL}/{quote(ODD_TRACE, safe='')}")
    assert response.status_code == 200
    assert [event["id"] for event in response.json()["events"]] == ["b1"]
    assert response.json()["trace"]["trace_id"] == ODD_TRACE


def test_chain_missing_is_404(stored, get):
    assert get(f"{URL}/no-such-trace").status_code == 404
    assert get(f"{URL}/{'t' * 129}").status_code == 404
    assert get(f"{URL}/bad%0Aid").status_code == 404


@pytest.mark.parametrize("path", [URL, f"{URL}/trace-7f3a"])
def test_traces_need_read_access(stored, get, ingest_key, path):
    assert get(path, key=None).status_code == 401
    assert get(path, key=ingest_key).status_code == 403


def test_session_reads_traces(stored, api_client, viewer):
    api_client.force_login(viewer)
    assert api_client.get(f"{URL}/trace-7f3a").json()["trace"]["calls"] == 3


def test_other_organization_sees_only_its_traces(stored, get, other_read_key):
    body = get(URL, key=other_read_key).json()
    assert [(t["trace_id"], t["calls"]) for t in body["results"]] == [("trace-7f3a", 1)]
    assert [e["id"] for e in get(f"{URL}/trace-7f3a", key=other_read_key).json()["events"]] == ["x1"]


def test_another_organizations_trace_is_404_never_403(stored, get, other_read_key):
    assert get(f"{URL}/{quote(ODD_TRACE, safe='')}", key=other_read_key).status_code == 404


def test_list_query_count(org, warm, django_assert_num_queries):
    store_events(org, *[wire_event() for _ in range(30)])
    with django_assert_num_queries(3):  # the key, the page, the access record
        response = warm(URL, {"decision": "allow", "metadata.env": "production", "page_size": "20"})
    assert len(response.json()["results"]) == 20


def test_chain_query_count(org, warm, django_assert_num_queries):
    store_events(org, *[wire_event(trace_id="long") for _ in range(25)])
    with django_assert_num_queries(4):  # the key, the summary, the events, the access record
        response = warm(f"{URL}/long")
    assert len(response.json()["events"]) == 25


# --- bounded answers: the chain comes a page at a time -------------------------------------------


def _chain(get, trace, **params):
    return get(f"{URL}/{quote(trace, safe='')}", params).json()


def test_the_chain_is_paged_with_a_cursor(org, get):
    store_events(org, *(wire_event(id=f"c{n}", trace_id="long") for n in range(7)))
    seen, page = [], _chain(get, "long", page_size=3)
    while True:
        seen += [event["id"] for event in page["events"]]
        assert page["events_truncated"] is (page["next"] is not None)
        if page["next"] is None:
            break
        page = get(page["next"].split("testserver")[1]).json()
    assert seen == [f"c{n}" for n in range(7)]
    assert page["trace"]["calls"] == 7


def test_large_events_make_short_pages_not_a_huge_answer(org, get, settings):
    """Before, 300 events of 200 KB made one 60 MB answer."""
    settings.LENS_TRACE_PAGE_BYTES = 100_000
    store_events(org, *(wire_event(id=f"big{n}", trace_id="heavy", arguments={"blob": "x" * 40_000})
                        for n in range(10)))
    response = get(f"{URL}/heavy", {"page_size": 500})
    body = response.json()
    assert len(body["events"]) == 3 and body["next"] is not None  # the third crosses the budget
    assert len(response.content) < 150_000


def test_a_chain_cursor_of_another_trace_list_is_refused(org, get):
    store_events(org, *(wire_event(id=f"c{n}", trace_id="long") for n in range(3)))
    events_cursor = get("/api/v1/audit-events", {"page_size": 1}).json()["next"].split("cursor=")[1]
    assert get(f"{URL}/long", {"cursor": events_cursor}).status_code == 400
