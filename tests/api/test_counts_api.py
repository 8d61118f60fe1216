"""GET /api/v1/audit-events/histogram and /api/v1/stats/top (SPEC §8): exact, filtered, 400 on bad input."""

import pytest

from audit.accounts.models import AccessRecord
from audit.ingest import store
from audit.ingest.door import validate_event
from tests.factories import store_events, wire_event

HISTOGRAM, TOP = "/api/v1/audit-events/histogram", "/api/v1/stats/top"


@pytest.fixture
def stored(org, other_org):
    store_events(
        org,
        wire_event(timestamp="2026-11-23T09:15:02Z", actor="alice@company.com", tool="list_issues", duration_ms=100),
        wire_event(timestamp="2026-11-23T09:20:00Z", actor="alice@company.com", tool="delete_repo", decision="deny",
                   outcome="denied", rule={"id": "r-del", "policy": "p"}, duration_ms=5, metadata={"env": "prod"}),
        wire_event(timestamp="2026-11-23T09:59:59.999Z", actor="bob@company.com", tool="delete_repo", decision="deny",
                   outcome="denied", rule={"id": "r-del", "policy": "p"}, duration_ms=7, metadata={"env": "dev"}),
        wire_event(timestamp="2026-11-23T10:01:00Z", actor=None, tool="list_issues", decision="alert",
                   duration_ms=900, metadata={"env": "prod"}),
    )
    store_events(other_org, wire_event(timestamp="2026-11-23T09:30:00Z", decision="deny"))


def test_histogram_buckets_every_interval_of_the_window(stored, get):
    body = get(HISTOGRAM, {"since": "2026-11-23T09:00:00Z", "until": "2026-11-23T11:00:00Z", "interval": "1h"}).json()
    assert body == {
        "interval": "1h", "total": 4, "source": "rollup",
        "buckets": [
            {"start": "2026-11-23T09:00:00.000000Z", "allow": 1, "deny": 2, "alert": 0},
            {"start": "2026-11-23T10:00:00.000000Z", "allow": 0, "deny": 0, "alert": 1},
            {"start": "2026-11-23T11:00:00.000000Z", "allow": 0, "deny": 0, "alert": 0},
        ],
    }


def test_histogram_takes_every_filter_and_q(stored, get):
    params = {"since": "2026-11-23T09:00:00Z", "until": "2026-11-23T10:59:00Z", "interval": "15m"}
    body = get(HISTOGRAM, {**params, "decision": ["deny", "alert"], "actor": "alice@company.com"}).json()
    assert (body["total"], body["source"]) == (1, "rollup")
    body = get(HISTOGRAM, {**params, "q": "tool:delete_* metadata.env:prod"}).json()
    assert (body["total"], body["source"]) == (1, "events")
    assert [b["start"][11:16] for b in body["buckets"] if b["deny"]] == ["09:15"]
    auto = get(HISTOGRAM, {"since": "2026-11-23T09:00:00Z", "until": "2026-11-23T10:00:00Z"}).json()
    assert auto["interval"] == "1m" and len(auto["buckets"]) == 61


def test_top_is_exact_largest_first(stored, get):
    body = get(TOP, {"by": "actor"}).json()
    assert body == {
        "by": "actor", "total": 4, "source": "rollup",
        "results": [
            {"value": "alice@company.com", "count": 2, "deny": 1, "alert": 0, "duration_avg_ms": 52.5, "duration_max_ms": 100.0},
            {"value": "bob@company.com", "count": 1, "deny": 1, "alert": 0, "duration_avg_ms": 7.0, "duration_max_ms": 7.0},
            {"value": None, "count": 1, "deny": 0, "alert": 1, "duration_avg_ms": 900.0, "duration_max_ms": 900.0},
        ],
    }
    assert [(r["value"], r["count"]) for r in get(TOP, {"by": "rule", "decision": "deny"}).json()["results"]] == [("r-del", 2)]
    assert [(r["value"], r["count"]) for r in get(TOP, {"by": "metadata.env", "limit": "1"}).json()["results"]] == [("prod", 2)]
    slowest = get(TOP, {"by": "tool", "order": "duration"}).json()["results"]
    assert [r["value"] for r in slowest] == ["list_issues", "delete_repo"]


def test_a_redelivered_batch_is_not_counted_twice(org, get):
    batch = [validate_event(wire_event(decision="deny"), max_bytes=1 << 20)[0] for _ in range(5)]
    for _ in range(3):
        store.events_ingest(org_id=org.pk, events=batch, received_at="2026-11-23T09:30:00Z")
    assert get(TOP, {"by": "decision"}).json()["results"][0]["count"] == 5
    assert get(HISTOGRAM, {"interval": "1d"}).json()["total"] == 5


@pytest.mark.parametrize("url,params,name", [
    (HISTOGRAM, {"interval": "2m"}, "interval"),
    (HISTOGRAM, {"interval": "1m", "since": "2020-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "interval"),
    (HISTOGRAM, {"decision": "nope"}, "decision"),
    (HISTOGRAM, {"q": "actor:"}, "q"),
    (HISTOGRAM, {"bucket": "1h"}, "bucket"),
    (TOP, {}, "by"),
    (TOP, {"by": "colour"}, "by"),
    (TOP, {"by": "metadata."}, "by"),
    (TOP, {"by": "metadata.\x00env"}, "by"),  # PostgreSQL text cannot hold NUL: a 400, never a 500
    (TOP, {"by": "metadata.<key>"}, "by"),
    (TOP, {"by": "actor", "limit": "0"}, "limit"),
    (TOP, {"by": "actor", "limit": "ten"}, "limit"),
    (TOP, {"by": "actor", "order": "random"}, "order"),
])
def test_bad_parameters_are_400s_that_name_them(stored, get, url, params, name):
    response = get(url, params)
    assert response.status_code == 400
    assert name in response.json()["errors"]


def test_reads_need_the_read_scope_see_only_their_org_and_are_recorded(stored, get, other_read_key, ingest_key):
    assert get(HISTOGRAM, key=None).status_code == 401
    assert get(TOP, {"by": "actor"}, key=ingest_key).status_code == 403
    assert get(TOP, {"by": "decision"}, key=other_read_key).json()["results"][0] == {
        "value": "deny", "count": 1, "deny": 1, "alert": 0, "duration_avg_ms": 212.0, "duration_max_ms": 212.0}
    get(HISTOGRAM, {"decision": "deny"})
    get(TOP, {"by": "tool"})
    records = list(AccessRecord.objects.order_by("id").values_list("action", "filters"))[-2:]
    assert records == [("event-histogram", {"decision": ["deny"]}), ("stats-top", {})]


def test_the_session_reads_too(stored, client, admin_user):
    client.force_login(admin_user)
    assert client.get(TOP, {"by": "slug"}).json()["total"] == 4


def test_the_schema_describes_both_and_no_event_hides_behind_them(get):
    paths = get("/api/v1/schema", {"format": "json"}, key=None).json()["paths"]
    assert {"/api/v1/audit-events/histogram", "/api/v1/stats/top"} <= set(paths)
    assert "by" in {p["name"] for p in paths["/api/v1/stats/top"]["get"]["parameters"]}
    assert get("/api/v1/audit-events/histogram", key=None).status_code == 401  # the histogram's, not a 404 of an event
