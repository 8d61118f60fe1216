"""EventFilterSet and TraceFilterSet, parameter by parameter, with counts (SPEC §3)."""

from datetime import timedelta
from urllib.parse import quote

import pytest
from django.http import QueryDict
from django.utils import timezone

from audit.explore.filters import EventFilterSet, TraceFilterSet
from audit.explore.metadata import metadata_candidates
from audit.models import AuditEvent, TraceSummary
from tests.factories import store_events, wire_event


def stamp(moment):
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def events(org, other_org):
    now = timezone.now()
    store_events(
        org,
        wire_event(id="e1", trace_id="t-1", actor="alice@company.com", slug="github-prod", tool="list_issues",
                   timestamp=stamp(now - timedelta(days=3)), metadata={"env": "production", "ticket": 4711}),
        wire_event(id="e2", trace_id="t-1", actor="alice@company.com", slug="slack-prod", tool="post_message",
                   timestamp=stamp(now - timedelta(hours=2)), metadata={"env": "production", "ticket": "4711"}),
        wire_event(id="e3", trace_id="t-2", actor="bob@company.com", slug="github-prod", tool="delete_repo",
                   decision="deny", outcome="denied", status_code=403, timestamp=stamp(now - timedelta(minutes=10)),
                   metadata={"env": "staging", "dry_run": True}),
        wire_event(id="e4", trace_id="t-2", actor=None, slug="jira-cloud", method="tools/list", tool=None,
                   decision="alert", outcome="upstream_error", status_code=502, error="Bad Gateway from upstream",
                   timestamp=stamp(now - timedelta(minutes=5)), metadata={"env": "staging", "dry_run": "true",
                                                                         "weird__key": "x", "ratio": 0.5}),
        wire_event(id="e5", trace_id="trace with/slash", actor="carol@company.com", slug="gdrive-corp",
                   tool="share_file", decision="deny", outcome="denied", status_code=403,
                   timestamp=stamp(now - timedelta(seconds=30)), metadata={}),
    )
    # Another organization's events must never count: the queryset is scoped by the caller.
    store_events(other_org, wire_event(id="e1", trace_id="t-1", decision="deny"))
    return AuditEvent.objects.filter(org=org)


def count(params, queryset):
    filterset = EventFilterSet(QueryDict(params), queryset=queryset)
    assert filterset.is_valid(), filterset.errors
    return filterset.qs.count()


def errors(params, queryset=None):
    filterset = EventFilterSet(QueryDict(params), queryset=queryset or AuditEvent.objects.none())
    assert not filterset.is_valid()
    return {name: list(messages) for name, messages in filterset.errors.items()}


@pytest.mark.parametrize(
    "params, expected",
    [
        ("", 5),
        ("actor=alice@company.com", 2),
        ("actor=alice@company.com&actor=bob@company.com", 3),
        ("actor=nobody", 0),
        ("actor=", 5),  # an empty field of a submitted form is no filter
        ("slug=github-prod", 2),
        ("slug=github-prod&slug=jira-cloud", 3),
        ("tool=delete_repo&tool=share_file", 2),
        ("method=tools/list", 1),
        ("method=tools/call", 4),
        ("decision=deny", 2),
        ("decision=deny&decision=alert", 3),
        ("decision=allow", 2),
        ("outcome=denied", 2),
        ("outcome=upstream_error&outcome=success", 3),
        ("trace_id=t-1", 2),
        ("trace_id=trace with/slash", 1),
        ("trace_id=t-", 0),  # exact, not a prefix
        ("decision=deny&slug=github-prod", 1),  # different parameters are ANDed
        ("actor=alice@company.com&decision=deny", 0),
    ],
)
def test_exact_filters(events, params, expected):
    assert count(params, events) == expected


@pytest.mark.parametrize(
    "params, expected",
    [
        ("metadata.env=production", 2),
        ("metadata.env=staging", 2),
        ("metadata.env=Production", 0),
        ("metadata.env=production&metadata.ticket=4711", 2),  # several keys are ANDed
        ("metadata.env=staging&metadata.ticket=4711", 0),
        ("metadata.env=production&metadata.env=staging", 4),  # a repeated key ORs, like every parameter
        ("metadata.ticket=4711", 2),  # the number 4711 and the string "4711"
        ("metadata.ticket=4711.0", 1),  # numerically equal to the stored number; not the string "4711"
        ("metadata.dry_run=true", 2),  # the boolean true and the string "true"
        ("metadata.dry_run=True", 0),  # only JSON's spelling reads as a boolean
        ("metadata.dry_run=1", 0),  # a number never matches a boolean
        ("metadata.ratio=0.5", 1),
        ("metadata.weird__key=x", 1),  # keys may contain Django's lookup separator
        ("metadata.missing=x", 0),
    ],
)
def test_metadata_filter(events, params, expected):
    assert count(params, events) == expected


@pytest.mark.parametrize(
    "params, expected",
    [
        # The `metadata=<key>=<value>` form a generated client can send: the same filters.
        ("metadata=env%3Dproduction", 2),
        ("metadata=env%3Dproduction&metadata=ticket%3D4711", 2),  # keys ANDed
        ("metadata=env%3Dstaging&metadata=ticket%3D4711", 0),
        ("metadata=env%3Dproduction&metadata=env%3Dstaging", 4),  # a repeated key ORs
        ("metadata=dry_run%3Dtrue", 2),  # typed as the other form
        ("metadata=weird__key%3Dx%3Dy", 0),  # split at the first "=": the value is "x=y"
        ("metadata=env%3Dstaging&metadata.dry_run=true", 2),  # both forms together are ANDed
    ],
)
def test_metadata_pairs_filter(events, params, expected):
    assert count(params, events) == expected


def test_metadata_candidates():
    assert metadata_candidates("4711") == ["4711", 4711]
    assert metadata_candidates("-2.5e3") == ["-2.5e3", -2500.0]
    assert metadata_candidates("false") == ["false", False]
    assert metadata_candidates("007") == ["007"]
    assert metadata_candidates("NaN") == ["NaN"]


@pytest.mark.parametrize(
    "params, expected",
    [
        ("since=15m", 3),
        ("since=1h", 3),
        ("since=24h", 4),
        ("since=7d", 5),
        ("since=1w", 5),
        ("since=60s", 1),
        ("until=1h", 2),
        ("since=24h&until=15m", 1),
    ],
)
def test_relative_time(events, params, expected):
    assert count(params, events) == expected


def test_absolute_time_bounds_are_inclusive(events):
    e3 = events.get(event_id="e3").timestamp
    assert count(f"since={stamp(e3)}", events) == 3
    assert count(f"until={stamp(e3)}", events) == 3
    assert count(f"since={stamp(e3)}&until={stamp(e3)}", events) == 1
    # The same moment with a zone offset, and with its "+" decoded to a space by a careless client.
    plus_two = e3.astimezone(timezone.get_fixed_timezone(120)).isoformat()
    assert count("since=" + quote(plus_two), events) == 3
    assert count("since=" + plus_two, events) == 3


@pytest.mark.parametrize(
    "params, expected",
    [
        ("q=alice", 2),
        ("q=GITHUB", 5),  # case-insensitive; every event's rule policy is github-guardrails
        ("q=GITHUB -policy:github*", 0),
        ("q=delete_", 1),  # tool
        ("q=slash", 1),  # trace id
        ("q=bad gateway", 1),  # error text
        ("q=nothing-like-this", 0),
        ("q=   ", 5),
        ("q=company&decision=deny", 2),
    ],
)
def test_free_text(events, params, expected):
    # The query language itself is tested in tests/explore/query/.
    assert count(params, events) == expected


def test_plain_dict_with_lists_binds_like_a_query_dict(events):
    filterset = EventFilterSet({"decision": ["deny", "alert"], "metadata.env": "staging"}, queryset=events)
    assert filterset.qs.count() == 2


@pytest.mark.parametrize(
    "params, parameter, fragment",
    [
        ("decision=maybe", "decision", "maybe is not one of the available choices"),
        ("outcome=exploded", "outcome", "exploded is not one of the available choices"),
        ("since=yesterday", "since", "is not a time"),
        ("until=2026-11-23T09:15:02", "until", "is not a time"),  # no zone
        ("since=2026-02-30T00:00:00Z", "since", "is not a time"),
        ("since=99999999d", "since", "is not a time"),
        ("since=1h&until=2h", "until", "must not be before since"),
        ("metadata.=x", "metadata.", "name a metadata key"),
        # A client that took the schema's placeholder for a parameter's name (issue 19).
        ("metadata.%3Ckey%3E=production", "metadata.<key>", "is a placeholder"),
        ("metadata=env", "metadata", "is not <key>=<value>"),
        ("metadata=%3Dx", "metadata", "name a metadata key"),
        ("metadata=%3Ckey%3E%3Dx", "metadata", "is a placeholder"),
        ("actor=a%00b", "actor", "control characters"),
        ("trace_id=" + "x" * 129, "trace_id", "at most 128 characters"),
        ("slug=" + "s" * 65, "slug", "at most 64 characters"),
        ("q=" + "q" * 2001, "q", "position 2001: expected at most 2000 characters"),
        ("q=actor:", "q", "position 7: expected a value"),
    ],
)
def test_invalid_values_name_the_parameter(params, parameter, fragment, db):
    found = errors(params)
    assert list(found) == [parameter]
    assert fragment in " ".join(found[parameter])


def test_too_many_repeats_and_metadata_keys_are_errors(db):
    assert "at most 100 times" in errors("&".join(["actor=a"] * 101))["actor"][0]
    params = "&".join(f"metadata.k{n}=v" for n in range(21))
    assert list(errors(params)) == ["metadata.k20"]
    # The two forms share the limit.
    params = "&".join(f"metadata.k{n}=v" for n in range(15)) + "&" + "&".join(f"metadata=p{n}%3Dv" for n in range(6))
    assert "at most 20 metadata filters" in errors(params)["metadata"][0]


@pytest.fixture
def traces(events, org):
    return TraceSummary.objects.filter(org=org)


def trace_ids(params, queryset):
    org_events = AuditEvent.objects.filter(org_id__in=queryset.values("org_id"))
    filterset = TraceFilterSet(QueryDict(params), queryset=queryset, events=org_events)
    assert filterset.is_valid(), filterset.errors
    return sorted(filterset.qs.values_list("trace_id", flat=True))


@pytest.mark.parametrize(
    "params, expected",
    [
        ("", ["t-1", "t-2", "trace with/slash"]),
        ("actor=bob@company.com", ["t-2"]),
        ("slug=github-prod", ["t-1", "t-2"]),
        ("decision=deny", ["t-2", "trace with/slash"]),
        ("decision=alert", ["t-2"]),
        ("metadata.env=production", ["t-1"]),
        ("metadata.ticket=4711", ["t-1"]),
        ("trace_id=t-2", ["t-2"]),
        ("q=gateway", ["t-2"]),
        # Parameters must hold on one event of the trace, not on different ones.
        ("actor=bob@company.com&decision=alert", []),
        ("actor=bob@company.com&decision=deny", ["t-2"]),
        # The span overlaps the window.
        ("since=3h", ["t-1", "t-2", "trace with/slash"]),
        ("since=1h", ["t-2", "trace with/slash"]),
        ("until=1d", ["t-1"]),
        ("since=2m", ["trace with/slash"]),
        # With other filters, the matching event must itself be in the window.
        ("since=1h&slug=github-prod", ["t-2"]),
    ],
)
def test_trace_filters(traces, params, expected):
    assert trace_ids(params, traces) == expected


def test_trace_filter_errors_name_the_parameter(db):
    filterset = TraceFilterSet(QueryDict("decision=nope&since=later"), queryset=TraceSummary.objects.none())
    assert not filterset.is_valid()
    assert set(filterset.errors) == {"decision", "since"}


@pytest.mark.parametrize("key", ["a.b", 'quote"d', "apostrophe's", "ünïcode", "a[0]", "$", "sp ace", "back\\slash"])
def test_metadata_keys_with_any_printable_characters(org, key):
    store_events(org, wire_event(metadata={key: "yes", "other": "no"}), wire_event(metadata={"other": "yes"}))
    events = AuditEvent.objects.filter(org=org)
    assert count(f"metadata.{quote(key)}=yes", events) == 1
    assert count(f"metadata.{quote(key)}=no", events) == 0


def test_metadata_numbers_beyond_64_bits(org):
    store_events(org, wire_event(metadata={"big": 10**20}), wire_event(metadata={"big": "1"}))
    events = AuditEvent.objects.filter(org=org)
    assert count("metadata.big=100000000000000000000", events) == 1
    assert count("metadata.big=1", events) == 1
