"""Histograms, totals and top-N: exact against a known corpus, from the rollup or the events."""

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from audit.explore import counts
from audit.explore.filters import FilterError
from audit.explore.vocabulary import ParameterError
from tests.factories import store_events, wire_event

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ACTORS = ["alice@company.com", "bob@company.com", None]
TOOLS = ["list_issues", "create_issue", "delete_repo"]


def _corpus(seed=7, n=300):
    rng = random.Random(seed)
    events = []
    for i in range(n):
        decision = rng.choice(["allow", "allow", "deny", "alert"])
        events.append(wire_event(
            timestamp=(START + timedelta(seconds=rng.randrange(0, 3 * 86400), milliseconds=rng.randrange(1000)))
            .isoformat().replace("+00:00", "Z"),
            actor=rng.choice(ACTORS), tool=rng.choice(TOOLS), decision=decision,
            outcome="denied" if decision == "deny" else rng.choice(["success", "upstream_error"]),
            rule=None if rng.random() < 0.3 else {"id": rng.choice(["r-1", "r-del"]), "policy": "p"},
            metadata={"env": rng.choice(["prod", "dev", True])}, duration_ms=rng.randrange(1, 2000),
        ))
    return events


@pytest.fixture
def corpus(org):
    events = _corpus()
    for start in range(0, len(events), 100):  # several batches, as a worker stores them
        store_events(org, *events[start:start + 100])
    return events


def _when(event):
    return datetime.fromisoformat(event["timestamp"])


def _inside(events, since=None, until=None, **equal):
    return [
        e for e in events
        if (since is None or _when(e) >= since) and (until is None or _when(e) <= until)
        and all(e.get(k) in (vs if isinstance(vs, list) else [vs]) for k, vs in equal.items())
    ]


WINDOWS = [
    (None, None),
    # Over days, ragged at both ends: day, hour and minute rows, and events at the edges.
    (START + timedelta(minutes=7, seconds=13, milliseconds=5), START + timedelta(days=2, hours=2, minutes=1, seconds=59)),
    (START + timedelta(minutes=10), START + timedelta(minutes=50)),  # on whole minutes
    (START + timedelta(minutes=30, seconds=5), START + timedelta(minutes=30, seconds=50)),  # inside one minute
]


@pytest.mark.parametrize("since,until", WINDOWS)
def test_histogram_and_totals_are_exact(org, corpus, since, until):
    params = {"decision": ["deny", "alert"], "actor": ["alice@company.com"]}
    if since:
        params |= {"since": since.isoformat(), "until": until.isoformat()}
    expected = _inside(corpus, since, until, decision=["deny", "alert"], actor="alice@company.com")
    # Without until the window runs to now, weeks after the corpus: hours keep it to hundreds of buckets.
    interval, seconds = ("5m", 300) if since else ("1h", 3600)
    histogram = counts.event_histogram(org=org, filters=params, interval=interval)
    within_a_minute = since and until - since < timedelta(minutes=1)
    assert histogram.source == ("events" if within_a_minute else "rollup")
    assert histogram.total == len(expected)
    by_bucket = Counter((int(_when(e).timestamp()) // seconds * seconds, e["decision"]) for e in expected)
    for bucket in histogram.buckets:
        start = int(bucket["start"].timestamp())
        assert (bucket["allow"], bucket["deny"], bucket["alert"]) == tuple(by_bucket[(start, d)] for d in ("allow", "deny", "alert"))
    assert sum(by_bucket.values()) == histogram.total
    starts = [bucket["start"] for bucket in histogram.buckets]
    assert starts == sorted(starts) and all(b - a == timedelta(seconds=seconds) for a, b in zip(starts, starts[1:]))
    totals = counts.event_totals(org=org, filters=params)
    assert totals.total == len(expected)
    assert totals.decisions == {d: sum(e["decision"] == d for e in expected) for d in ("allow", "deny", "alert")}


@pytest.mark.parametrize("by,read", [
    ("actor", lambda e: e["actor"]),
    ("tool", lambda e: e["tool"]),
    ("rule", lambda e: e["rule"]["id"] if e["rule"] else None),
    ("outcome", lambda e: e["outcome"]),
    ("metadata.env", lambda e: str(e["metadata"]["env"]).lower()),
])
@pytest.mark.parametrize("since,until", WINDOWS[:2])
def test_top_is_exact(org, corpus, by, read, since, until):
    params = {"since": since.isoformat(), "until": until.isoformat()} if since else {}
    expected = _inside(corpus, since, until)
    top = counts.event_top(org=org, by=by, filters=params, limit=10)
    assert top.source == ("events" if by.startswith("metadata.") else "rollup")
    assert top.total == len(expected)
    got = {row.value: (row.count, row.deny, row.alert) for row in top.results}
    want = Counter(read(e) for e in expected)
    assert got == {value: (n, sum(read(e) == value and e["decision"] == "deny" for e in expected),
                           sum(read(e) == value and e["decision"] == "alert" for e in expected))
                   for value, n in want.items()}
    assert [row.count for row in top.results] == sorted((row.count for row in top.results), reverse=True)


def test_the_slowest_come_first_with_their_mean_and_max(org, corpus):
    top = counts.event_top(org=org, by="tool", order="duration")
    means = {tool: [e["duration_ms"] for e in corpus if e["tool"] == tool] for tool in TOOLS}
    assert [row.value for row in top.results] == sorted(TOOLS, key=lambda t: -sum(means[t]) / len(means[t]))
    for row in top.results:
        assert row.duration_avg == pytest.approx(sum(means[row.value]) / len(means[row.value]))
        assert row.duration_max == max(means[row.value])


def test_filters_the_rollup_does_not_hold_count_the_events(org, corpus):
    params = {"q": "tool:delete_* -decision:allow", "metadata.env": "prod", "since": WINDOWS[1][0].isoformat()}
    expected = [e for e in _inside(corpus, WINDOWS[1][0]) if e["tool"] == "delete_repo" and e["decision"] != "allow"
                and e["metadata"]["env"] == "prod"]
    histogram = counts.event_histogram(org=org, filters=params)
    assert (histogram.source, histogram.total) == ("events", len(expected))
    top = counts.event_top(org=org, by="actor", filters=params)
    assert {row.value: row.count for row in top.results} == Counter(e["actor"] for e in expected)


def test_without_an_interval_about_sixty_buckets(org, corpus):
    histogram = counts.event_histogram(org=org, filters={"since": "2026-11-23T09:00:00Z", "until": "2026-11-26T09:00:00Z"})
    assert histogram.interval == "1h" and len(histogram.buckets) == 73  # 3 days / 1 h, both ends inclusive
    assert histogram.total == len(corpus)


def test_bad_parameters_name_themselves(org):
    with pytest.raises(ParameterError) as error:
        counts.event_histogram(org=org, interval="7m")
    assert "interval" in error.value.errors
    with pytest.raises(ParameterError) as error:
        counts.event_histogram(org=org, interval="1m", filters={"since": "2020-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"})
    assert "buckets" in str(error.value)
    with pytest.raises(ParameterError):
        counts.event_top(org=org, by="colour")
    with pytest.raises(FilterError):
        counts.event_top(org=org, by="actor", filters={"q": "actor:"})


def test_an_empty_organization_has_no_buckets(org, other_org, corpus):
    histogram = counts.event_histogram(org=other_org)
    assert (histogram.total, histogram.buckets) == (0, [])
    assert counts.event_top(org=other_org, by="actor").results == []


@pytest.mark.parametrize("filters,by,table", [
    ({}, "tool", "marginal"),  # the top values of one dimension
    ({"actor": ["alice@company.com", "bob@company.com"]}, "actor", "marginal"),  # filtered by what it groups by
    ({"decision": ["deny"]}, "rule", "marginal"),  # the decision is in every marginal row
    ({"actor": ["alice@company.com"]}, "tool", "rollup"),  # two dimensions: the combinations
    ({"actor": ["bob@company.com"], "tool": ["delete_repo"]}, "decision", "rollup"),
])
def test_the_marginals_answer_one_dimension_and_the_rollup_more(org, corpus, filters, by, table):
    read = {"tool": lambda e: e["tool"], "actor": lambda e: e["actor"], "decision": lambda e: e["decision"],
            "rule": lambda e: e["rule"]["id"] if e["rule"] else None}[by]
    column = {"rule": "rule_id"}.get(by, by)
    scope = counts.count_scope(org=org, filters=filters, by=(column,))
    assert {part.marginal for part in scope.parts} == {table == "marginal"}
    expected = _inside(corpus, **filters)
    top = counts.event_top(org=org, by=by, filters=filters)
    assert {row.value: row.count for row in top.results} == Counter(read(e) for e in expected)
    assert counts.event_totals(org=org, filters=filters).total == len(expected)


@pytest.mark.parametrize("filters,table", [({}, "marginal"), ({"decision": ["alert", "deny"]}, "marginal"),
                                           ({"tool": ["list_issues"]}, "rollup")])
def test_facets_are_exact_from_the_marginals_or_the_rollup(org, corpus, filters, table):
    columns = ("decision", "outcome", "actor", "tool")
    scope = counts.count_scope(org=org, filters=filters, by=columns, each=True)
    assert {part.marginal for part in scope.parts} == {table == "marginal"}
    expected = _inside(corpus, **filters)
    counted = counts.event_breakdown(org=org, columns=columns, filters=filters)
    assert counted == {column: Counter(e[column] for e in expected) for column in columns}
