"""Selectors: organization scoping, order, facets, trace chains, invalid filters."""

import pytest
from django.http import Http404, QueryDict

from audit.explore import selectors
from audit.explore.filters import FilterError
from tests.factories import store_events, wire_event


@pytest.fixture
def stored(org, other_org):
    store_events(
        org,
        wire_event(id="a", trace_id="t", timestamp="2026-11-23T09:00:02Z", slug="slack-prod"),
        wire_event(id="b", trace_id="t", timestamp="2026-11-23T09:00:01Z", decision="deny", outcome="denied"),
        wire_event(id="c", trace_id="u", timestamp="2026-11-23T09:00:02Z", actor="bob@company.com"),
    )
    # Same timestamp as "a" and "c", arriving later: order is timestamp, then arrival.
    store_events(org, wire_event(id="d", trace_id="t", timestamp="2026-11-23T09:00:02Z", decision="alert"))
    store_events(other_org, wire_event(id="a", trace_id="t", timestamp="2026-11-23T10:00:00Z"))


def test_event_list_is_newest_first_then_latest_arrival(stored, org):
    ids = [event.event_id for event in selectors.event_list(org=org, filters=QueryDict(""))]
    assert ids == ["d", "c", "a", "b"]


def test_event_list_filters_and_scopes(stored, org, other_org):
    assert [e.event_id for e in selectors.event_list(org=org, filters=QueryDict("trace_id=t&decision=deny"))] == ["b"]
    assert [e.event_id for e in selectors.event_list(org=other_org)] == ["a"]


def test_invalid_filters_raise_with_errors_by_parameter(stored, org):
    with pytest.raises(FilterError) as caught:
        selectors.event_list(org=org, filters=QueryDict("decision=nope&since=x"))
    assert set(caught.value.errors) == {"decision", "since"}
    assert caught.value.filterset.form.errors
    with pytest.raises(FilterError):
        selectors.trace_list(org=org, filters=QueryDict("until=soon"))
    with pytest.raises(FilterError):
        selectors.event_facets(org=org, filters=QueryDict("outcome=meh"))


def test_event_get_is_scoped_to_the_organization(stored, org, other_org):
    assert selectors.event_get(org=org, event_id="b").decision == "deny"
    with pytest.raises(Http404):
        selectors.event_get(org=other_org, event_id="b")
    with pytest.raises(Http404):
        selectors.event_get(org=org, event_id="missing")


def test_event_facets_count_the_current_filter(stored, org, django_assert_num_queries):
    with django_assert_num_queries(1):  # every facet in one GROUP BY, over the rollup
        facets = selectors.event_facets(org=org, filters=QueryDict(""))
    assert facets.counts == {
        "decision": [("allow", 2), ("alert", 1), ("deny", 1)],
        "outcome": [("success", 3), ("denied", 1)],
        "actor": [("alice@company.com", 3), ("bob@company.com", 1)],
        "slug": [("github-prod", 3), ("slack-prod", 1)],
        "tool": [("list_issues", 4)],
        "method": [("tools/call", 4)],
    }
    facets = selectors.event_facets(org=org, filters=QueryDict("trace_id=t&decision=allow&decision=alert"))
    assert facets.counts["decision"] == [("alert", 1), ("allow", 1)]
    assert facets.counts["slug"] == [("github-prod", 1), ("slack-prod", 1)]
    assert selectors.event_facets(org=org, filters=None, limit=1).counts["slug"] == [("github-prod", 3)]


def test_event_facets_count_a_chosen_metadata_key(org, django_assert_num_queries):
    store_events(
        org,
        wire_event(metadata={"env": "production", "ticket": 4711}),
        wire_event(metadata={"env": "production", "ticket": "4711"}),
        wire_event(metadata={"env": "staging", "dry_run": True}),
        wire_event(metadata={"dry_run": False}),
    )
    with django_assert_num_queries(2):  # the facets, then the key (over the events)
        counts = selectors.event_facets(org=org, metadata_key="env").counts
    assert counts["metadata.env"] == [("production", 2), ("staging", 1), (None, 1)]
    counts = selectors.event_facets(org=org, filters=QueryDict("q=-no:metadata.ticket"), metadata_key="ticket").counts
    assert counts["metadata.ticket"] == [("4711", 2)]  # a number and a string read alike, as the filter types them
    assert selectors.event_facets(org=org, metadata_key="dry_run").counts["metadata.dry_run"][:2] == [
        (None, 2), ("false", 1)]


def test_event_facets_are_exact_past_thousands_of_matches(org):
    store_events(org, *[wire_event(decision="deny" if i % 3 else "allow") for i in range(2400)])
    decisions = dict(selectors.event_facets(org=org, filters=QueryDict("")).counts["decision"])
    assert decisions == {"deny": 1600, "allow": 800}
    searched = selectors.event_facets(org=org, filters=QueryDict("q=decision:deny")).counts  # counted over events
    assert dict(searched["decision"]) == {"deny": 1600}


def test_trace_list_newest_start_first(stored, org, other_org):
    assert [t.trace_id for t in selectors.trace_list(org=org)] == ["u", "t"]
    assert [t.trace_id for t in selectors.trace_list(org=org, filters={"decision": "alert"})] == ["t"]
    assert [t.trace_id for t in selectors.trace_list(org=other_org)] == ["t"]


def test_trace_chain_in_timestamp_then_arrival_order(stored, org, django_assert_num_queries):
    with django_assert_num_queries(2):
        summary, page = selectors.trace_chain(org=org, trace_id="t")
    assert summary.calls == 3 and summary.deny_count == 1 and summary.alert_count == 1
    assert [event.event_id for event in page.rows] == ["b", "a", "d"] and page.older is None
    _, first_two = selectors.trace_chain(org=org, trace_id="t", size=2)
    assert [event.event_id for event in first_two.rows] == ["b", "a"]
    with django_assert_num_queries(3):  # the summary, the position of the page, the page
        _, last = selectors.trace_chain(org=org, trace_id="t", size=2, cursor=first_two.older.encode())
    assert [event.event_id for event in last.rows] == ["d"] and last.before == 2 and last.older is None


def test_trace_chain_of_another_organization_is_404(stored, other_org):
    with pytest.raises(Http404):
        selectors.trace_chain(org=other_org, trace_id="u")
